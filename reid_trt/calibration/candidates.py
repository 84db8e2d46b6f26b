"""Candidate INT8 graphs of one FP32 graph: quantized once, then any set of layers left float.

ONNX Runtime's quantizer takes a second or two per graph and the fallback search wants dozens of
candidates, so the graph is quantized once, with every layer INT8, and each candidate is that
graph with some layers rewired back to their float inputs and weights (the same graph the
quantizer writes when told to exclude them: tests/calibration check this).

Each INT8 layer also gets its bias corrected (Nagel et al. 2019, "Data-Free Quantization",
empirical form): INT8 weights and inputs shift the mean of a layer's output channels, and the
shift adds up layer after layer. The shift is measured per layer on the calibration set, with
the layer's own FP32 input, so it belongs to the layer alone and stays right whichever other
layers a candidate leaves float. The same pass measures each layer's own INT8 noise (noise power
over signal power of its output), which the search uses to rank layers within a block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import helper, numpy_helper

from reid_trt.calibration.placement import dq_sources, int8_layers, residual_adds
from reid_trt.calibration.quantize import Quantizer
from reid_trt.core.onnxio import ort_session

if TYPE_CHECKING:
    from onnxruntime.quantization.calibrate import TensorsData


@dataclass(frozen=True)
class LayerStats:
    """What INT8 does to one layer's own output, given its FP32 input."""

    bias_shift: np.ndarray  # per output channel: mean(INT8 output - FP32 output)
    noise: float  # mean square error after the bias correction, over the output's mean square


class Int8Graph:
    """The all-INT8 Q/DQ graph of `model` with `ranges`, and candidates leaving layers float."""

    def __init__(self, model: onnx.ModelProto, ranges: TensorsData):
        self.source = model
        quantizer = Quantizer(model, ranges)
        self.full = quantizer()
        self.always_float = quantizer.always_float
        order = {n.name: k for k, n in enumerate(model.graph.node)}
        self.int8 = sorted(int8_layers(self.full), key=order.get)
        self.stats: dict[str, LayerStats] = {}
        self.correct_bias = False

    def measure(self, batches: list[np.ndarray], correct_bias: bool = True) -> None:
        """Each INT8 layer's own error on the calibration batches; with `correct_bias`, every
        candidate from now on has its INT8 layers' biases corrected."""
        self.stats = layer_stats(self.source, self.full, self.int8, batches)
        self.correct_bias = correct_bias

    def __call__(self, float_layers: set[str] = frozenset()) -> onnx.ModelProto:
        """The all-INT8 graph with `float_layers` (node names) left float, biases corrected."""
        out = onnx.ModelProto()
        out.CopyFrom(self.full)
        float_layers = set(float_layers) & set(self.int8)
        if float_layers:
            _rewire_float(out, self.source, float_layers)
        if self.correct_bias:
            _correct_biases(out, {n: self.stats[n].bias_shift for n in self.int8
                                  if n not in float_layers and n in self.stats})
        _prune(out)
        return out


def _rewire_float(model: onnx.ModelProto, source: onnx.ModelProto, layers: set[str]) -> None:
    """Feeds `layers` their float input and weights again; residual Adds whose Conv went float
    get their float identity input back (TensorRT fuses the Add only into an INT8 Conv)."""
    original = {n.name: n for n in source.graph.node}
    inits = {i.name for i in model.graph.initializer}
    source_inits = {i.name: i for i in source.graph.initializer}
    dq_source = dq_sources(model)
    for node in model.graph.node:
        if node.name not in layers:
            continue
        node.input[0] = dq_source.get(node.input[0], node.input[0])
        weight = original[node.name].input[1]
        node.input[1] = weight
        if weight not in inits:
            model.graph.initializer.append(source_inits[weight])
            inits.add(weight)
    producer = {n.output[0]: n.name for n in model.graph.node}
    for add in residual_adds(model):
        if producer.get(add.input[0]) in layers and add.input[1] in dq_source:
            add.input[1] = original[add.name].input[1]


def _correct_biases(model: onnx.ModelProto, shifts: dict[str, np.ndarray]) -> None:
    inits = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if node.name not in shifts:
            continue
        shift = shifts[node.name]
        if len(node.input) > 2 and node.input[2]:
            bias = numpy_helper.to_array(inits[node.input[2]]).astype(np.float64)
        else:
            bias = np.zeros(len(shift))
        name = f"{node.name}_bias_corrected"
        model.graph.initializer.append(
            numpy_helper.from_array((bias - shift).astype(np.float32), name))
        if len(node.input) > 2:
            node.input[2] = name
        else:
            node.input.append(name)


def _prune(model: onnx.ModelProto) -> None:
    """Drops nodes and initializers nothing uses any more (Q/DQ of layers left float)."""
    producer = {o: k for k, n in enumerate(model.graph.node) for o in n.output}
    needed, stack, used = set(), [o.name for o in model.graph.output], set()
    while stack:  # the quantizer's node list is not in topological order: walk, don't scan
        tensor = stack.pop()
        if tensor in needed:
            continue
        needed.add(tensor)
        if tensor in producer:
            used.add(producer[tensor])
            stack.extend(i for i in model.graph.node[producer[tensor]].input if i)
    kept = [n for k, n in enumerate(model.graph.node) if k in used]
    del model.graph.node[:]
    model.graph.node.extend(kept)
    inits = [i for i in model.graph.initializer if i.name in needed]
    del model.graph.initializer[:]
    model.graph.initializer.extend(inits)


