"""A float graph made to take the resized uint8 BGR batch itself, for ONNX Runtime on the CPU: what
OpenVINO's PrePostProcessor does for its backend (runtime/backends/openvino.py), written as ONNX.

In front of the graph: Cast to float and the NHWC->NCHW Transpose, then one Add of -255 x mean
(BGR order); the 1 / (255 x std) scale and the BGR->RGB order go into the weights of the
convolutions that read the input, as `reid-export onnx --input uint8-bgr` folds them
(export/fold.py). Exact even at the borders: the convolutions' zero padding sits where the
normalised image is zero. A quarter of the bytes cross into the runtime, and the normalisation runs
in its threads instead of one NumPy pass (batch 32: 3.2 ms of NumPy on a 2-core EPYC,
benchmarks/results/embedder_overhead_cpu.md).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from reid_trt.core.contract import Contract
from reid_trt.core.options import InputFormat


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


def with_uint8_bgr_input(model: onnx.ModelProto, contract: Contract) -> onnx.ModelProto | None:
    """A copy of `model` (normalised float N,3,H,W RGB in) that takes N,H,W,3 uint8 BGR under
    the same input name; None where the graph is not one this applies to (another input format,
    FP16 input, or an input read by anything but FP32 convolutions)."""
    graph = model.graph
    if contract.input_format != InputFormat.FLOAT or len(graph.input) != 1:
        return None
    source = graph.input[0]
    if source.type.tensor_type.elem_type != TensorProto.FLOAT:
        return None
    convs = _foldable_convs(model, source.name)
    if convs is None:
        return None
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    name = source.name
    shifted = f"{name}__reid_trt_shifted"
    # BGR input channel j is RGB channel 2 - j: scale, then reverse the weights' input channels.
    rgb_scale = 1.0 / (255.0 * np.asarray(contract.std, dtype=np.float64))
    shift_bgr = (-255.0 * np.asarray(contract.mean, dtype=np.float64))[::-1]
    inits = {init.name: init for init in g.initializer}
    for k, node in enumerate(n for n in g.node if n.op_type == "Conv" and name in n.input):
        weight = numpy_helper.to_array(inits[node.input[1]]).astype(np.float64)
        folded = (weight * rgb_scale.reshape(1, 3, 1, 1))[:, ::-1].astype(np.float32)
        weight_name = f"{node.input[1]}__reid_trt_bgr{k}"  # its own copy: another node may share it
        g.initializer.append(numpy_helper.from_array(np.ascontiguousarray(folded), weight_name))
        node.input[0], node.input[1] = shifted, weight_name
    as_float, nchw = f"{name}__reid_trt_float", f"{name}__reid_trt_nchw"
    shift_name = f"{name}__reid_trt_shift"
    g.initializer.append(numpy_helper.from_array(
        shift_bgr.astype(np.float32).reshape(1, 3, 1, 1), shift_name))
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
    batch = source.type.tensor_type.shape.dim[0]
    new_input = helper.make_tensor_value_info(name, TensorProto.UINT8, [
        batch.dim_param or batch.dim_value or None, contract.height, contract.width, 3])
    g.input[0].CopyFrom(new_input)
    return out
