"""Explicit INT8 quantization (Q/DQ) of an exported graph, with the fallback chosen by accuracy.

onnxruntime.quantization does the mechanics (Q/DQ insertion). What it lacks, and this module
adds: settings TensorRT accepts (symmetric INT8, per-channel weights, no int32 bias
DequantizeLinear, Q/DQ on the inputs of weighted layers only), TensorRT's placement rules
(placement.py: GEMV-shaped layers float, residual Adds quantized for fusion), and a greedy
search (search.py), by accuracy on re-ID embeddings, for the fewest MACs left float.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING

import onnx

from reid_trt.calibration.placement import (
    float_nodes,
    int8_layers,
    quantize_residual_inputs,
    residual_adds,
)
from reid_trt.calibration.protocol import DomainFigures
from reid_trt.calibration.ranges import amax_of
from reid_trt.core.errors import MissingDependencyError
from reid_trt.core.options import CalibrationMethod as Method
from reid_trt.core.options import described

if TYPE_CHECKING:
    from onnxruntime.quantization.calibrate import TensorsData

METHODS = tuple(m.value for m in Method if m != Method.AUTO)
# TensorRT fuses Q/DQ into the weighted layers; quantizing their inputs is what pays.
QUANTIZED_OPS = ["Conv", "Gemm"]


def _ort_quantization():
    try:
        from onnxruntime import quantization
    except ImportError:
        raise MissingDependencyError("onnxruntime", "export", "INT8 calibration") from None
    return quantization


def quantize(model: onnx.ModelProto, ranges: TensorsData, exclude: set[str] = frozenset()) -> onnx.ModelProto:
    """Q/DQ INT8 graph: symmetric per-channel weights, symmetric per-tensor activations, biases
    left in float (TensorRT rejects the int32 bias DequantizeLinear ORT emits by default)."""
    q = _ort_quantization()
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer

    quantizer = QDQQuantizer(
        copy.deepcopy(model), per_channel=True, reduce_range=False,
        weight_qType=q.QuantType.QInt8, activation_qType=q.QuantType.QInt8,
        tensors_range=ranges, nodes_to_quantize=[], nodes_to_exclude=sorted(exclude),
        op_types_to_quantize=QUANTIZED_OPS,
        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True,
                       "QuantizeBias": False,
                       # TensorRT wants Q/DQ on the inputs of weighted layers only: a quantized
                       # output is one more rounding and no faster.
                       "OpTypesToExcludeOutputQuantization": QUANTIZED_OPS})
    return quantizer.quantize_model()


def _module_path(node: onnx.NodeProto) -> list[str]:
    # The exporter names weights by module path: model.conv2.0.conv2b.1.conv1.weight
    return node.input[1].removeprefix("model.").split(".")


def layer_groups(model: onnx.ModelProto) -> dict[str, list[str]]:
    """Quantizable nodes by OSNet block, found from the graph's structure, not its names (graphs
    adopted from other exporters name weights onnx::Conv_1047): a block ends at its residual Add,
    the stem at its MaxPool, a stage transition at its AveragePool, and each fully connected
    layer is its own. Named by module path where the weights carry one ('conv1', 'conv2.0', ...,
    'conv2.2', 'conv5', 'fc'), else 'block N'. On reid-trt's own osnet_x0_25 export these are
    exactly the groups its module names give."""
    from reid_trt.calibration.placement import residual_adds

    ends = {n.name for n in residual_adds(model)}
    groups: dict[str, list[str]] = {}
    current: list[onnx.NodeProto] = []

    def close() -> None:
        if current:
            parts = _module_path(current[0])
            staged = parts[0].startswith(("conv2", "conv3", "conv4", "pool")) and len(parts) > 2
            name = ".".join(parts[:2]) if staged else parts[0]
            if len(parts) < 2 or name in groups:  # no module path in the weight names
                name = f"block {len(groups) + 1}"
            groups[name] = [n.name for n in current]
            current.clear()

    for node in model.graph.node:
        if node.op_type in QUANTIZED_OPS and len(node.input) >= 2:
            if node.op_type != "Conv":
                close()
            current.append(node)
            if node.op_type != "Conv":
                close()
        if node.name in ends or node.op_type in ("MaxPool", "AveragePool"):
            close()
    close()
    return groups


class Quantizer:
    """Q/DQ graphs of one FP32 graph with one set of ranges, leaving chosen nodes float.

    GEMV-shaped layers always stay float; residual Adds get a quantized identity input where
    the Conv on their other input runs in INT8 (the only case TensorRT can fuse)."""

    def __init__(self, model: onnx.ModelProto, ranges: TensorsData):
        self.model, self.ranges = model, ranges
        self.always_float = float_nodes(model)
        self.residual = residual_adds(model)
        self.amax = amax_of(ranges)

    def __call__(self, exclude: set[str] = frozenset()) -> onnx.ModelProto:
        q = quantize(self.model, self.ranges, self.always_float | set(exclude))
        int8 = int8_layers(q)
        producers = {n.output[0]: n for n in q.graph.node}
        fusable = [a for a in self.residual
                   if producers.get(a.input[0]) is not None and producers[a.input[0]].name in int8]
        quantize_residual_inputs(q, self.amax, fusable)
        return q


def sorted_graph(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same graph with its nodes in topological order: ONNX Runtime's quantizer appends
    weight DequantizeLinear nodes after their consumers; ONNX's checker and TensorRT's parser
    want producers first. (onnx-graphsurgeon's toposort, as bundled with onnxslim: it only
    reorders, no folding that would turn the INT8 weights back into floats.)"""
    try:
        import onnxslim.third_party.onnx_graphsurgeon as gs
    except ImportError:
        raise MissingDependencyError("onnxslim", "export", "writing INT8 graphs") from None
    out = gs.export_onnx(gs.import_onnx(model).toposort())
    if not out.metadata_props:
        out.metadata_props.extend(model.metadata_props)
    return out


