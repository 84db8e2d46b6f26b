"""Explicit INT8 quantization (Q/DQ) of an exported graph, with the fallback chosen by accuracy.

onnxruntime.quantization does the mechanics (calibration statistics, Q/DQ insertion). What it
lacks, and this module adds: settings TensorRT accepts (symmetric INT8, per-channel weights,
no int32 bias DequantizeLinear), method selection and per-block sensitivity measured on re-ID
embeddings, and a greedy search for the fewest blocks left unquantized that meet the budget.
"""

from __future__ import annotations

import contextlib
import copy
import io
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from reid_trt.core.errors import MissingDependencyError
from reid_trt.core.options import CalibrationMethod as Method
from reid_trt.core.options import choice

METHODS = tuple(m.value for m in Method if m != Method.AUTO)
# TensorRT fuses Q/DQ into the weighted layers; quantizing their inputs is what pays.
QUANTIZED_OPS = ["Conv", "Gemm"]


def _ort_quantization():
    try:
        from onnxruntime import quantization
    except ImportError:
        raise MissingDependencyError("onnxruntime", "export", "INT8 calibration") from None
    return quantization


def tensor_ranges(model: onnx.ModelProto, batches: list[np.ndarray], method: str):
    """Activation ranges of the quantized ops' inputs, collected over `batches`."""
    q = _ort_quantization()
    from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator

    method = choice(Method, method, "method")
    kind = {Method.MINMAX: CalibrationMethod.MinMax, Method.ENTROPY: CalibrationMethod.Entropy,
            Method.PERCENTILE: CalibrationMethod.Percentile}[method]
    options = {"symmetric": True}
    if method == "percentile":
        options["percentile"] = 99.99
    name = model.graph.input[0].name

    class Reader(q.CalibrationDataReader):
        def __init__(self):
            self.items = iter(batches)

        def get_next(self):
            batch = next(self.items, None)
            return None if batch is None else {name: batch}

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        onnx.save(model, path)
        calibrator = create_calibrator(path, QUANTIZED_OPS, Path(tmp) / "augmented.onnx", kind,
                                       extra_options=options)
        with contextlib.redirect_stdout(io.StringIO()):  # ORT prints progress per step
            calibrator.collect_data(Reader())
            return calibrator.compute_data()


def quantize(model: onnx.ModelProto, ranges, exclude: set[str] = frozenset()) -> onnx.ModelProto:
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
                       "QuantizeBias": False})
    return quantizer.quantize_model()


def _module_path(node: onnx.NodeProto) -> list[str]:
    # The exporter names weights by module path: model.conv2.0.conv2b.1.conv1.weight
    return node.input[1].removeprefix("model.").split(".")


def layer_groups(model: onnx.ModelProto, fine: bool = False) -> dict[str, list[str]]:
    """Quantizable nodes by OSNet block ('conv1', 'conv2.0', ..., 'conv5', 'fc'), or with `fine`
    by part of a block ('conv2.0/conv1', 'conv2.0/conv2b', 'conv2.0/gate', 'conv2.0/conv3', ...:
    the entry 1x1, each stream, the gate, the exit 1x1, the shortcut)."""
    groups: dict[str, list[str]] = {}
    for node in model.graph.node:
        if node.op_type not in QUANTIZED_OPS or len(node.input) < 2:
            continue
        parts = _module_path(node)
        staged = parts[0].startswith(("conv2", "conv3", "conv4", "pool")) and len(parts) > 2
        key = ".".join(parts[:2]) if staged else parts[0]
        if fine and staged:
            part = parts[2]
            if part == "conv2" and parts[3].isdigit():  # OSNet-AIN streams: conv2.<t>
                part = f"conv2.{parts[3]}"
            key = f"{key}/{part}"
        groups.setdefault(key, []).append(node.name)
    return groups


