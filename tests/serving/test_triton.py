"""Serving with a real Triton server: repositories checked with Triton's own schema, embeddings
over gRPC and HTTP equal to Embedder's, 16 concurrent clients batched, and a server that always
stops."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from reid_trt.cli.export import app as export_app
from reid_trt.cli.serve import app as serve_app
from reid_trt.core.errors import ReidTrtError
from reid_trt.core.manifest import read_manifest
from reid_trt.runtime.embedder import Embedder
from reid_trt.serving.client import TritonEmbedder, parse_target
from reid_trt.serving.config import ServeOptions, model_config_pb2, parse_config, served_contract
from reid_trt.serving.repository import write_repository
from reid_trt.serving.server import TritonServer

pytestmark = pytest.mark.slow  # Triton servers started

runner = CliRunner()


def processes_with(text: str) -> list[int]:
    """Live processes whose command line mentions `text` (a server and its Python stubs)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text in (entry / "cmdline").read_bytes().decode(
                    errors="replace") and int(entry.name) != os.getpid():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_served_embeddings_equal_embedders(served, graphs, real_crops, shared_data):
    graph = graphs["osnet_x0_25", "fp32"]
    with Embedder(graph, device="cpu") as local:
        reference = local.embed(real_crops)
        frame = cv2.imread(str(next((shared_data / "reid" / "mot17-mini").rglob("000001.jpg"))))
        boxes = np.array([[100, 200, 180, 420], [900, 300, 960, 480], [5000, 10, 5100, 90]],
                         np.float32)  # the last lies outside the frame
        local_boxes = local.embed_boxes(frame, boxes)
    for protocol, url in (("grpc", served.grpc_url), ("http", served.http_url)):
        with TritonEmbedder(url, "osnet", protocol=protocol) as remote:
            assert remote.contract.input_format == "uint8-bgr" and remote.max_batch == 32
            assert isinstance(remote, Embedder) and remote.path is None  # from_backend built it
            got = remote.embed(real_crops)
            assert got.shape == reference.shape == (len(real_crops), 512)
            assert np.einsum("ij,ij->i", got, reference).min() >= 0.9999, protocol
            by_box = remote.embed_boxes(frame, boxes)
            assert np.einsum("ij,ij->i", by_box[:2], local_boxes[:2]).min() >= 0.9999
            assert not by_box[2].any()


def test_sixteen_concurrent_clients_are_batched(served, graphs, real_crops):
    with Embedder(graphs["osnet_x0_25", "fp32"], device="cpu") as local:
        reference = local.embed(real_crops)
    remote = TritonEmbedder(served.grpc_url, "osnet")
    before = remote.statistics()

    def client(seed: int) -> tuple[float, int]:
        rng = np.random.default_rng(seed)
        worst, sent = 1.0, 0
        for _ in range(50):
            rows = rng.choice(len(real_crops), size=int(rng.integers(1, 5)), replace=False)
            got = remote.embed([real_crops[i] for i in rows])
            assert got.shape == (len(rows), 512)
            worst = min(worst, float(np.einsum("ij,ij->i", got, reference[rows]).min()))
            sent += len(rows)
        return worst, sent

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(client, range(16)))
    sent = sum(s for _, s in results)
    # Triton counts an execution once the model returns, which can be after its caller has the
    # answer: the last few may take a moment to show (the count fell short once, under load).
    deadline = time.monotonic() + 10
    while True:
        after = remote.statistics()
        executed = {b: after.get(b, 0) - before.get(b, 0) for b in after}
        if sum(b * n for b, n in executed.items()) >= sent or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    remote.close()
    assert min(w for w, _ in results) >= 0.9999  # every request got its own rows
    assert sum(b * n for b, n in executed.items()) == sent
    # Requests carry 1-4 crops: a larger execution is Triton's dynamic batcher at work.
    assert max(b for b, n in executed.items() if n) > 4, executed


def test_wrong_size_is_tritons_error_in_one_line(served):
    remote = TritonEmbedder(served.grpc_url, "osnet")
    with pytest.raises(ReidTrtError) as error:
        remote.backend.run(np.zeros((2, 128, 64, 3), np.uint8))
    message = str(error.value)
    assert "\n" not in message and "'osnet'" in message and "shape" in message
    remote.close()


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_a_request_timeout_below_a_round_trip_still_connects(served, real_crops, protocol):
    """0.1 ms per request: connecting waits its own second (it was refused as "no Triton server
    answers", a server that was up), and each request that overruns is a one-line error."""
    url = served.grpc_url if protocol == "grpc" else served.http_url
    hasty = TritonEmbedder(url, "osnet", protocol=protocol, timeout=1e-4)
    with pytest.raises(ReidTrtError, match="(?i)deadline|timeout|timed out") as error:
        hasty.embed(real_crops[:32])
    assert "\n" not in str(error.value)
    hasty.close()


