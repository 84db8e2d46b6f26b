"""ONNX graphs in and out: loading with clear errors, what precision a graph computes in, and
the one ONNX Runtime session factory that export, calibration, the runtime and bench share.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from reid_trt.core.errors import MissingDependencyError, ReidTrtError, opt
from reid_trt.core.threads import OFFLINE, ThreadSettings

# The first opset whose QuantizeLinear/DequantizeLinear take FP16 inputs and scales.
QDQ_FP16_OPSET = 19


def load_onnx(path: Path | str, what: str = opt("onnx")) -> onnx.ModelProto:
    """A graph from disk; a missing, unreadable or non-ONNX file is a one-line error."""
    path = Path(path)
    if path.is_dir():
        raise ReidTrtError(f"{what} {path} is a directory; pass the path of an .onnx file")
    if not path.is_file():
        raise ReidTrtError(f"{what} {path}: no such file; pass the path of an .onnx exported by "
                           "reid-export")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf raises DecodeError, ValueError, RuntimeError, ...
        reason = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise ReidTrtError(f"{what} {path} is not a readable ONNX model (truncated or corrupt?): "
                           f"{reason}") from None
    if not model.graph.input or not model.graph.output or not model.graph.node:
        raise ReidTrtError(f"{what} {path} holds no graph (no inputs, outputs or nodes); pass a "
                           "graph exported by reid-export")
    return model


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


def graph_precision(model: onnx.ModelProto) -> str:
    """What a strongly typed build of this graph computes in: 'int8', 'fp16' or 'fp32'."""
    ops = {node.op_type for node in model.graph.node}
    if {"QuantizeLinear", "DequantizeLinear"} & ops:
        return "int8"
    conv_weights = {node.input[1] for node in model.graph.node if node.op_type == "Conv"}
    types = {init.data_type for init in model.graph.initializer if init.name in conv_weights}
    return "fp16" if onnx.TensorProto.FLOAT16 in types else "fp32"


def tensor_precisions(model: onnx.ModelProto) -> dict[str, int]:
    """Initializer count by element type name, e.g. {'FLOAT16': 180, 'FLOAT': 10}."""
    counts: dict[str, int] = {}
    for init in model.graph.initializer:
        name = onnx.TensorProto.DataType.Name(init.data_type)
        counts[name] = counts.get(name, 0) + 1
    return counts


def onnxruntime(purpose: str = "running .onnx models"):
    try:
        import onnxruntime as ort
    except ImportError:
        raise MissingDependencyError("onnxruntime", "ort", purpose) from None
    return ort


def ort_session(model: onnx.ModelProto | Path | str, cuda_device: int | None = None,
                source: str = "graph", threads: ThreadSettings = OFFLINE,
                int8_in_float: bool = False, as_any_consumer: bool = False):
    """The package's one InferenceSession factory: for `model` (a graph or its path), on CUDA
    device `cuda_device` when given (the caller has checked the provider exists), else the CPU;
    with the passes that miscompute the graph turned off. `threads` (core/threads.py): OFFLINE
    unless the caller runs a model for an app (Embedder passes RUNTIME). `int8_in_float`: Q/DQ
    pairs computed as written (quantize, dequantize, float op) instead of fused into ONNX
    Runtime's integer kernels, whose AVX2 path without VNNI saturates 16-bit sums: what
    calibration judges is then what TensorRT computes, the same on every x86 CPU.
    `as_any_consumer`: ONNX Runtime's default graph passes, none turned off: what any other
    consumer of the file computes."""
    ort = onnxruntime()
    if not isinstance(model, onnx.ModelProto):
        source = str(model)
        model = load_onnx(model)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    threads.ort_options(options)
    if int8_in_float:
        options.add_session_config_entry("session.disable_quant_qdq", "1")
    providers: list = ["CPUExecutionProvider"]
    if cuda_device is not None:
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": cuda_device}))
    disabled = [] if as_any_consumer else ort_disabled_optimizers(model)
    try:
        return ort.InferenceSession(model.SerializeToString(), options, providers=providers,
                                    disabled_optimizers=disabled)
    except Exception as e:  # ORT's Fail/InvalidGraph/NotImplemented: all mean "bad graph"
        reason = str(e).splitlines()[0][:200]
        raise ReidTrtError(f"ONNX Runtime cannot load {source}: {reason}; re-export it with "
                           "reid-export") from None


def has_cuda_provider() -> bool:
    return "CUDAExecutionProvider" in onnxruntime().get_available_providers()


def probe_session(model: onnx.ModelProto, tensors: list[str]):
    """A CPU session of `model` whose outputs are the named intermediate float tensors (for
    statistics over activations: calibration ranges, equalisation)."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    del probe.graph.output[:]
    for name in tensors:
        probe.graph.output.append(onnx.helper.make_tensor_value_info(
            name, onnx.TensorProto.FLOAT, None))
    return ort_session(probe, source="the graph probed for activations")
