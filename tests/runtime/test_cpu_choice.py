"""Embedder("model.onnx") on the CPU: ONNX Runtime or OpenVINO, whichever measures faster on this
machine, measured once per machine and graph structure, remembered, visible, and overridable."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from reid_trt.core.defaults import CACHE_ENV
from reid_trt.core.errors import ReidTrtError
from reid_trt.core.machine import cpu_model, machine_label
from reid_trt.core.metrics import cosine_rows
from reid_trt.runtime import cpu_choice
from reid_trt.runtime.cpu_choice import BACKEND_ENV, rank
from reid_trt.runtime.embedder import Embedder

pytestmark = pytest.mark.slow  # the session's graphs exported, backends measured


@pytest.fixture
def unpinned(monkeypatch, tmp_path):
    """The product's default: no backend forced, an empty record in a fresh cache folder."""
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache" / "cpu_backend.json"


@pytest.fixture(scope="module")
def crops(market_crops):
    return market_crops[:24]


def test_first_load_measures_both_and_later_loads_remember(graphs, crops, unpinned):
    graph = graphs["osnet_x0_25", "fp32"]
    with Embedder(graph) as first:
        choice = first.cpu_choice
        assert not choice.cached and set(choice.ms) == {"onnxruntime", "openvino"}
        assert all(set(ms) == {"1", "32"} and min(ms.values()) > 0 for ms in choice.ms.values())
        assert first.backend_name == choice.backend == rank(choice.ms)
        assert "end to end" in choice.reason and choice.backend in str(choice)
        chosen = first.embed(crops)
    record = json.loads(unpinned.read_text())
    (key, entry), = record["choices"].items()
    assert entry["backend"] == choice.backend and entry["ms"] == choice.ms
    # keyed by the CPU's name, family, model and kernel flags, so no other CPU reuses it
    assert machine_label() in key and cpu_model() in key and entry["measured"]
    with Embedder(graph) as again:
        assert again.cpu_choice.cached and again.backend_name == choice.backend
        assert "remembered" in str(again.cpu_choice)
    # Same embeddings whichever runs: both forced backends agree with the chosen one.
    for name in ("onnxruntime", "openvino"):
        with Embedder(graph, backend=name) as forced:
            assert forced.cpu_choice is None and forced.backend_name == name
            assert cosine_rows(forced.embed(crops), chosen).min() > 0.99999


def test_the_record_is_per_graph_structure_not_per_weights(graphs, unpinned, tmp_path):
    graph = graphs["osnet_x0_25", "fp32"]
    Embedder(graph).close()
    model = onnx.load(graph)
    for init in model.graph.initializer[:5]:  # other weights, same architecture
        values = onnx.numpy_helper.to_array(init) * 1.5
        init.CopyFrom(onnx.numpy_helper.from_array(values, init.name))
    other = tmp_path / "retrained.onnx"
    onnx.save(model, other)
    with Embedder(other) as e:
        assert e.cpu_choice.cached
    with Embedder(graphs["osnet_x0_25", "fp16"]) as e:  # another graph: measured anew
        assert not e.cpu_choice.cached
    assert len(json.loads(unpinned.read_text())["choices"]) == 2


def test_rank_follows_the_measurements():
    # issue #21's Intel Xeon (2 cores): end to end, speed-ups over torchreid-style extraction at
    # batch 1 / 32 (ORT 3.17x / 1.79x, OpenVINO 5.36x / 4.34x), as times relative to it
    intel = {"onnxruntime": {"1": 1 / 3.17, "32": 1 / 1.79},
             "openvino": {"1": 1 / 5.36, "32": 1 / 4.34}}
    # this 2-core AMD EPYC, ms per call (benchmarks/results/openvino_vs_ort_cpu.md)
    amd = {"onnxruntime": {"1": 2.48, "32": 53.52}, "openvino": {"1": 4.54, "32": 73.29}}
    assert (rank(intel), rank(amd)) == ("openvino", "onnxruntime")
    close = {"onnxruntime": {"1": 2.04, "32": 50.0}, "openvino": {"1": 2.0, "32": 49.0}}
    assert rank(close) == "onnxruntime"  # within the tie margin the reference runtime stays
    # one faster at batch 1, the other at 32: the smaller geometric-mean slowdown wins
    split = {"onnxruntime": {"1": 2.0, "32": 90.0}, "openvino": {"1": 3.0, "32": 50.0}}
    assert rank(split) == "openvino"


def test_the_environment_forces_a_backend_without_measuring(graphs, unpinned, monkeypatch):
    monkeypatch.setenv(BACKEND_ENV, "openvino")
    with Embedder(graphs["osnet_x0_25", "fp32"]) as e:
        assert e.backend_name == "openvino" and e.cpu_choice.reason == f"{BACKEND_ENV}=openvino"
    assert not unpinned.exists()
    monkeypatch.setenv(BACKEND_ENV, "tensorflow")
    with pytest.raises(ReidTrtError, match=f"^{BACKEND_ENV}=tensorflow: unknown CPU backend; "
                                           "set onnxruntime, openvino or auto$"):
        Embedder(graphs["osnet_x0_25", "fp32"])


def test_a_damaged_or_unwritable_record_costs_a_measurement_only(graphs, unpinned, monkeypatch,
                                                                  tmp_path, caplog):
    unpinned.parent.mkdir(parents=True)
    unpinned.write_text("{not json")
    with Embedder(graphs["osnet_x0_25", "fp32"]) as e:
        assert not e.cpu_choice.cached
    assert json.loads(unpinned.read_text())["version"] == cpu_choice.RECORD_VERSION
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    monkeypatch.setenv(CACHE_ENV, str(blocked / "cache"))  # its parent is a file: cannot write
    with Embedder(graphs["osnet_x0_25", "fp32"]) as e:
        assert not e.cpu_choice.cached and e.embed(np.zeros((1, 64, 32, 3), np.uint8)).shape[0] == 1
    assert "cannot record the CPU backend choice" in caplog.text


def test_a_graph_openvino_refuses_runs_on_onnxruntime(graphs, unpinned, monkeypatch):
    opened = cpu_choice._open

    def refuse_openvino(name, path, model, *spin):
        if name == "openvino":
            raise ReidTrtError("OpenVINO cannot compile osnet.onnx for CPU (unsupported op)")
        return opened(name, path, model, *spin)

    monkeypatch.setattr(cpu_choice, "_open", refuse_openvino)
    with Embedder(graphs["osnet_x0_25", "fp32"]) as e:
        assert e.backend_name == "onnxruntime"
        assert e.cpu_choice.reason.startswith("openvino cannot run it: OpenVINO cannot compile")


def test_cuda_device_or_named_backend_skip_the_choice(graphs, unpinned):
    with Embedder(graphs["osnet_x0_25", "fp32"], backend="onnxruntime") as e:
        assert e.cpu_choice is None
    assert not unpinned.exists()


def test_a_static_batch_graph_is_measured_at_its_batch(static4_graph, unpinned, market_crops):
    with Embedder(static4_graph) as e:
        assert all(set(ms) == {"4"} for ms in e.cpu_choice.ms.values())
        assert e.embed(market_crops[:6]).shape == (6, 512)
