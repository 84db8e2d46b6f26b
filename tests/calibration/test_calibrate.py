"""INT8 calibration of the real osnet_x0_25 weights on real crops: accuracy against FP32,
the Q/DQ graph TensorRT needs, the cache, the report, the labelled (mAP) path and bad inputs."""

import json
import struct

import cv2
import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from reid_trt.calibration.api import CalibrationConfig, calibrate_onnx, source_graph
from reid_trt.calibration.cache import calibration_hash
from reid_trt.calibration.quantize import layer_groups, quantize, tensor_ranges
from reid_trt.cli.export import app
from reid_trt.core.contract import contract_of
from reid_trt.core.metrics import cosine_rows, neighbour_agreement
from reid_trt.core.onnxio import ort_disabled_optimizers, ort_session
from reid_trt.core.preprocess import graph_input
from reid_trt.data.datasets import load_dataset, read_samples
from reid_trt.engine.build import engine_from_onnx
from reid_trt.export.precision import qdq_to_fp16

CONFIG = CalibrationConfig(size=128, method="minmax")


@pytest.fixture(scope="module")
def mixed_crops(shared_data, market_crops, tmp_path_factory):
    """Both real domains in one folder: Market-1501 crops (upscaled 64x128) and MOT17 boxes
    (1080p frames), the latter as <track id>/<n>.jpg."""
    root = tmp_path_factory.mktemp("mixed")
    for path in sorted((shared_data / "reid" / "market1501").iterdir()):
        (root / path.name).write_bytes(path.read_bytes())
    dataset = load_dataset(shared_data / "reid" / "mot17-mini")
    crops, samples, _ = read_samples(dataset.train)
    for i, (crop, sample) in enumerate(zip(crops, samples, strict=True)):
        (root / str(sample.pid)).mkdir(exist_ok=True)
        cv2.imwrite(str(root / str(sample.pid) / f"{i}.png"), crop)  # lossless: same pixels
    return root, market_crops + crops


@pytest.fixture(scope="module")
def calibrated(real_weights, mixed_crops, tmp_path_factory):
    """weights name -> (fp32 source graph, CalibrationResult)."""
    out = {}
    for name, weights in real_weights.items():
        folder = tmp_path_factory.mktemp(name)
        source, sha, _ = source_graph(None, weights)
        out[name] = (source, calibrate_onnx(source, sha, mixed_crops[0],
                                            folder / f"{name}.int8.onnx", CONFIG))
    return out


def test_int8_meets_the_acceptance_levels_on_real_crops(calibrated, mixed_crops, market_crops):
    crops = mixed_crops[1]
    for name, (source, result) in calibrated.items():
        report = result.report
        x = graph_input(crops, contract_of(source))
        fp32 = ort_session(source).run(None, {"images": x})[0]
        int8 = ort_session(str(result.path)).run(None, {"images": x})[0]
        cos = cosine_rows(int8, fp32)
        agreement = neighbour_agreement(fp32, int8, k=5)
        print(f"{name}: INT8 vs FP32 on {len(cos)} real crops: mean {cos.mean():.5f} "
              f"min {cos.min():.5f} top-5 {agreement:.3f}; float: {report['unquantized_layers']}")
        assert cos.mean() >= 0.995 and cos.min() >= 0.98, name
        market = cos[:len(market_crops)]
        assert market.mean() >= 0.995 and market.min() >= 0.98, name
        assert agreement >= 0.85
        # The search mattered: quantizing every layer misses the budget.
        naive = report["search_steps"][0]
        assert naive["excluded"] == [] and naive["mean_cosine"] < report["int8_vs_fp32"]["mean_cosine"]
        assert report["budget_held"] and report["evaluation_set"]["held_out"] > 50


def test_qdq_graph_is_what_tensorrt_takes(calibrated, tmp_path):
    source, result = calibrated["msmt17"]
    model = onnx.load(result.path)
    inits = {i.name: i for i in model.graph.initializer}
    dqs = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    assert dqs and any(n.op_type == "QuantizeLinear" for n in model.graph.node)
    # Weights INT8, symmetric (zero point 0); no int32 bias DequantizeLinear.
    for dq in dqs:
        if dq.input[0] in inits:
            assert inits[dq.input[0]].data_type == onnx.TensorProto.INT8
        if len(dq.input) > 2 and dq.input[2] in inits:
            assert not onnx.numpy_helper.to_array(inits[dq.input[2]]).any()
    contract = contract_of(model)
    assert contract.precision == "int8" and contract.variant == "osnet_x0_25"
    # The unquantized layers are FP16 (opset 19: FP16 Q/DQ scales); the graph is valid ONNX.
    assert result.report["unquantized_precision"] == "fp16"
    assert "(kept in fp16)" in result.report["unquantized_layers"]
    assert model.opset_import[0].version == 19
    float_types = {i.data_type for i in inits.values() if i.data_type in (
        onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)}
    assert float_types == {onnx.TensorProto.FLOAT16}
    onnx.checker.check_model(model, full_check=True)
    built = engine_from_onnx(result.path, tmp_path / "int8.plan")
    assert built.manifest.precision == "int8" and built.manifest.preprocessing == contract
    assert set(built.manifest.weighted_layers) == {"fp16", "int8"}
    assert sum(built.manifest.weighted_layers.values()) == 188


