"""DeepStream's nvtracker cannot run here: its input rules are reproduced exactly (resize to
inferDims, RGB planar, y = netScaleFactor * (x - offsets[c])) from the config reid-export writes,
and its keys are checked against the documented set. Engines are real TensorRT-RTX builds."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from reid_trt.cli.export import app as export_app
from reid_trt.core.contract import contract_of
from reid_trt.core.errors import ReidTrtError
from reid_trt.core.onnxio import load_onnx, ort_session
from reid_trt.core.preprocess import graph_input
from reid_trt.integrations import deepstream
from reid_trt.runtime.embedder import Embedder
from tests.integrations.conftest import export_for

pytestmark = pytest.mark.slow  # engine builds for DeepStream configs

runner = CliRunner()
NVIDIA_SAMPLE = {"offsets": [123.675, 116.28, 103.53], "netScaleFactor": 1 / 57.63}


@pytest.fixture(scope="module")
def ds_graph(real_weights, tmp_path_factory):
    return export_for("deepstream", real_weights["msmt17"],
                      tmp_path_factory.mktemp("deepstream") / "osnet_x0_25.ds.onnx")[0]


@pytest.fixture(scope="module")
def crops(shared_data, market_crops):
    from reid_trt.data.mot import mot_crops

    mot, _ = mot_crops(shared_data / "reid" / "mot17-mini" / "train" / "MOT17-02-FRCNN")
    return market_crops + mot


def write_config(tmp_path, *args) -> tuple[int, str, dict | None]:
    out = tmp_path / "config_tracker_reid.yml"
    result = runner.invoke(export_app, ["deepstream", *map(str, args), "-o", str(out)])
    section = deepstream.read_reid_section(out) if out.exists() else None
    return result.exit_code, result.output, section


def fed_like_deepstream(graph, crops, section) -> np.ndarray:
    """What nvtracker computes: each crop scaled to inferDims (keepAspc 0: no letterbox), RGB
    planar, y = netScaleFactor * (x - offsets[c]), then the network."""
    channels, height, width = section["inferDims"]
    assert channels == 3 and section["inputOrder"] == 0 and section["colorFormat"] == 0
    rgb = np.stack([cv2.resize(c, (width, height), interpolation=cv2.INTER_LINEAR)[..., ::-1]
                    for c in crops]).astype(np.float32)
    x = section["netScaleFactor"] * (rgb - np.float32(section["offsets"]))
    model = load_onnx(graph)
    return ort_session(model).run(None, {model.graph.input[0].name:
                                         np.ascontiguousarray(x.transpose(0, 3, 1, 2))})[0]


def pytorch_on(weights, crops, size) -> np.ndarray:
    """The eager model on the same INTER_LINEAR-resized pixels, normalised per channel."""
    resized = [cv2.resize(c, (size[1], size[0]), interpolation=cv2.INTER_LINEAR) for c in crops]
    with Embedder(weights, device="cpu") as embedder:
        return embedder.embed(resized)


def unit(v):
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_graph_fed_as_deepstream_feeds_it_matches_pytorch(ds_graph, real_weights, crops,
                                                          tmp_path, graphs):
    code, output, section = write_config(tmp_path, "--onnx", ds_graph)
    assert code == 0, output
    assert section["offsets"] == [0.0, 0.0, 0.0] and section["netScaleFactor"] == 1.0
    want = pytorch_on(real_weights["msmt17"], crops, (256, 128))
    got = unit(fed_like_deepstream(ds_graph, crops, section))
    cos = np.einsum("ij,ij->i", got, want)
    assert len(crops) > 50 and cos.min() >= 0.9999
    # NVIDIA's sample setting (mean offsets, one scale of 1/57.63) on a graph that expects
    # ImageNet-normalised input: measurably off, which is why the graph normalises inside.
    sample = unit(fed_like_deepstream(graphs["osnet_x0_25", "fp32"], crops,
                                      {**section, **NVIDIA_SAMPLE}))
    sample_cos = np.einsum("ij,ij->i", sample, want)
    print(f"\n{len(crops)} crops, cosine to PyTorch: --for deepstream graph min {cos.min():.6f}; "
          f"NVIDIA's sample scaling min {sample_cos.min():.6f}, mean {sample_cos.mean():.6f}")
    assert sample_cos.min() < 0.9999


def test_every_key_is_documented_and_numbers_come_from_the_model(ds_graph, tmp_path):
    code, output, section = write_config(tmp_path, "--onnx", ds_graph, "--tracker", "deepsort",
                                         "--batch", 32)
    assert code == 0, output
    assert set(section) <= deepstream.DOCUMENTED_KEYS
    contract = contract_of(load_onnx(ds_graph))
    assert section["reidType"] == 1 and section["batchSize"] == 32
    assert section["reidFeatureSize"] == contract.embedding_dim == 512
    assert section["inferDims"] == [3, contract.height, contract.width]
    assert section["networkMode"] == 0 and section["keepAspc"] == 0
    assert section["addFeatureNormalization"] == 1  # the graph's output is raw
    assert section["onnxFile"] == os.path.relpath(ds_graph, tmp_path)  # nvtracker resolves
    # paths from the config's folder
    assert section["modelEngineFile"].endswith(f"{ds_graph.name}_b32_gpu0_fp32.engine")
    text = (tmp_path / "config_tracker_reid.yml").read_text()
    assert text.startswith("%YAML:1.0\n")  # as NVIDIA's tracker configs start


@pytest.fixture(scope="module")
def int8_engine(ds_graph, tmp_path_factory):
    """An INT8 engine (TensorRT-RTX, real build) of a Q/DQ copy of the DeepStream graph."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    from reid_trt.data.synthetic import person_like_crops
    from reid_trt.engine.build import BuildConfig, engine_from_onnx

    contract = contract_of(load_onnx(ds_graph))

    class Crops(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"images": graph_input(person_like_crops(4, seed=s), contract)}
                                 for s in range(2)])

        def get_next(self):
            return next(self.batches, None)

    folder = tmp_path_factory.mktemp("ds-int8")
    qdq = folder / "osnet_x0_25.ds.int8.onnx"
    quantize_static(str(ds_graph), str(qdq), Crops(), quant_format=QuantFormat.QDQ,
                    per_channel=True, extra_options={"ActivationSymmetric": True,
                                                     "WeightSymmetric": True,
                                                     "QuantizeBias": False})
    return engine_from_onnx(qdq, folder / "osnet_x0_25.ds.int8.engine",
                            BuildConfig(max_batch=16)).engine