def layer_stats(source: onnx.ModelProto, quantized: onnx.ModelProto, layers: list[str],
                batches: list[np.ndarray]) -> dict[str, LayerStats]:
    """Per INT8 layer: its output's mean shift per channel and its noise, each layer fed its own
    FP32 input (one pass of a probe graph over the calibration batches)."""
    probe, outputs = _probe(source, quantized, layers)
    session = ort_session(probe, source="the bias-correction probe",
                          int8_in_float=True)
    feed = source.graph.input[0].name
    sums: dict[str, list] = {}
    count = 0
    for batch in batches:
        values = session.run(outputs, {feed: batch})
        n = len(batch)
        for k, name in enumerate(layers):
            mean_diff, err, power = values[3 * k: 3 * k + 3]
            acc = sums.setdefault(name, [0.0, 0.0, 0.0])
            acc[0] = acc[0] + mean_diff.astype(np.float64) * n
            acc[1] += float(err) * n
            acc[2] += float(power) * n
        count += n
    stats = {}
    for name, (shift_sum, err_sum, power_sum) in sums.items():
        shift = shift_sum / count
        # The error left after the correction: E[e^2] - mean(shift^2), per element.
        residual = max(err_sum / count - float(np.mean(shift ** 2)), 0.0)
        stats[name] = LayerStats(shift, residual / max(power_sum / count, 1e-20))
    return stats


def _probe(source: onnx.ModelProto, quantized: onnx.ModelProto, layers: list[str]):
    """The FP32 graph plus, beside each layer in `layers`, its INT8 twin (the quantized graph's
    Q/DQ on the layer's FP32 input and its INT8 weights) and three outputs: mean(twin - layer)
    per channel, mean((twin - layer)^2) and mean(layer^2)."""
    probe = onnx.ModelProto()
    probe.CopyFrom(source)
    q_nodes = {n.name: n for n in quantized.graph.node}
    producers = {o: n for n in quantized.graph.node for o in n.output}
    q_inits = {i.name: i for i in quantized.graph.initializer}
    have = {i.name for i in probe.graph.initializer}
    axes = numpy_helper.from_array(np.array([0, 2, 3], np.int64), "probe_axes_nhw")
    probe.graph.initializer.append(axes)
    added, outputs = [], []
    original = {n.name: n for n in source.graph.node}
    for name in layers:
        node, twin_of = original[name], q_nodes[name]
        inputs = []
        for slot in (0, 1):  # the DQ feeding each slot, and the Q before it (data only)
            dq = producers[twin_of.input[slot]]
            chain = [dq]
            if slot == 0:
                chain.insert(0, producers[dq.input[0]])
            prefix = f"probe/{name}/{slot}/"
            renamed = {}
            for step in chain:
                for i in step.input[1:]:
                    if i not in have:
                        probe.graph.initializer.append(q_inits[i])
                        have.add(i)
                ins = list(step.input)
                if step.op_type == "QuantizeLinear":
                    ins[0] = node.input[0]
                elif slot == 1:
                    if ins[0] not in have:
                        probe.graph.initializer.append(q_inits[ins[0]])
                        have.add(ins[0])
                else:
                    ins[0] = renamed[ins[0]]
                out = prefix + step.output[0]
                renamed[step.output[0]] = out
                added.append(helper.make_node(step.op_type, ins, [out], name=out,
                                              **{a.name: helper.get_attribute_value(a)
                                                 for a in step.attribute}))
            inputs.append(renamed[chain[-1].output[0]])
        twin_out = f"probe/{name}/out"
        added.append(helper.make_node("Conv", [*inputs, *node.input[2:]], [twin_out],
                                      name=twin_out, **{a.name: helper.get_attribute_value(a)
                                                        for a in node.attribute}))
        diff = f"probe/{name}/diff"
        added.append(helper.make_node("Sub", [twin_out, node.output[0]], [diff], name=diff))
        mean = f"probe/{name}/mean"
        added.append(helper.make_node("ReduceMean", [diff, axes.name], [mean], name=mean,
                                      keepdims=0))
        for label, tensor in (("err", diff), ("power", node.output[0])):
            sq = f"probe/{name}/{label}_sq"
            added.append(helper.make_node("Mul", [tensor, tensor], [sq], name=sq))
            red = f"probe/{name}/{label}"
            added.append(helper.make_node("ReduceMean", [sq], [red], name=red, keepdims=0))
        outputs += [mean, f"probe/{name}/err", f"probe/{name}/power"]
    probe.graph.node.extend(added)
    del probe.graph.output[:]
    for name in outputs:
        probe.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT,
                                                                None))
    return probe, outputs

