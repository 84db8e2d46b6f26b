"""Graphs to build: real osnet_x0_25 and generated osnet_ain_x1_0, FP32, FP16 and a Q/DQ INT8."""

from pathlib import Path

import pytest

from reid_trt.core.preprocess import preprocess_numpy
from reid_trt.data.synthetic import person_like_crops
from reid_trt.export.api import ExportConfig, export_onnx


@pytest.fixture(scope="session")
def graphs(tmp_path_factory, real_weights, generated_checkpoint) -> dict[str, Path]:
    """(variant, precision) -> exported ONNX path, built once per session."""
    folder = tmp_path_factory.mktemp("graphs")
    sources = {"osnet_x0_25": real_weights["msmt17"],
               "osnet_ain_x1_0": generated_checkpoint("osnet_ain_x1_0")}
    return {(variant, precision): export_onnx(weights, folder / f"{variant}.{precision}.onnx",
                                               ExportConfig(precision=precision)).path
            for variant, weights in sources.items() for precision in ("fp32", "fp16")}


@pytest.fixture(scope="session")
def qdq_graph(graphs, tmp_path_factory) -> Path:
    """An INT8 Q/DQ graph as a generic quantizer makes it (stand-in until reid-trt calibrates):
    symmetric per-channel weights, symmetric activations, biases left in float for TensorRT."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Crops(CalibrationDataReader):
        def __init__(self):
            batches = [preprocess_numpy(person_like_crops(4, seed=s)) for s in range(4)]
            self.batches = iter({"images": b} for b in batches)

        def get_next(self):
            return next(self.batches, None)

    out = tmp_path_factory.mktemp("qdq") / "osnet_x0_25.int8.onnx"
    quantize_static(str(graphs["osnet_x0_25", "fp32"]), str(out), Crops(),
                    quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8, per_channel=True,
                    extra_options={"ActivationSymmetric": True, "WeightSymmetric": True,
                                   "QuantizeBias": False})
    return out