def test_client_refusals(served):
    with pytest.raises(ReidTrtError, match="no ready model 'nope'"):
        TritonEmbedder(served.grpc_url, "nope")
    with pytest.raises(ReidTrtError, match="no Triton server answers at 127.0.0.1:9"):
        TritonEmbedder("127.0.0.1:9", "osnet", timeout=2)
    assert parse_target("http://h:8000/osnet") == ("h:8000", "osnet", "http")
    assert parse_target("h:8001/osnet") == ("h:8001", "osnet", "grpc")
    with pytest.raises(ReidTrtError, match="HOST:PORT/MODEL"):
        parse_target("osnet")


def test_plan_config_is_the_engines_manifest(engine, tmp_path):
    pb = model_config_pb2()
    folder = write_repository(tmp_path / "repo", engine, ServeOptions(name="osnet_plan"))
    config = parse_config((folder / "config.pbtxt").read_text())  # Triton's own schema
    manifest = read_manifest(engine)
    assert config.name == "osnet_plan" and config.platform == "tensorrt_plan"
    assert config.max_batch_size == manifest.profile.max == 32
    io = [(t.name, pb.DataType.Name(t.data_type), [-1, *t.dims])
          for t in (*config.input, *config.output)]
    assert io == [(t.name, {"FLOAT": "TYPE_FP32"}[t.dtype], t.shape) for t in manifest.io]
    assert list(config.dynamic_batching.preferred_batch_size) == [8, 32]
    assert config.instance_group[0].kind == pb.ModelInstanceGroup.KIND_GPU
    assert served_contract(config) == manifest.preprocessing
    assert (folder / "1" / "model.plan").read_bytes() == engine.read_bytes()
    assert read_manifest(folder / "1" / "model.plan") == manifest
    with pytest.raises(ReidTrtError, match="max_batch=64.*largest batch 32"):
        write_repository(tmp_path / "repo", engine, ServeOptions(name="more", max_batch=64))
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == ["osnet_plan"]


def test_onnx_and_python_configs(graphs, engine, tmp_path):
    pb = model_config_pb2()
    graph = graphs["osnet_x0_25", "fp16"]
    folder = write_repository(tmp_path / "r", graph, ServeOptions(kind="onnx", instances=2))
    config = parse_config((folder / "config.pbtxt").read_text())
    assert config.platform == "onnxruntime_onnx" and config.max_batch_size == 64
    assert [(t.name, pb.DataType.Name(t.data_type), list(t.dims)) for t in config.input] == \
        [("images", "TYPE_FP32", [3, 256, 128])]  # an fp16 graph with fp32 I/O (the default)
    assert config.instance_group[0].count == 2
    assert served_contract(config).precision == "fp16"
    # An engine under the Python backend: Embedder runs it, on the GPU Triton places it on.
    folder = write_repository(tmp_path / "r", engine, ServeOptions(name="py", kind="python"))
    config = parse_config((folder / "config.pbtxt").read_text())
    assert config.backend == "python" and config.max_batch_size == 32
    assert config.instance_group[0].kind == pb.ModelInstanceGroup.KIND_GPU
    assert [(t.name, list(t.dims)) for t in config.input] == [("crops", [256, 128, 3])]
    assert sorted(p.name for p in (folder / "1").iterdir()) == [
        "environment.json", "model.plan", "model.plan.json", "model.py"]
    paths = json.loads((folder / "1" / "environment.json").read_text())["sys_path"]
    assert any(Path(p, "numpy").is_dir() for p in paths)


def test_repository_replaced_whole(graphs, tmp_path):
    repo = tmp_path / "repo"
    write_repository(repo, graphs["osnet_x0_25", "fp32"], ServeOptions(kind="onnx"))
    write_repository(repo, graphs["osnet_x0_25", "fp32"], ServeOptions(kind="python"))
    assert sorted(p.name for p in repo.iterdir()) == ["osnet"]  # no staging folders left
    assert parse_config((repo / "osnet" / "config.pbtxt").read_text()).backend == "python"
    assert (repo / "osnet" / "1" / "model.py").is_file()


def test_export_triton_command(graphs, tmp_path):
    result = runner.invoke(export_app, ["triton", "--onnx", str(graphs["osnet_x0_25", "fp32"]),
                                        "--repo", str(tmp_path / "repo"), "--kind", "python",
                                        "--max-batch", "16"])
    assert result.exit_code == 0, result.output
    assert "reid-serve --repo" in result.output
    config = parse_config((tmp_path / "repo" / "osnet" / "config.pbtxt").read_text())
    assert config.max_batch_size == 16 and config.backend == "python"


