"""A Q/DQ INT8 graph to build (the FP32 and FP16 graphs come from tests/conftest.py)."""

from pathlib import Path

import pytest

from reid_trt.core.preprocess import preprocess_numpy
from reid_trt.data.synthetic import person_like_crops


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
