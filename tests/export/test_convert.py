"""FP16 from an FP32 graph (issue 21): what trtexec users type, done as a verified conversion."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from reid_trt.cli.export import app
from reid_trt.core.contract import contract_of
from reid_trt.core.metrics import cosine_rows
from reid_trt.core.onnxio import graph_precision, ort_session
from reid_trt.core.preprocess import graph_input
from reid_trt.data.folder import read_crops
from reid_trt.data.mot import mot_crops

pytestmark = pytest.mark.slow  # FP16 conversions verified and built

runner = CliRunner()


def _real_crops(shared_data) -> list[np.ndarray]:
    boxes, _ = mot_crops(shared_data / "reid" / "mot17-mini" / "train" / "MOT17-02-FRCNN")
    return boxes + [c for d in ("market1501", "msmt17", "cuhk03")
                    for c in read_crops(shared_data / "reid" / d)]


def test_fp16_engine_from_an_fp32_graph(graphs, shared_data, tmp_path):
    """`reid-export trt --onnx fp32.onnx --precision fp16` converts, verifies on the crops
    given, builds an FP16 engine and records the conversion in the manifest."""
    fp32 = graphs["osnet_x0_25", "fp32"]
    engine = tmp_path / "osnet.fp16.plan"
    result = runner.invoke(app, ["trt", "--onnx", str(fp32), "--precision", "fp16", "-o",
                                 str(engine), "--verify-data",
                                 str(shared_data / "reid" / "market1501")])
    assert result.exit_code == 0, result.output
    manifest = json.loads(engine.with_name("osnet.fp16.plan.json").read_text())
    assert manifest["precision"] == "fp16"
    assert manifest["contract"]["precision"] == "fp16"
    assert set(manifest["weighted_layers"]) == {"fp16"}
    conversion = manifest["options"]["fp16_conversion"]
    assert conversion["parity_to_fp32"]["crops"] == 9
    assert conversion["parity_to_fp32"]["min_cosine"] >= 0.9995
    assert sorted(p.name for p in tmp_path.iterdir()) == ["osnet.fp16.plan",
                                                          "osnet.fp16.plan.json"]


def test_fp16_command_keeps_instancenorm_fp32(graphs, shared_data, tmp_path):
    """The conversion as a command, on OSNet-AIN (InstanceNorm) and the real osnet_x0_25: the
    FP16 graph matches its FP32 graph on real crops, InstanceNorm runs on FP32 tensors."""
    crops = _real_crops(shared_data)
    for variant in ("osnet_x0_25", "osnet_ain_x1_0"):
        out = tmp_path / f"{variant}.fp16.onnx"
        result = runner.invoke(app, ["fp16", "--onnx", str(graphs[variant, "fp32"]), "-o",
                                     str(out)])
        assert result.exit_code == 0, result.output
        model = onnx.load(out)
        assert graph_precision(model) == "fp16" and contract_of(model).precision == "fp16"
        types = {v.name: v.type.tensor_type.elem_type for v in
                 onnx.shape_inference.infer_shapes(model).graph.value_info}
        for node in model.graph.node:
            if node.op_type == "InstanceNormalization":
                assert types.get(node.input[0]) == onnx.TensorProto.FLOAT, node.name
        source = onnx.load(graphs[variant, "fp32"])
        x = graph_input(crops, contract_of(source))
        want = ort_session(source).run(None, {"images": x})[0]
        got = ort_session(model).run(None, {"images": x})[0]
        cos = cosine_rows(got, want)
        print(f"{variant}: fp16 vs fp32 on {len(crops)} real crops: min {cos.min():.6f}")
        assert cos.min() >= 0.9995, variant


def test_fp16_refusals(graphs, tmp_path):
    fp16 = graphs["osnet_x0_25", "fp16"]
    result = runner.invoke(app, ["fp16", "--onnx", str(fp16), "-o", str(tmp_path / "x.onnx")])
    assert result.exit_code == 1 and "is an fp16 graph; FP16 conversion takes an fp32 graph" \
        in result.stderr
    result = runner.invoke(app, ["trt", "--onnx", str(fp16), "--precision", "fp32", "-o",
                                 str(tmp_path / "x.plan")])
    assert result.exit_code == 1 and "is an fp16 graph but --precision fp32" in result.stderr
    result = runner.invoke(app, ["fp16", "--onnx", str(graphs["osnet_x0_25", "fp32"]), "-o",
                                 str(graphs["osnet_x0_25", "fp32"])])
    assert result.exit_code == 1 and "overwrite the input" in result.stderr
    assert list(tmp_path.iterdir()) == []
