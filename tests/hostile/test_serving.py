"""Hostile inputs for serving and the tracker integrations (issue 19): servers that answer wrong,
models that cannot load, addresses that are not ours, replacements that fail half-way, tracker
configs with values of the wrong type. Each case: exit code or a one-line error naming the file
or option, the folder unchanged, no process and no /dev/shm region left."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from reid_trt.cli.export import app as export_app
from reid_trt.cli.serve import app as serve_app
from reid_trt.core.errors import ReidTrtError
from reid_trt.serving.client import TritonEmbedder
from reid_trt.serving.config import ServeOptions
from reid_trt.serving.repository import write_repository
from reid_trt.serving.server import SHM, TritonServer
from tests.hostile.conftest import one_line, run_cli, snapshot
from tests.serving.conftest import wrap_served_model

pytestmark = pytest.mark.slow  # Triton servers and engine builds

runner = CliRunner()

# A served model that answers wrong: one row whatever the batch, or half the feature width.
WRONG = """        rows = super().embed(batch)
        return rows[:1] if len(batch) == 3 else rows[:, :256] if len(batch) == 2 else rows"""


def _ours() -> list[Path]:
    return sorted(SHM.glob("reid_serve_*")) if SHM.is_dir() else []


@pytest.fixture(scope="module")
def wrong_server(artifacts, tmp_path_factory):
    repo = tmp_path_factory.mktemp("wrong") / "repo"
    write_repository(repo, artifacts["graph"], ServeOptions(name="osnet", kind="python",
                                                            max_batch=8))
    wrap_served_model(repo, WRONG)
    with TritonServer(repo, http_port=0, grpc_port=0, metrics_port=0) as server:
        yield server


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_wrong_answers_never_reach_the_caller(wrong_server, protocol, market_crops):
    url = wrong_server.grpc_url if protocol == "grpc" else wrong_server.http_url
    client = TritonEmbedder(url, "osnet", protocol=protocol, max_batch=8, timeout=10)
    assert client.embed(market_crops[:4]).shape == (4, 512)  # right-sized answers pass
    for crops, got in ((market_crops[:3], "[1, 512] for 3 crops"),
                       (market_crops[:2], "[2, 256] for 2 crops")):
        with pytest.raises(ReidTrtError) as error:
            client.embed(crops)
        message = str(error.value)
        assert "\n" not in message and "'osnet'" in message and got in message, message
    client.close()


def test_served_config_must_match_its_contract(artifacts, tmp_path):
    repo = tmp_path / "repo"
    write_repository(repo, artifacts["graph"], ServeOptions(name="osnet", kind="python"))
    config = repo / "osnet" / "config.pbtxt"
    config.write_text(config.read_text().replace("dims: [512]", "dims: [256]").replace(
        "dims: 512", "dims: 256"))
    assert "256" in config.read_text()
    # reid-serve itself refuses such a repository (its model file says 512)...
    result = runner.invoke(serve_app, ["--repo", str(repo), "--http-port", "0", "--grpc-port",
                                       "0", "--metrics-port", "0"])
    assert result.exit_code == 1 and "does not fit its model" in one_line(result.stderr)
    # ...and a client of a server that loads it anyway refuses to connect.
    from reid_trt.serving import repository

    original = repository._check_written_model
    repository._check_written_model = lambda *a: None  # a server started by someone else
    try:
        with TritonServer(repo, http_port=0, grpc_port=0, metrics_port=0) as server:
            with pytest.raises(ReidTrtError, match=r"output dims \[256\], the contract says "
                                                   r"\[512\]"):
                TritonEmbedder(server.grpc_url, "osnet", timeout=5)
    finally:
        repository._check_written_model = original


def test_failed_start_is_fast_names_the_cause_and_leaves_nothing(artifacts, tmp_path):
    repo = tmp_path / "repo"
    write_repository(repo, artifacts["graph"], ServeOptions(name="osnet", kind="python"))
    (repo / "osnet" / "1" / "model.py").unlink()
    before, regions = snapshot(tmp_path), _ours()
    start = time.monotonic()
    result = runner.invoke(serve_app, ["--repo", str(repo), "--http-port", "0", "--grpc-port",
                                       "0", "--metrics-port", "0", "--timeout", "120"])
    took = time.monotonic() - start
    line = one_line(result.stderr)
    assert result.exit_code == 1 and took < 30, (took, line)
    assert "osnet" in line and "model.py" in line and "cuda" not in line.lower(), line
    assert snapshot(tmp_path) == before and _ours() == regions


@pytest.mark.parametrize("ports", [["--http-port", "0", "--grpc-port", "0", "--metrics-port",
                                    "0"], []])
def test_host_that_is_not_ours(artifacts, tmp_path, ports):
    repo = tmp_path / "repo"
    write_repository(repo, artifacts["graph"], ServeOptions(name="osnet", kind="python"))
    result = runner.invoke(serve_app, ["--repo", str(repo), "--host", "192.0.2.1", *ports])
    line = one_line(result.stderr)
    assert result.exit_code == 1 and "--host 192.0.2.1" in line and "port" not in line, line


def test_served_code_is_the_installed_reid_trt(artifacts, tmp_path, monkeypatch, market_crops):
    """Started in a folder holding another reid_trt/ package, the served model still imports
    the reid-trt that wrote the repository, and writes no bytecode into that folder."""
    repo = tmp_path / "repo"
    write_repository(repo, artifacts["graph"], ServeOptions(name="osnet", kind="python"))
    impostor = tmp_path / "work" / "reid_trt"
    impostor.mkdir(parents=True)
    (impostor / "__init__.py").write_text("raise ImportError('the impostor was imported')\n")
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "work"))
    with TritonServer(repo, http_port=0, grpc_port=0, metrics_port=0) as server:
        client = TritonEmbedder(server.grpc_url, "osnet", timeout=10)
        assert client.embed(market_crops[:2]).shape == (2, 512)
        client.close()
    # (Triton's stub caches model.py's own bytecode in the model folder: the repository's.)
    assert sorted(p.name for p in impostor.iterdir()) == ["__init__.py"]


def test_replacing_a_model_is_whole_or_nothing(artifacts, tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    write_repository(repo, artifacts["graph"], ServeOptions(name="osnet", kind="python"))
    before = snapshot(tmp_path)
    real_rename = os.rename
    calls = []

    def failing_rename(src, dst):  # the staged model cannot take the old one's place
        calls.append((src, dst))
        if len(calls) == 2:
            raise PermissionError(13, "Permission denied")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(ReidTrtError, match=r"repo/osnet cannot be replaced \(Permission "
                                           r"denied\); nothing was changed"):
        write_repository(repo, artifacts["graph"], ServeOptions(name="osnet", kind="onnx"))
    monkeypatch.setattr(os, "rename", real_rename)
    assert snapshot(tmp_path) == before  # the old model exactly as it was, nothing left over


def test_replacing_an_ir_is_whole_or_nothing(artifacts, tmp_path, monkeypatch):
    pytest.importorskip("openvino")
    from reid_trt.export.openvino import export_openvino

    shutil.copy(artifacts["graph"], tmp_path / "m.onnx")
    export_openvino(tmp_path / "m.onnx", tmp_path / "m.xml")
    before = snapshot(tmp_path)
    real_rename = os.rename
    calls = []

    def failing_rename(src, dst):  # the new .bin went in; the .xml cannot follow
        calls.append(dst)
        if str(dst).endswith("m.xml") and Path(src).name == "model.xml":
            raise PermissionError(13, "Permission denied")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(ReidTrtError, match=r"m\.xml cannot be replaced \(Permission denied\); "
                                           "nothing was changed"):  # one line, not a traceback
        export_openvino(tmp_path / "m.onnx", tmp_path / "m.xml")
    monkeypatch.setattr(os, "rename", real_rename)
    assert snapshot(tmp_path) == before
    import openvino as ov

    ov.Core().read_model(str(tmp_path / "m.xml"))  # the old IR still loads


DEEPSTREAM_VALUES = [
    ("feature-size-text", "reidFeatureSize: abc", ["reidFeatureSize is 'abc'", "whole number"]),
    ("infer-dims-scalar", "inferDims: 3", ["inferDims is 3", "list of 3"]),
    ("batch-infinite", "batchSize: .inf", ["batchSize is inf", "whole number"]),
    ("offsets-short", "offsets: [0, 0]", ["offsets is [0, 0]", "list of 3"]),
    ("scale-text", "netScaleFactor: one", ["netScaleFactor is 'one'", "finite number"]),
    ("escape-key", "\"evil\\e[31m\": 1", ["unknown key(s) 'evil\\x1b[31m'"]),
]


@pytest.fixture(scope="module")
def deepstream_graph(real_weights, tmp_path_factory) -> Path:
    from reid_trt.export.api import ExportConfig, export_onnx

    out = tmp_path_factory.mktemp("ds") / "ds.onnx"
    return export_onnx(real_weights["msmt17"], out, ExportConfig(input_format="float-rgb255")).path


@pytest.mark.parametrize("case, line, fragments", DEEPSTREAM_VALUES,
                         ids=[c[0] for c in DEEPSTREAM_VALUES])
def test_deepstream_check_values(ws, deepstream_graph, case, line, fragments):
    shutil.copy(deepstream_graph, ws / "ds.onnx")
    result = runner.invoke(export_app, ["deepstream", "--onnx", "ds.onnx", "-o", "good.yml"])
    assert result.exit_code == 0, result.output
    text = (ws / "good.yml").read_text()
    key = line.split(":")[0].strip('"').split("\\")[0]
    kept = [row for row in text.splitlines() if not row.strip().startswith(f"{key}:")]
    ws.write("bad.yml", "\n".join(kept) + f"\n  {line}\n")
    message = run_cli(export_app, ws, ["deepstream", "--onnx", "ds.onnx", "-o", "bad.yml",
                                       "--check"], 1, *fragments)
    assert "\x1b" not in message  # a terminal escape from the file is shown, never sent


def test_deepstream_gpu_id_negative(ws, deepstream_graph):
    shutil.copy(deepstream_graph, ws / "ds.onnx")
    run_cli(export_app, ws, ["deepstream", "--onnx", "ds.onnx", "-o", "t.yml", "--gpu-id", "-1"],
            1, "--gpu-id -1")


def test_boxmot_string_boxes(artifacts):
    from reid_trt.integrations.boxmot import BoxMOTReID

    reid = BoxMOTReID(str(artifacts["graph"]))
    with pytest.raises(ReidTrtError, match="xyxys holds strings, not numbers") as error:
        reid.get_features([["a", "b", "c", "d"]], np.zeros((64, 64, 3), np.uint8))
    assert "\n" not in str(error.value)


def test_triton_engine_changed_since_build(ws):
    data = bytearray((ws / "m.plan").read_bytes())
    data[-1] ^= 0xFF
    ws.write("m.plan", bytes(data))
    run_cli(export_app, ws, ["triton", "--engine", "m.plan", "--repo", "repo"], 1,
            "m.plan is not the engine its manifest describes")
