"""A real Triton server (nvidia-pytriton's binary) on loopback, serving the real osnet_x0_25."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reid_trt.serving.config import ServeOptions
from reid_trt.serving.repository import write_repository
from reid_trt.serving.server import TritonServer


@pytest.fixture(scope="session")
def real_crops(shared_data) -> list:
    """Real person crops: the Market-1501, MSMT17 and CUHK03 crops and 40 MOT17 boxes."""
    from reid_trt.data.datasets import load_dataset, read_samples, stratified_sample
    from reid_trt.data.folder import read_crops

    crops = [c for kind in ("market1501", "msmt17", "cuhk03")
             for c in read_crops(shared_data / "reid" / kind)]
    boxes = load_dataset(shared_data / "reid" / "mot17-mini", "mot17").train
    return crops + read_samples(stratified_sample(boxes, 40))[0]


@pytest.fixture(scope="session")
def served(graphs, tmp_path_factory):
    """A Python-kind repository of the real osnet_x0_25 graph, served on free loopback ports;
    the server is stopped at the end even when tests fail."""
    repo = tmp_path_factory.mktemp("triton") / "repo"
    write_repository(repo, graphs["osnet_x0_25", "fp32"],
                     ServeOptions(name="osnet", kind="python", max_batch=32))
    server = TritonServer(repo, http_port=0, grpc_port=0, metrics_port=0)
    with server:
        yield server
    assert server.process is None


@pytest.fixture(scope="session")
def engine(graphs, tmp_path_factory) -> Path:
    """A TensorRT-RTX engine of the real osnet_x0_25 (profile 1/8/32), built on the CPU."""
    from reid_trt.engine.build import BuildConfig, engine_from_onnx

    out = tmp_path_factory.mktemp("served_engine") / "osnet.plan"
    return engine_from_onnx(graphs["osnet_x0_25", "fp32"], out,
                            BuildConfig(opt_batch=8, max_batch=32)).engine


WRAPPER = """
import importlib.util
import time
from pathlib import Path

_spec = importlib.util.spec_from_file_location("real_model", Path(__file__).with_name(
    "real_model.py"))
_real = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_real)


class TritonPythonModel(_real.TritonPythonModel):
    def embed(self, batch):
{body}
"""


def wrap_served_model(repo: Path, body: str, name: str = "osnet") -> None:
    """Replaces a Python-kind model's `embed` by `body` (indented 8 spaces; `super().embed(batch)`
    is the real one): faults injected into the real server's model, nothing mocked."""
    version = repo / name / "1"
    shutil.move(version / "model.py", version / "real_model.py")
    (version / "model.py").write_text(WRAPPER.format(body=body))
