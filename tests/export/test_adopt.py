"""Graphs from other exporters (issue 21): the real osnet_x0_25 graph a YOLOv8 tracking project
exported (opset 12, `images` -> `output`, no reid-trt metadata) is adopted, then built into a
TensorRT-RTX engine, embedded with, benchmarked, served and converted like any reid-trt graph;
graphs that are not OSNet embeddings are refused with the reason."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper
from typer.testing import CliRunner

from reid_trt.cli.export import app
from reid_trt.core.contract import contract_of
from reid_trt.core.metrics import cosine_rows
from reid_trt.core.preprocess import graph_input

pytestmark = pytest.mark.slow  # adopted graphs through every command

runner = CliRunner()


@pytest.fixture(scope="module")
def foreign(shared_data):
    from tests.conftest import need

    return need(shared_data / "weights" / "osnet_x0_25_msmt17.onnx", "third-party OSNet graph")


@pytest.fixture(scope="module")
def adopted(foreign, tmp_path_factory):
    out = tmp_path_factory.mktemp("adopted") / "osnet_x0_25.reid.onnx"
    result = runner.invoke(app, ["adopt", str(foreign), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "osnet_x0_25" in result.output and "opset 12 -> 18" in result.output
    return out


def test_adopted_graph_is_the_same_function(foreign, adopted, market_crops):
    model = onnx.load(adopted)
    contract = contract_of(model)
    assert contract.variant == "osnet_x0_25" and contract.input_format == "float"
    assert (contract.input_name, contract.output_name) == ("images", "output")
    assert next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == 18
    assert not {"Shape", "Gather", "Concat"} & {n.op_type for n in model.graph.node}
    x = graph_input(market_crops, contract)
    want = ort.InferenceSession(str(foreign)).run(None, {"images": x})[0]
    got = ort.InferenceSession(str(adopted)).run(None, {"images": x})[0]
    assert cosine_rows(got, want).min() >= 1 - 1e-6


def test_every_command_takes_it(adopted, market_crops, tmp_path):
    from reid_trt.bench.run import BenchConfig, run_bench
    from reid_trt.engine.build import engine_from_onnx
    from reid_trt.export.openvino import export_openvino
    from reid_trt.runtime.embedder import Embedder
    from reid_trt.serving.config import ServeOptions
    from reid_trt.serving.repository import read_repository, write_repository

    with Embedder(adopted, device="cpu") as embedder:
        embeddings = embedder.embed(market_crops)
    assert embeddings.shape == (9, 512)
    # identity 0001 seen by cameras 1 and 6: its two crops are each other's nearest
    sims = embeddings @ embeddings.T
    np.fill_diagonal(sims, -1)
    assert sims[0].argmax() == 1

    built = engine_from_onnx(adopted, tmp_path / "adopted.plan")
    assert built.manifest.precision == "fp32"
    assert built.manifest.preprocessing.variant == "osnet_x0_25"
    fp16 = runner.invoke(app, ["trt", "--onnx", str(adopted), "--precision", "fp16", "-o",
                               str(tmp_path / "adopted.fp16.plan")])
    assert fp16.exit_code == 0, fp16.output

    report = run_bench([], [adopted], None, BenchConfig(batches=(2,), runs=2, warmup=0,
                                                        rounds=1, num_crops=4))
    assert report.subjects[0].latency[0].end_to_end.runs == 2

    write_repository(tmp_path / "repo", adopted, ServeOptions(name="osnet"))
    assert list(read_repository(tmp_path / "repo")) == ["osnet"]
    ir = export_openvino(adopted, tmp_path / "adopted.xml")
    assert ir.parity.passed


def test_weights_it_was_not_exported_from_are_caught(foreign, real_weights, tmp_path):
    """With --weights the adopted graph is verified against PyTorch: this graph came from other
    MSMT17 weights than the .pth here (SOURCES.md), and that is what verification says."""
    out = tmp_path / "x.onnx"
    result = runner.invoke(app, ["adopt", str(foreign), "-o", str(out), "-w",
                                 str(real_weights["msmt17"])])
    assert result.exit_code == 1 and "disagrees with PyTorch" in result.stderr
    assert not out.exists()


def _tiny_cnn(path, out_dim: int = 512):
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w")
    fc = numpy_helper.from_array(rng.standard_normal((8, out_dim)).astype(np.float32), "fc")
    nodes = [helper.make_node("Conv", ["images", "w"], ["c"]),
             helper.make_node("GlobalAveragePool", ["c"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("MatMul", ["f", "fc"], ["output"])]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("images", 1, ["n", 3, 256, 128])],
        [helper.make_tensor_value_info("output", 1, ["n", out_dim])], [w, fc])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


@pytest.mark.parametrize("make, reason", [
    (lambda p: _tiny_cnn(p), "is not an OSNet-family graph"),
    (lambda p: _tiny_cnn(p, 751), "751 values per crop"),
])
def test_other_graphs_are_refused(tmp_path, make, reason):
    make(tmp_path / "g.onnx")
    result = runner.invoke(app, ["adopt", str(tmp_path / "g.onnx"), "-o", str(tmp_path / "o.onnx")])
    assert result.exit_code == 1 and reason in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.onnx"]


def test_weights_in_an_external_data_file(foreign, tmp_path):
    """Issue 30: a graph saved with its weights beside it is adopted (written as one file); with
    the data file missing, a one-line error names it and nothing is written."""
    model = onnx.load(foreign)
    onnx.save(model, tmp_path / "ext.onnx", save_as_external_data=True, location="ext.data",
              size_threshold=0)
    assert (tmp_path / "ext.data").stat().st_size > 500_000
    result = runner.invoke(app, ["adopt", str(tmp_path / "ext.onnx"), "-o",
                                 str(tmp_path / "one.onnx")])
    assert result.exit_code == 0, result.output
    written = onnx.load(tmp_path / "one.onnx", load_external_data=False)
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in written.graph.initializer)
    assert contract_of(written).variant == "osnet_x0_25"

    (tmp_path / "ext.data").unlink()
    result = runner.invoke(app, ["adopt", str(tmp_path / "ext.onnx"), "-o",
                                 str(tmp_path / "none.onnx")])
    assert result.exit_code == 1 and "keeps its weights in ext.data" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "none.onnx").exists()


def test_a_classifier_head_is_refused(foreign, tmp_path):
    model = onnx.load(foreign)
    out = model.graph.output[0]
    model.graph.node.append(helper.make_node("Softmax", [out.name], ["probabilities"], axis=1))
    out.name = "probabilities"
    onnx.save(model, tmp_path / "cls.onnx")
    result = runner.invoke(app, ["adopt", str(tmp_path / "cls.onnx"), "-o",
                                 str(tmp_path / "o.onnx")])
    assert result.exit_code == 1 and "comes out of Softmax" in result.stderr
    assert not (tmp_path / "o.onnx").exists()


@pytest.mark.parametrize("calib", ["MOT17-04", "mot17-mini"])
def test_calibrated_like_reid_trts_own_export(calib, adopted, graphs, shared_data, tmp_path):
    """Issue 30: INT8 calibration groups layers by the graph's structure, so an adopted graph
    (weights named onnx::Conv_1047) is searched block by block as reid-trt's own export is, and
    keeps most of its work in INT8 with the defaults: on MOT17-04 alone, and on the whole
    MOT17-mini set, where it calibrates on MOT17-02's 43 boxes and is judged on MOT17-04's (a
    brighter camera: the image input's whole range matters there, see ranges.input_bound)."""
    from reid_trt.calibration.api import calibrate_onnx
    from reid_trt.calibration.quantize import layer_groups
    from reid_trt.core.fileio import sha256_file

    ours = layer_groups(onnx.load(graphs["osnet_x0_25", "fp32"]))
    theirs = layer_groups(onnx.load(adopted))
    assert list(ours)[:3] == ["conv1", "conv2.0", "conv2.1"] and "block 2" in theirs
    assert [len(v) for v in theirs.values()] == [len(v) for v in ours.values()]  # 11 blocks
    data = shared_data / "reid" / "mot17-mini"
    if calib == "MOT17-04":
        data = data / "train" / "MOT17-04-FRCNN"
    result = calibrate_onnx(onnx.load(adopted), sha256_file(adopted), data,
                            tmp_path / "a.int8.onnx")
    report = result.report
    print(f"adopted graph, {calib}: {100 * report.int8_work.int8_mac_share:.1f}% of conv MACs")
    if calib == "mot17-mini":
        assert report.protocol.judged_unseen  # judged on the camera it never calibrated on
    assert report.budget_held and report.int8_work.int8_mac_share >= 0.8