@dataclass
class Agreement:
    """INT8 against FP32 embeddings of the same crops."""

    mean_cosine: float
    min_cosine: float
    topk_agreement: float
    map_drop: float | None = None  # mAP points lost, where labels allow

    def to_dict(self) -> dict:
        return self.__dict__.copy()


@dataclass(frozen=True)
class Budget:
    """What an INT8 graph must keep. The cosine defaults sit a margin above the acceptance
    levels (mean 0.995, min 0.98 per crop), so crops the search never saw still pass them."""

    min_mean_cosine: float = 0.996
    min_cosine: float = 0.985
    min_topk_agreement: float = 0.9
    max_map_drop: float = 0.5  # mAP points, with labels

    def holds(self, a: Agreement) -> bool:
        if a.map_drop is not None:
            return a.map_drop <= self.max_map_drop and a.min_cosine >= self.min_cosine
        return (a.mean_cosine >= self.min_mean_cosine and a.min_cosine >= self.min_cosine
                and a.topk_agreement >= self.min_topk_agreement)


@dataclass
class SearchResult:
    model: onnx.ModelProto
    agreement: Agreement
    excluded: list[str]  # blocks or block parts left unquantized
    sensitivity: dict[str, float] = field(default_factory=dict)  # block -> 1 - mean cosine
    steps: list[dict] = field(default_factory=list)


def search_fallback(model: onnx.ModelProto, ranges, score: Callable[[onnx.ModelProto], Agreement],
                    budget: Budget, progress: Callable[[str], None] = lambda _: None
                    ) -> SearchResult:
    """Quantizes everything; if the budget fails, leaves the most sensitive blocks unquantized,
    one at a time, until it holds. Sensitivity of a block: the cosine lost when only it is INT8."""
    full = quantize(model, ranges)
    agreement = score(full)
    steps = [{"excluded": [], **agreement.to_dict()}]
    if budget.holds(agreement):
        return SearchResult(full, agreement, [], steps=steps)
    groups = layer_groups(model)
    every = {n for nodes in groups.values() for n in nodes}
    sensitivity = {}
    for block, nodes in groups.items():
        progress(f"sensitivity of {block}")
        alone = score(quantize(model, ranges, exclude=every - set(nodes)))
        sensitivity[block] = 1.0 - alone.mean_cosine
    excluded: list[str] = []
    best = full
    for block in sorted(sensitivity, key=sensitivity.get, reverse=True):
        excluded.append(block)
        progress(f"INT8 without {', '.join(excluded)}")
        best = quantize(model, ranges, exclude={n for b in excluded for n in groups[b]})
        agreement = score(best)
        steps.append({"excluded": list(excluded), **agreement.to_dict()})
        if budget.holds(agreement):
            break
    if not budget.holds(agreement):
        return SearchResult(best, agreement, excluded, sensitivity, steps)
    return _refine(model, ranges, score, budget, excluded, sensitivity, steps, progress, best,
                   agreement)


def _refine(model, ranges, score, budget, excluded_blocks, sensitivity, steps, progress, best,
            agreement) -> SearchResult:
    """Gives parts of the excluded blocks back to INT8 (least sensitive blocks first) wherever
    the budget still holds: a whole block is rarely sensitive everywhere, and INT8 only pays
    where it runs."""
    fine = layer_groups(model, fine=True)
    excluded = [part for block in excluded_blocks for part in fine
                if part == block or part.startswith(block + "/")]
    for block in sorted(excluded_blocks, key=sensitivity.get):
        for part in [p for p in excluded if p == block or p.startswith(block + "/")]:
            trial = [p for p in excluded if p != part]
            progress(f"INT8 again for {part}")
            candidate = quantize(model, ranges, exclude={n for p in trial for n in fine[p]})
            result = score(candidate)
            if budget.holds(result):
                excluded, best, agreement = trial, candidate, result
                steps.append({"excluded": list(excluded), **agreement.to_dict()})
    return SearchResult(best, agreement, excluded, sensitivity, steps)