def _port_taken():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


def test_serve_refusals(served, engine, tmp_path):
    holder = _port_taken()
    port = holder.getsockname()[1]
    try:
        result = runner.invoke(serve_app, ["--repo", str(served.repo), "--grpc-port", str(port)])
    finally:
        holder.close()
    assert result.exit_code == 1
    assert f"--grpc-port {port}: 127.0.0.1:{port} is not free" in result.stderr
    plan_repo = tmp_path / "plan"
    write_repository(plan_repo, engine, ServeOptions())
    result = runner.invoke(serve_app, ["--repo", str(plan_repo), "--http-port", "0",
                                       "--grpc-port", "0", "--metrics-port", "0"])
    assert result.exit_code == 1 and "needs Triton's tensorrt backend" in result.stderr
    (plan_repo / "osnet" / "config.pbtxt").write_text("max_batch_size: lots\n")
    result = runner.invoke(serve_app, ["--repo", str(plan_repo)])
    assert result.exit_code == 1 and "osnet/config.pbtxt is not a valid Triton" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = runner.invoke(serve_app, ["--repo", str(tmp_path / "missing")])
    assert result.exit_code == 1 and "no such folder" in result.stderr
    result = runner.invoke(serve_app, ["--repo", str(served.repo), "--host", "no.such.invalid"])
    assert result.exit_code == 1 and "--host no.such.invalid: not an address" in result.stderr
    result = runner.invoke(serve_app, ["--repo", str(served.repo), "--timeout", "0"])
    assert result.exit_code == 1 and "--timeout 0" in result.stderr


def test_server_stops_when_the_block_fails(served):
    server = TritonServer(served.repo, http_port=0, grpc_port=0, metrics_port=0)
    with pytest.raises(RuntimeError), server:
        pid = server.process.pid
        assert processes_with(f"--grpc-port={server.ports['grpc_port']}") == [pid]
        raise RuntimeError("a failing test")
    assert server.process is None
    assert processes_with(f"--grpc-port={server.ports['grpc_port']}") == []
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_reid_serve_command_stops_on_ctrl_c(served):
    """The real command line: serves, prints its endpoints, stops cleanly on SIGINT."""
    command = [sys.executable, "-c", "from reid_trt.cli.serve import main; main()", "--repo",
               str(served.repo), "--http-port", "0", "--grpc-port", "0", "--metrics-port", "0"]
    # Started with SIGINT ignored, as a script's background job is: Ctrl-C must still stop it.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        line = ""
        deadline = time.monotonic() + 120
        while "serving" not in line and time.monotonic() < deadline:
            line = process.stdout.readline()
            assert line or process.poll() is None, process.stderr.read()
        grpc = re.search(r"grpc (\S+),", line).group(1)
        with TritonEmbedder(grpc, "osnet") as remote:
            assert remote.embed([np.full((300, 100, 3), 90, np.uint8)]).shape == (1, 512)
        process.send_signal(signal.SIGINT)
        # communicate drains both pipes while waiting (a full pipe would block the command)
        try:
            _, err = process.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            pytest.fail(f"reid-serve did not stop within 90 s of SIGINT; stdout: {out[-1000:]}"
                        f" stderr: {err[-2000:]}")
        assert process.returncode == 0, err[-2000:]
    finally:
        process.kill()
    assert processes_with(f"--grpc-port={grpc.rsplit(':', 1)[1]}") == []


def test_reid_bench_with_a_served_model(served, graphs, tmp_path):
    from reid_trt.cli.bench import app as bench_app

    out = tmp_path / "bench.json"
    result = runner.invoke(bench_app, [
        "--onnx", str(graphs["osnet_x0_25", "fp32"]), "--triton", f"{served.grpc_url}/osnet",
        "--device", "cpu", "--batch", "1,8", "--runs", "3", "--warmup", "1", "--rounds", "1",
        "--num-crops", "8", "--clients", "4", "--client-requests", "5", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "concurrent clients" in result.output
    report = json.loads(out.read_text())
    local, remote = report["subjects"]
    assert (local["label"], remote["label"]) == ("ort fp32", "triton grpc fp32")
    assert remote["parity"]["min_cosine"] >= 0.9999
    for subject in (local, remote):
        load = subject["concurrent"]
        assert (load["clients"], load["requests"], load["crops_per_request"]) == (4, 20, 4)
        assert load["p99_ms"] >= load["p50_ms"] > 0 and load["throughput"] > 0
    assert [row["compute"] is not None for row in remote["latency"]] == [True, True]
