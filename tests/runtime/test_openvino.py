"""The OpenVINO backend on the real osnet_x0_25: parity with PyTorch, the IR with its contract,
concurrent callers, and refusals."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from reid_trt.cli.export import app as export_app
from reid_trt.core.contract import contract_of
from reid_trt.core.errors import MissingDependencyError, ReidTrtError
from reid_trt.core.onnxio import load_onnx
from reid_trt.core.options import ConfigError, InputFormat
from reid_trt.runtime.embedder import Embedder

pytestmark = pytest.mark.slow  # OpenVINO compiles and IR exports

runner = CliRunner()


@pytest.fixture(scope="module")
def crops(shared_data) -> list:
    from reid_trt.data.datasets import load_dataset, read_samples, stratified_sample
    from reid_trt.data.folder import read_crops

    boxes = load_dataset(shared_data / "reid" / "mot17-mini", "mot17").train
    return read_crops(shared_data / "reid" / "market1501") + \
        read_samples(stratified_sample(boxes, 24))[0]


@pytest.fixture(scope="module")
def ir(graphs, tmp_path_factory):
    out = tmp_path_factory.mktemp("ir") / "osnet.xml"
    result = runner.invoke(export_app, ["openvino", "--onnx", str(graphs["osnet_x0_25", "fp32"]),
                                        "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "min cosine 1.00000" in result.output
    return out


def test_openvino_matches_pytorch_on_real_crops(graphs, real_weights, ir, crops):
    with Embedder(real_weights["msmt17"], device="cpu") as torch_embedder:
        want = torch_embedder.embed(crops)
    for path in (graphs["osnet_x0_25", "fp32"], ir):
        with Embedder(path, backend="openvino") as embedder:
            assert embedder.backend_name == "openvino" and embedder.backend.device == "openvino:CPU"
            got = embedder.embed(crops)
        assert np.einsum("ij,ij->i", got, want).min() >= 0.9999, path.name


def test_ir_carries_the_contract(graphs, ir):
    graph = graphs["osnet_x0_25", "fp32"]
    assert ir.with_suffix(".bin").stat().st_size > 500_000
    with Embedder(ir) as embedder:  # chosen by suffix
        assert embedder.backend_name == "openvino"
        assert embedder.backend.model_contract == contract_of(load_onnx(graph))
        # normalisation compiled in: the Embedder feeds resized uint8 BGR
        assert embedder.contract == replace(contract_of(load_onnx(graph)),
                                            input_format=InputFormat.UINT8_BGR)
    assert sorted(p.name for p in ir.parent.iterdir()) == ["osnet.bin", "osnet.xml"]


def test_preprocessing_in_the_model_keeps_the_contract(ir, crops):
    """PrePostProcessor's uint8 BGR NHWC input against NumPy normalisation, and against
    torchreid's PIL resize (the level tests/runtime/test_embedder.py sets for our OpenCV path)."""
    from PIL import Image

    from reid_trt.runtime.backends.openvino import OpenVINOBackend

    with Embedder(ir) as inside, Embedder(ir) as numpy_path:
        numpy_path._attach(OpenVINOBackend(ir, preprocess_in_model=False), None, True)
        assert inside.backend.input_dtype == np.uint8
        assert numpy_path.backend.input_dtype == np.float32
        want = numpy_path.embed(crops)
        assert np.einsum("ij,ij->i", inside.embed(crops), want).min() >= 0.99999
        pil = [np.asarray(Image.fromarray(c[..., ::-1]).resize((128, 256), Image.BILINEAR))
               [..., ::-1] for c in crops]
        cos = np.einsum("ij,ij->i", inside.embed(pil), numpy_path.embed(crops))
        assert cos.mean() >= 0.9995 and cos.min() >= 0.998


def test_concurrent_callers(ir, crops):
    with Embedder(ir) as embedder:
        want = embedder.embed(crops)
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: embedder.embed(crops), range(8)))
    for got in results:
        assert np.abs(got - want).max() < 1e-5


def test_refusals(graphs, ir, real_weights, tmp_path, monkeypatch):
    graph = graphs["osnet_x0_25", "fp32"]
    lonely = tmp_path / "lonely.xml"
    lonely.write_bytes(ir.read_bytes())
    with pytest.raises(ReidTrtError, match="no weights file lonely.bin beside it"):
        Embedder(lonely)
    import openvino as ov  # an IR of another origin: no contract in its runtime info

    ov.save_model(ov.convert_model(str(graph)), str(tmp_path / "foreign.xml"))
    with pytest.raises(ReidTrtError, match="foreign.xml carries no reid-trt contract"):
        Embedder(tmp_path / "foreign.xml")
    with pytest.raises(ConfigError, match="device='tpu'"):
        Embedder(ir, device="tpu")
    with pytest.raises(ReidTrtError, match="cannot compile .* for NPU"):
        Embedder(ir, device="npu")  # no NPU here: the message lists what there is
    with pytest.raises(ReidTrtError, match="OpenVINO runs an .onnx"):
        Embedder(real_weights["msmt17"], backend="openvino")
    with pytest.raises(ConfigError, match="backend='tensorrt'.*not a model it runs"):
        Embedder(graph, backend="tensorrt")
    with pytest.raises(ConfigError, match="backend='tflite'"):
        Embedder(graph, backend="tflite")
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(MissingDependencyError, match=r"reid-trt\[openvino\]"):
        Embedder(graph, backend="openvino")
