"""Precision in the graph: TensorRT 10+ builds strongly typed networks, so the ONNX tensor types
decide what runs in FP16 (TensorRT 11 and TensorRT-RTX have no FP16 builder flag any more).
"""

from __future__ import annotations

import onnx

from reid_trt.errors import MissingDependencyError

# InstanceNorm stays FP32: per-instance mean/variance in FP16 is where IN models lose accuracy
# under reduced precision (TensorRT issue 2691); it is a few cheap layers.
# The L2 normalisation (ReduceL2, Clip, Div: in OSNet graphs they occur nowhere else) too: a sum
# of 512 squares can pass FP16's 65504, and its 1e-12 epsilon underflows to zero.
FP32_OPS = ["InstanceNormalization", "ReduceL2", "Clip", "Div"]


def to_fp16(model: onnx.ModelProto, keep_fp32_io: bool = True) -> onnx.ModelProto:
    """FP16 weights and activations, except the ops in FP32_OPS (wrapped in Casts)."""
    try:
        from onnxruntime.transformers.float16 import convert_float_to_float16
    except ImportError:
        raise MissingDependencyError("onnxruntime", "export", "FP16 conversion") from None
    return convert_float_to_float16(model, keep_io_types=keep_fp32_io, op_block_list=FP32_OPS)


# The first opset whose QuantizeLinear/DequantizeLinear take FP16 inputs and scales.
QDQ_FP16_OPSET = 19


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


def is_fp16_qdq(model: onnx.ModelProto) -> bool:
    ops = {node.op_type for node in model.graph.node}
    return "DequantizeLinear" in ops and any(
        init.data_type == onnx.TensorProto.FLOAT16 for init in model.graph.initializer)


def ort_disabled_optimizers(model: onnx.ModelProto) -> list[str]:
    """ONNX Runtime passes that miscompute this graph. WeightBiasQuantization turns a Q/DQ
    Conv's float bias into int32 via input scale x weight scale; with FP16 scales that product
    underflows and the outputs are garbage (cosine ~0.3 to the same graph unoptimised, onnxruntime
    1.32 CPU). TensorRT does not run ONNX Runtime's passes."""
    return ["WeightBiasQuantization"] if is_fp16_qdq(model) else []


def tensor_precisions(model: onnx.ModelProto) -> dict[str, int]:
    """Initializer count by element type name, e.g. {'FLOAT16': 180, 'FLOAT': 10}."""
    counts: dict[str, int] = {}
    for init in model.graph.initializer:
        name = onnx.TensorProto.DataType.Name(init.data_type)
        counts[name] = counts.get(name, 0) + 1
    return counts


def graph_precision(model: onnx.ModelProto) -> str:
    """What a strongly typed build of this graph computes in: 'int8', 'fp16' or 'fp32'."""
    ops = {node.op_type for node in model.graph.node}
    if {"QuantizeLinear", "DequantizeLinear"} & ops:
        return "int8"
    conv_weights = {node.input[1] for node in model.graph.node if node.op_type == "Conv"}
    types = {init.data_type for init in model.graph.initializer if init.name in conv_weights}
    return "fp16" if onnx.TensorProto.FLOAT16 in types else "fp32"
