"""Where Q/DQ go, by TensorRT's explicit-quantization rules, and how much work runs in INT8.

- Both inputs of every spatial Conv are quantized (TensorRT fuses DQ -> Conv into an INT8 kernel).
- GEMV-shaped layers stay float: the channel gates' fully connected 1x1 convs run on 1x1 maps
  and the embedding Gemm on one vector per crop. INT8 makes them no faster (TensorRT and
  NVIDIA ModelOpt leave such layers unquantized) and the sigmoid gates are where INT8 hurts
  OSNet most. They are not counted against INT8 either.
- The residual Add gets a Q/DQ on its identity input, so TensorRT can fuse Conv + Add (+ ReLU)
  into one INT8 kernel with the Conv on the other input.
- InstanceNorm is never quantized.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

WEIGHTED = ("Conv", "Gemm", "MatMul")


@dataclass(frozen=True)
class Layer:
    node: str
    op: str
    macs: int  # multiply-accumulates per crop
    gemv: bool  # one output position per crop: gates and the embedding Gemm


def _shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {}
    for value in [*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input]:
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = [d.dim_value if d.dim_value > 0 else 1 for d in dims]
    return shapes


def weighted_layers(model: onnx.ModelProto) -> list[Layer]:
    """The Conv/Gemm layers with their work per crop (batch dimensions count as 1), in a float
    or a Q/DQ graph."""
    shapes = _shapes(model)
    weights = {init.name: list(init.dims) for init in model.graph.initializer}
    for node in model.graph.node:  # Q/DQ graphs: INT8 weights come through DequantizeLinear
        if node.op_type == "DequantizeLinear" and node.input[0] in weights:
            weights[node.output[0]] = weights[node.input[0]]
    layers = []
    for node in model.graph.node:
        if node.op_type not in WEIGHTED or len(node.input) < 2 or node.input[1] not in weights:
            continue
        w = weights[node.input[1]]
        out = shapes.get(node.output[0], [1])
        positions = int(np.prod(out[2:])) if node.op_type == "Conv" else 1
        per_output = int(np.prod(w[1:])) if node.op_type == "Conv" else w[0 if node.op_type ==
                                                                           "MatMul" else 1]
        channels = w[0] if node.op_type == "Conv" else int(np.prod(out[1:]))
        layers.append(Layer(node.name, node.op_type, channels * positions * per_output,
                            positions == 1))
    return layers


def float_nodes(model: onnx.ModelProto) -> set[str]:
    """Weighted layers INT8 should leave alone: the GEMV-shaped ones."""
    return {layer.node for layer in weighted_layers(model) if layer.gemv}


def residual_adds(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """Adds that close a residual block: their sum goes into ReLU or InstanceNorm (the stream
    sums of OSNet's blocks go into another Add or the block's last conv)."""
    consumers: dict[str, list[str]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.op_type)
    return [n for n in model.graph.node if n.op_type == "Add" and
            set(consumers.get(n.output[0], [])) & {"Relu", "InstanceNormalization"}]


def dq_sources(model: onnx.ModelProto) -> dict[str, str]:
    """DequantizeLinear output -> the float tensor its QuantizeLinear quantized."""
    q_input = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "QuantizeLinear"}
    return {n.output[0]: q_input[n.input[0]] for n in model.graph.node
            if n.op_type == "DequantizeLinear" and n.input[0] in q_input}


def quantize_residual_inputs(model: onnx.ModelProto, amax: dict[str, float],
                             originals: list[onnx.NodeProto]) -> int:
    """Puts the identity input (input 1) of each residual Add behind INT8 Q/DQ, in place.

    `originals`: the residual Adds of the graph before quantization (same names). Where the
    identity tensor is already quantized for a Conv, its DQ output is reused; otherwise a
    Q/DQ pair with the calibrated range is added. Returns how many Adds were rewired."""
    dq_of = {tensor: dq for dq, tensor in dq_sources(model).items()}
    names = {n.name for n in originals}
    done = 0
    for node in model.graph.node:
        if node.name not in names or node.op_type != "Add":
            continue
        identity = node.input[1]
        if identity in dq_of.values():
            continue
        if identity not in dq_of:
            if identity not in amax:
                continue
            dq_of[identity] = _add_qdq(model, identity, amax[identity])
        node.input[1] = dq_of[identity]
        done += 1
    return done


def _add_qdq(model: onnx.ModelProto, tensor: str, amax: float) -> str:
    scale = numpy_helper.from_array(np.array(amax / 127.0, np.float32), f"{tensor}_res_scale")
    zero = numpy_helper.from_array(np.array(0, np.int8), f"{tensor}_res_zero_point")
    model.graph.initializer.extend([scale, zero])
    q = helper.make_node("QuantizeLinear", [tensor, scale.name, zero.name],
                         [f"{tensor}_res_q"], name=f"{tensor}_res_QuantizeLinear")
    dq = helper.make_node("DequantizeLinear", [q.output[0], scale.name, zero.name],
                          [f"{tensor}_res_dq"], name=f"{tensor}_res_DequantizeLinear")
    # After the producer, so the node list stays in topological order.
    nodes = list(model.graph.node)
    at = next((i + 1 for i, n in enumerate(nodes) if tensor in n.output), 0)
    nodes[at:at] = [q, dq]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return dq.output[0]


def int8_layers(model: onnx.ModelProto) -> set[str]:
    """Weighted layers of a Q/DQ graph whose data and weights both come from DequantizeLinear."""
    dq_outputs = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    return {n.name for n in model.graph.node if n.op_type in WEIGHTED and len(n.input) > 1
            and n.input[0] in dq_outputs and n.input[1] in dq_outputs}


@dataclass(frozen=True)
class Int8Work:
    """Share of the conv work (MACs, GEMV-shaped layers left out) that runs in INT8, and the
    layer counts behind it."""

    int8_mac_share: float
    macs_per_crop: int
    int8_macs_per_crop: int
    layers: int
    gemv_layers_float: int
    int8_layers: int
    float_layers: int


def int8_work(source: onnx.ModelProto, quantized: onnx.ModelProto) -> Int8Work:
    layers = weighted_layers(source)
    int8 = int8_layers(quantized)
    counted = [layer for layer in layers if not layer.gemv]
    total = sum(layer.macs for layer in counted)
    in_int8 = sum(layer.macs for layer in counted if layer.node in int8)
    return Int8Work(int8_mac_share=in_int8 / total if total else 0.0, macs_per_crop=total,
                    int8_macs_per_crop=in_int8, layers=len(layers),
                    gemv_layers_float=sum(layer.gemv for layer in layers),
                    int8_layers=sum(layer.node in int8 for layer in counted),
                    float_layers=sum(layer.node not in int8 for layer in counted))


def activation_tensors(model: onnx.ModelProto) -> list[str]:
    """The float tensors INT8 quantizes: the data input of each weighted layer and the identity
    input of each residual Add (each once, in graph order)."""
    names = [n.input[0] for n in model.graph.node if n.op_type in WEIGHTED and len(n.input) > 1]
    names += [n.input[1] for n in residual_adds(model)]
    inits = {i.name for i in model.graph.initializer}
    return [n for n in dict.fromkeys(names) if n not in inits]