@dataclass(frozen=True)
class Figures:
    """INT8 against FP32 embeddings of the same crops: the headline figures."""

    mean_cosine: float
    min_cosine: float
    topk_agreement: float
    low_cosine: float = 1.0  # mean of the worst 1% of crops (search.low_tail)
    map_drop: float | None = None  # mAP points lost, where labels allow
    worst_domain: str = ""
    worst_mean_cosine: float = 1.0
    rank1_drop: float | None = None  # Rank-1 points lost, where labels allow


@dataclass(frozen=True)
class Agreement(Figures):
    """The figures, and per domain (held-out camera, shift) those of its subset of crops."""

    domains: dict[str, DomainFigures] = field(default_factory=dict)
    # Rows scored when the scoring stopped early, having proved that the budget cannot hold
    # (Scorer.__call__); None: every judged row. Figures not yet known are then optimistic.
    rows_scored: int | None = None

    @property
    def figures(self) -> Figures:
        return Figures(**{f.name: getattr(self, f.name) for f in fields(Figures)})



@dataclass(frozen=True)
class Budget:
    """What an INT8 graph must keep. The cosine defaults sit a margin above the acceptance
    levels (mean 0.995, min 0.98 per crop), so crops the search never saw still pass them.
    The low end is judged on the mean of the worst 1% of crops: the single worst crop moves with
    1e-4 differences between machines and library versions, and decisions taken on it did."""

    min_mean_cosine: float = 0.996
    min_low_cosine: float = 0.985
    min_topk_agreement: float = 0.9
    max_map_drop: float = described(0.5, "With a labelled dataset: mAP points INT8 may lose.")

    def tightened(self, low: float, mean: float) -> Budget:
        """The same budget with the low-tail and worst-domain mean levels raised."""
        return replace(self, min_low_cosine=self.min_low_cosine + low,
                       min_mean_cosine=self.min_mean_cosine + mean)

    def holds(self, a: Agreement) -> bool:
        # The mean must hold in the worst domain (an unseen camera, a shift), not only overall.
        if a.map_drop is not None:
            return (a.map_drop <= self.max_map_drop and a.low_cosine >= self.min_low_cosine
                    and a.worst_mean_cosine >= self.min_mean_cosine)
        return (a.worst_mean_cosine >= self.min_mean_cosine
                and a.low_cosine >= self.min_low_cosine
                and a.topk_agreement >= self.min_topk_agreement)