def test_fp16_remainder_against_fp32_remainder(real_weights, mixed_crops, tmp_path):
    """The same Q/DQ graph with its float layers in FP16 or FP32: the same embeddings to within
    INT8 rounding, and TensorRT's strongly typed network computes the float layers in FP16."""
    source, _, contract = source_graph(None, real_weights["msmt17"])
    x = graph_input(mixed_crops[1][:64], contract)
    ranges = tensor_ranges(source, [x[:32], x[32:]], "minmax")
    float_blocks = {n for part in ("conv2.0", "conv2.1", "conv3.0")
                    for n in layer_groups(source)[part]}
    q32 = quantize(source, ranges, float_blocks)
    q16 = qdq_to_fp16(q32)
    assert ort_disabled_optimizers(q16) == ["WeightBiasQuantization"]
    assert ort_disabled_optimizers(q32) == []
    a = ort_session(q32).run(None, {"images": x})[0]
    b = ort_session(q16).run(None, {"images": x})[0]
    cos = cosine_rows(a, b)
    assert cos.mean() > 0.995 and cos.min() > 0.98
    layers = {}
    for name, model in (("fp32", q32), ("fp16", q16)):
        path = tmp_path / f"{name}.onnx"
        onnx.save(model, path)
        layers[name] = engine_from_onnx(path, tmp_path / f"{name}.plan").manifest.weighted_layers
    assert set(layers["fp32"]) == {"fp32", "int8"} and set(layers["fp16"]) == {"fp16", "int8"}
    assert layers["fp16"]["fp16"] == layers["fp32"]["fp32"] == len(float_blocks)
    assert layers["fp16"]["int8"] == layers["fp32"]["int8"] == 188 - layers["fp16"]["fp16"]


def test_calibration_cache_and_report(calibrated):
    source, result = calibrated["market1501"]
    lines = result.cache.read_text().splitlines()
    assert lines[0] == "TRT-100300-MinMaxCalibration"
    scales = {}
    for line in lines[1:]:
        name, value = line.split(": ")
        scales[name] = struct.unpack(">f", bytes.fromhex(value))[0]
    assert len(scales) > 100 and all(0 < s < 10 for s in scales.values())
    assert result.report["calibration_hash"] in result.cache.name
    report = json.loads(result.report_path.read_text())
    assert report["method"] == "minmax" and report["calibration_set"]["images"] == 128
    assert report["calibration_set"]["identities"] == 37 + 8  # MOT17 tracks + Market ids
    assert set(report["int8_vs_fp32"]) == {"mean_cosine", "min_cosine", "topk_agreement",
                                           "map_drop"}
    assert report["int8_sha256"] and report["seconds"] > 0
    # Another calibration set, graph or preprocessing gives another cache name.
    base = calibration_hash("a", ["x.jpg"], {"height": 256})
    assert len({base, calibration_hash("b", ["x.jpg"], {"height": 256}),
                calibration_hash("a", ["y.jpg"], {"height": 256}),
                calibration_hash("a", ["x.jpg"], {"height": 128})}) == 4


def test_labelled_dataset_bounds_the_map_drop(real_weights, market_like, tmp_path):
    root = market_like
    source, sha, _ = source_graph(None, real_weights["msmt17"])
    result = calibrate_onnx(source, sha, root, tmp_path / "m.int8.onnx",
                            CalibrationConfig(size=64, method="minmax"))
    report = result.report
    assert report["calibration_set"]["dataset"] == "market1501"
    assert report["evaluation_set"]["queries"] > 10
    assert 0 < report["fp32_retrieval"]["mAP"] <= 1 and report["fp32_retrieval"]["rank1"] > 0.5
    assert report["int8_vs_fp32"]["map_drop"] <= 0.5 and report["budget_held"]


runner = CliRunner()


@pytest.mark.parametrize("setup,options,message", [
    (lambda p: None, [], "no images"),
    (lambda p: (p / "a.txt").write_text("x"), [], "no images"),
    (lambda p: cv2.imwrite(str(p / "a.jpg"), np.zeros((8, 8, 3), np.uint8)),
     ["--calib-dataset", "market1501"], "has no bounding_box_train"),
    (lambda p: cv2.imwrite(str(p / "a.jpg"), np.zeros((8, 8, 3), np.uint8)),
     ["--calib-size", "5"], "--calib-size 5: larger than the set (1 images)"),
])
def test_cli_bad_calibration_data(real_weights, tmp_path, setup, options, message):
    data = tmp_path / "data"
    data.mkdir()
    setup(data)
    out = tmp_path / "out"
    out.mkdir()
    result = runner.invoke(app, ["calibrate", "-w", str(real_weights["msmt17"]), "--calib-data",
                                 str(data), "-o", str(out / "m.int8.onnx"), *options])
    assert result.exit_code == 1 and message in result.stderr and "\n" not in result.stderr.strip()
    assert list(out.iterdir()) == []


def test_cli_int8_needs_data_and_an_fp32_graph(real_weights, tmp_path, shared_data):
    result = runner.invoke(app, ["trt", "--int8", "-w", str(real_weights["msmt17"]),
                                 "-o", str(tmp_path / "m.plan")])
    assert result.exit_code == 1 and "--calib-data: INT8 needs" in result.stderr
    fp16 = tmp_path / "m.fp16.onnx"
    runner.invoke(app, ["onnx", "-w", str(real_weights["msmt17"]), "-o", str(fp16),
                        "--precision", "fp16"])
    result = runner.invoke(app, ["calibrate", "--onnx", str(fp16), "--calib-data",
                                 str(shared_data / "reid" / "market1501"), "--calib-size", "4"])
    assert result.exit_code == 1 and "calibration takes an fp32 graph" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.fp16.onnx"]
