"""Cross-layer equalisation of OSNet's LightConv3x3 pairs, on the FP32 ONNX graph.

In every LightConv3x3 a linear 1x1 conv feeds a depthwise 3x3 conv and nothing else, so output
channel c of the 1x1 can be divided by s_c and input channel c of the depthwise multiplied by
s_c: the graph computes exactly the same function (Nagel et al. 2019, "Data-Free Quantization
Through Weight Equalization and Bias Correction"). INT8 quantizes that intermediate tensor with
one scale for all its channels, and its channels' ranges differ by orders of magnitude; scaling
every channel to the widest one's range makes the one scale fit them all. Both convs have
per-channel INT8 weights, so the scales cost their weights nothing. The scales come from the
data (per-channel maxima on the calibration set, as SmoothQuant's do), not from the weights.

Written here rather than taken from a library: AIMET's ONNX CLE and ONNX Runtime's SmoothQuant
hook look for Conv-BN-ReLU-Conv chains and transformer MatMuls; neither knows this pair, which
has no activation between the two convs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from reid_trt.core.onnxio import probe_session

MAX_GAIN = 64.0  # a channel's range is raised by at most this factor (dead channels stay dead)


@dataclass(frozen=True)
class Pair:
    pointwise: onnx.NodeProto  # 1x1 conv, groups 1
    depthwise: onnx.NodeProto  # 3x3 conv, one group per channel

    @property
    def tensor(self) -> str:
        return self.pointwise.output[0]


def _group(node: onnx.NodeProto) -> int:
    return next((a.i for a in node.attribute if a.name == "group"), 1)


def lightconv_pairs(model: onnx.ModelProto) -> list[Pair]:
    """Every 1x1 conv whose only consumer is a depthwise conv over its channels."""
    weights = {init.name: init for init in model.graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    pairs = []
    for node in model.graph.node:
        if node.op_type != "Conv" or _group(node) != 1 or node.input[1] not in weights:
            continue
        shape = tuple(weights[node.input[1]].dims)
        users = consumers.get(node.output[0], [])
        if shape[2:] != (1, 1) or len(users) != 1 or users[0].op_type != "Conv":
            continue
        dw = users[0]
        if _group(dw) == shape[0] and dw.input[1] in weights and \
                tuple(weights[dw.input[1]].dims)[:2] == (shape[0], 1):
            pairs.append(Pair(node, dw))
    return pairs


def channel_ranges(model: onnx.ModelProto, tensors: list[str], batches: list[np.ndarray]
                   ) -> dict[str, np.ndarray]:
    """max |x| per channel of each tensor (N,C,H,W) over the batches."""
    session = probe_session(model, tensors)
    feed = model.graph.input[0].name
    ranges = {name: None for name in tensors}
    for batch in batches:
        for name, value in zip(tensors, session.run(tensors, {feed: batch}), strict=True):
            peak = np.abs(value).max(axis=(0, 2, 3))
            ranges[name] = peak if ranges[name] is None else np.maximum(ranges[name], peak)
    return ranges


def equalize(model: onnx.ModelProto, batches: list[np.ndarray]) -> tuple[onnx.ModelProto, int]:
    """A copy of `model` with every LightConv3x3 pair equalised; returns it and the pair count."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    pairs = lightconv_pairs(out)
    if not pairs:
        return out, 0
    ranges = channel_ranges(out, [p.tensor for p in pairs], batches)
    inits = {init.name: init for init in out.graph.initializer}
    shared = {}  # a weight shared by two convs must not be scaled twice
    for node in out.graph.node:
        for name in node.input[1:]:
            shared[name] = shared.get(name, 0) + 1
    for pair in pairs:
        names = [pair.pointwise.input[1], pair.depthwise.input[1], *pair.pointwise.input[2:3]]
        if any(shared.get(n, 0) > 1 for n in names):
            continue
        r = ranges[pair.tensor].astype(np.float64)
        if r.max() <= 0:
            continue
        # s_c: the channel's range over the widest channel's; the new range is r_c / s_c.
        s = np.clip(r / r.max(), 1.0 / MAX_GAIN, 1.0)
        s = np.where(r > 0, s, 1.0)
        _scale(inits[pair.pointwise.input[1]], 1.0 / s)
        if len(pair.pointwise.input) > 2 and pair.pointwise.input[2]:
            _scale(inits[pair.pointwise.input[2]], 1.0 / s)
        _scale(inits[pair.depthwise.input[1]], s)
    return out, len(pairs)


def _scale(init: onnx.TensorProto, factors: np.ndarray) -> None:
    """Multiplies output channel c (axis 0) of a weight or bias by factors[c], in place."""
    array = numpy_helper.to_array(init).astype(np.float64)
    array *= factors.reshape((-1,) + (1,) * (array.ndim - 1))
    init.CopyFrom(numpy_helper.from_array(array.astype(np.float32), init.name))
