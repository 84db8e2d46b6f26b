"""Precision in the graph: TensorRT 10+ builds strongly typed networks, so the ONNX tensor types
decide what runs in FP16 (TensorRT 11 and TensorRT-RTX have no FP16 builder flag any more).
"""

from __future__ import annotations

import onnx

from reid_trt.core.errors import MissingDependencyError
from reid_trt.core.onnxio import QDQ_FP16_OPSET

# InstanceNorm stays FP32: per-instance mean/variance in FP16 is where IN models lose accuracy
# under reduced precision (TensorRT issue 2691); it is a few cheap layers.
# The L2 normalisation (ReduceL2, Clip, Div: in OSNet graphs they occur nowhere else) too: a sum
# of 512 squares can pass FP16's 65504, and its 1e-12 epsilon underflows to zero.
FP32_OPS = ["InstanceNormalization", "ReduceL2", "Clip", "Div"]


def simplified(model: onnx.ModelProto) -> onnx.ModelProto:
    """onnxslim's simplification (constant folding, dead nodes, topological order), quietly."""
    import contextlib
    import io

    try:
        import onnxslim
    except ImportError:
        raise MissingDependencyError("onnxslim", "export", "graph simplification") from None
    with contextlib.redirect_stdout(io.StringIO()):
        return onnxslim.slim(model)


def to_fp16(model: onnx.ModelProto, keep_fp32_io: bool = True) -> onnx.ModelProto:
    """FP16 weights and activations, except the ops in FP32_OPS (wrapped in Casts)."""
    try:
        from onnxruntime.transformers.float16 import convert_float_to_float16
    except ImportError:
        raise MissingDependencyError("onnxruntime", "export", "FP16 conversion") from None
    return convert_float_to_float16(model, keep_io_types=keep_fp32_io, op_block_list=FP32_OPS)


def qdq_to_fp16(model: onnx.ModelProto, sort: bool = True) -> onnx.ModelProto:
    """A Q/DQ INT8 graph whose unquantized parts run in FP16 instead of FP32: scales and float
    tensors become FP16 at opset 19; the ops in FP32_OPS stay FP32; I/O stays FP32.

    The converter appends its Casts at the end of the node list; `sort` has onnxslim put them in
    order (the ONNX checker and TensorRT want that; ONNX Runtime sorts for itself)."""
    staged = onnx.ModelProto()
    staged.CopyFrom(model)
    for opset in staged.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = max(opset.version, QDQ_FP16_OPSET)
    converted = to_fp16(staged)
    if not sort:
        return converted
    try:
        import onnxslim
    except ImportError:
        raise MissingDependencyError("onnxslim", "export", "FP16 Q/DQ graphs") from None
    return onnxslim.slim(converted)
