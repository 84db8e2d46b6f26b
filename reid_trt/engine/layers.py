"""What a built engine runs, read back from the engine rather than from the graph.

Built with detailed profiling verbosity, the builder logs its engine's layers at verbose level
('Layers:' then one 'Name: ..., LayerType: ..., Inputs: [...], Constants: [...], Outputs: [...],
Metadata: [ONNX Layer: ...]' line per layer; TensorRT-RTX does so without a GPU). Each fused
convolution names the ONNX nodes it came from and the data types of its input and weights, so
the engine's own INT8 figure can be checked against what the Q/DQ graph asked for: a Q/DQ pair
TensorRT failed to fuse shows up as a float convolution here, however the graph looks.
"""

from __future__ import annotations

import re

import onnx

from reid_trt.calibration.placement import weighted_layers
from reid_trt.core.manifest import EngineLayers, layer_precision

_ONNX_LAYER = re.compile(r"\[ONNX Layer: ([^\]]+)\]")
_DTYPE = re.compile(r"Datatype: (\w+)")


def _section(line: str, name: str) -> str:
    """The text of `name: [ ... ]` in a layer line (brackets balanced)."""
    start = line.find(f"{name}: [")
    if start < 0:
        return ""
    depth, i = 0, start + len(name) + 2
    for j in range(i, len(line)):
        depth += {"[": 1, "]": -1}.get(line[j], 0)
        if depth == 0:
            return line[i + 1:j]
    return line[i + 1:]


def engine_layer_report(log_messages: list[str], model: onnx.ModelProto) -> EngineLayers | None:
    """From the builder's 'Layers:' message: how many of the graph's conv/matmul layers run in
    each precision in the engine, the INT8 share of conv MACs (GEMV-shaped layers left out, as in
    the calibration report), and the reformat layers TensorRT added between them. None if the
    builder printed no layer report."""
    text = next((m for m in reversed(log_messages) if m.lstrip().startswith("Layers:")), None)
    if text is None:
        return None
    layers = {layer.node: layer for layer in weighted_layers(model)}
    precision: dict[str, str] = {}
    converting = 0
    for line in text.splitlines():
        if not line.startswith("Name:"):
            continue
        kind = re.search(r"LayerType: (\w+)", line)
        if kind is None or not re.search(r"conv|correlation|gemm|matmul|matrix",
                                         kind.group(1), re.IGNORECASE):
            if re.search(r"LayerType: Reformat|reformat", line, re.IGNORECASE):
                converting += 1
            continue
        metadata = line[line.find("Metadata:"):] if "Metadata:" in line else ""
        nodes = [n for n in _ONNX_LAYER.findall(metadata) if n in layers]
        inputs = _DTYPE.findall(_section(line, "Inputs"))
        constants = _DTYPE.findall(_section(line, "Constants"))
        outputs = _DTYPE.findall(_section(line, "Outputs"))
        if nodes and inputs:
            # data and weights both INT8: an INT8 kernel; else the type it computes in
            weights = constants[:1] or inputs[1:2]
            kinds = {layer_precision(t) for t in inputs[:1] + weights}
            for node in nodes:  # a fused kernel runs all its convolutions alike
                precision[node] = "int8" if kinds == {"int8"} else \
                    layer_precision(outputs[0]) if outputs else "unknown"
    counted = [layer for layer in layers.values() if not layer.gemv]
    total = sum(layer.macs for layer in counted)
    int8 = sum(layer.macs for layer in counted if precision.get(layer.node) == "int8")
    counts: dict[str, int] = {}
    for node in layers:
        kind = precision.get(node, "not found")
        counts[kind] = counts.get(kind, 0) + 1
    return EngineLayers(weighted_layers=dict(sorted(counts.items())),
                        int8_mac_share=round(int8 / total, 6) if total else 0.0,
                        int8_layers=sorted(n for n, k in precision.items() if k == "int8"),
                        reformat_layers=converting)
