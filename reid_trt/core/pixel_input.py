"""A float graph made to take pixels itself: what `reid-export onnx --input` writes for the pixel
formats, and what ONNX Runtime on the CPU runs for an FP32 graph (the resized uint8 BGR batch), as
OpenVINO's PrePostProcessor does for its backend (runtime/backends/openvino.py).

In front of the graph: for uint8 BGR, Cast to float and the NHWC->NCHW Transpose; then one Add of
-pixel_max x mean. The 1 / (pixel_max x std) scale and, for BGR, the channel order go into the
weights of the convolutions that read the input. Exact even at the borders: the convolutions' zero
padding sits where the normalised image is zero. For the runtime, a quarter of the bytes cross
into it, and the normalisation runs in its threads instead of one NumPy pass (batch 32: 3.2 ms of
NumPy on a 2-core EPYC, benchmarks/results/embedder_overhead_cpu.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from reid_trt.core.contract import Contract
from reid_trt.core.options import InputFormat

# One 8-bit pixel step's value in each pixel format's input.
PIXEL_MAX = {InputFormat.UINT8_BGR: 255.0, InputFormat.RGB255: 255.0, InputFormat.RGB01: 1.0}


def _foldable_convs(model: onnx.ModelProto, name: str) -> list[onnx.NodeProto] | None:
    """The convolutions reading input `name`, where every reader of it is a plain (group 1)
    convolution with FP32 weights in the graph; else None."""
    weights = {init.name: init for init in model.graph.initializer}
    readers = [n for n in model.graph.node if name in n.input]
    if not readers:
        return None
    for node in readers:
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        weight = weights.get(node.input[1]) if len(node.input) > 1 else None
        if (node.op_type != "Conv" or list(node.input).index(name) != 0 or group != 1
                or weight is None or weight.data_type != TensorProto.FLOAT
                or len(weight.dims) != 4 or weight.dims[1] != 3):
            return None
    return readers


def with_pixel_input(model: onnx.ModelProto, input_format: InputFormat,
                     mean: Sequence[float], std: Sequence[float]) -> onnx.ModelProto | None:
    """A copy of `model` (FP32, normalised float N,3,H,W RGB in, `mean`/`std` as fractions of
    the pixel range) that takes `input_format`'s pixels under the same input name; None where its
    input is not FP32 or is read by anything but FP32 convolutions."""
    graph = model.graph
    bgr = input_format == InputFormat.UINT8_BGR
    if len(graph.input) != 1 or input_format not in PIXEL_MAX:
        return None
    source = graph.input[0]
    if source.type.tensor_type.elem_type != TensorProto.FLOAT:
        return None
    convs = _foldable_convs(model, source.name)
    if convs is None:
        return None
    pixel_max = PIXEL_MAX[input_format]
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    name = source.name
    shifted = f"{name}__reid_trt_shifted"
    # normalised_rgb[c] = (x[c'] / pixel_max - mean[c]) / std[c] = scale[c] * (x[c'] + shift[c']),
    # c' = 2 - c for BGR: the scale and the order go into the weights, the shift stays an Add.
    rgb_scale = 1.0 / (pixel_max * np.asarray(std, dtype=np.float64))
    shift = -pixel_max * np.asarray(mean, dtype=np.float64)
    if bgr:
        shift = shift[::-1]
    inits = {init.name: init for init in g.initializer}
    for k, node in enumerate(n for n in g.node if n.op_type == "Conv" and name in n.input):
        weight = numpy_helper.to_array(inits[node.input[1]]).astype(np.float64)
        folded = weight * rgb_scale.reshape(1, 3, 1, 1)
        if bgr:  # BGR input channel j is RGB channel 2 - j
            folded = folded[:, ::-1]
        weight_name = f"{node.input[1]}__reid_trt_pixels{k}"  # its own copy: others may share it
        g.initializer.append(numpy_helper.from_array(
            np.ascontiguousarray(folded.astype(np.float32)), weight_name))
        node.input[0], node.input[1] = shifted, weight_name
    shift_name = f"{name}__reid_trt_shift"
    g.initializer.append(numpy_helper.from_array(
        shift.astype(np.float32).reshape(1, 3, 1, 1), shift_name))
    front = [helper.make_node("Add", [name, shift_name], [shifted])]
    if bgr:
        # Cast before Transpose: TensorRT allows UINT8 only into a Cast.
        as_float, nchw = f"{name}__reid_trt_float", f"{name}__reid_trt_nchw"
        front = [helper.make_node("Cast", [name], [as_float], to=TensorProto.FLOAT),
                 helper.make_node("Transpose", [as_float], [nchw], perm=[0, 3, 1, 2]),
                 helper.make_node("Add", [nchw, shift_name], [shifted])]
    nodes = front + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    used = {i for n in g.node for i in n.input}
    kept = [init for init in g.initializer if init.name in used]
    del g.initializer[:]
    g.initializer.extend(kept)
    if bgr:
        dims = source.type.tensor_type.shape.dim
        batch, height, width = dims[0], dims[2].dim_value, dims[3].dim_value
        g.input[0].CopyFrom(helper.make_tensor_value_info(name, TensorProto.UINT8, [
            batch.dim_param or batch.dim_value or None, height, width, 3]))
    return out


def with_uint8_bgr_input(model: onnx.ModelProto, contract: Contract) -> onnx.ModelProto | None:
    """A copy of `model` (normalised float N,3,H,W RGB in) that takes N,H,W,3 uint8 BGR under
    the same input name; None where the graph is not one this applies to (another input format,
    FP16 input, or an input read by anything but FP32 convolutions)."""
    if contract.input_format != InputFormat.FLOAT:
        return None
    return with_pixel_input(model, InputFormat.UINT8_BGR, contract.mean, contract.std)