def test_int8_engine_config_and_its_bad_edits(int8_engine, tmp_path):
    code, output, section = write_config(tmp_path, "--engine", int8_engine)
    assert code == 0, output
    assert section["networkMode"] == 2 and section["batchSize"] == 16
    assert "onnxFile" not in section and section["modelEngineFile"].endswith(int8_engine.name)
    config = tmp_path / "config_tracker_reid.yml"
    for key, value, message in (
            ("networkMode", 1, "networkMode is 1; set networkMode: 2 (the model is int8)"),
            ("keepAspc", 1, "keepAspc is 1; set keepAspc: 0"),
            ("netScaleFactor", 0.0174, "netScaleFactor is 0.0174; set netScaleFactor: 1.0"),
            ("batchSize", 64, "batchSize: 64, but the engine takes 1 to 16"),
            ("reidFeatureSze", 512, "unknown key(s) reidFeatureSze")):
        edited = tmp_path / f"{key}.yml"
        edited.write_text(yaml.safe_dump({"ReID": {**section, key: value}}))
        result = runner.invoke(export_app, ["deepstream", "--engine", str(int8_engine), "-o",
                                            str(edited), "--check"])
        assert result.exit_code == 1 and message in result.output, result.output
    result = runner.invoke(export_app, ["deepstream", "--engine", str(int8_engine), "-o",
                                        str(config), "--check"])
    assert result.exit_code == 0, result.output


def test_refusals_write_nothing(graphs, ds_graph, tmp_path):
    before = sorted(tmp_path.iterdir())
    for args, message in (
            (["--onnx", graphs["osnet_x0_25", "fp32"]], "takes float input; DeepStream feeds "
                                                       "RGB 0-255"),
            (["--onnx", ds_graph, "--engine", ds_graph], "pass either --engine PLAN or --onnx"),
            (["--onnx", ds_graph, "--tracker", "iou"], "--tracker iou: choose nvdcf or deepsort"),
            (["--onnx", ds_graph, "--batch", 0], "--batch 0: pass 1 to 4096")):
        code, output, _ = write_config(tmp_path, *args)
        assert code == 1 and message in output, output
    result = runner.invoke(export_app, ["deepstream", "--onnx", str(ds_graph), "-o",
                                        str(tmp_path / "config.txt")])
    assert result.exit_code == 1 and "must end in .yml or .yaml" in result.output
    assert sorted(tmp_path.iterdir()) == before
    with pytest.raises(ReidTrtError, match="no ReID section"):
        bad = tmp_path / "other.yml"
        bad.write_text("BaseConfig:\n  minDetectorConfidence: 0.2\n")
        deepstream.read_reid_section(bad)

