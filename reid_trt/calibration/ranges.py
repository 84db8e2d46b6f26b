"""Activation ranges for INT8: one pass over the calibration set, then a range per tensor.

The pass keeps a histogram of |x| for every tensor INT8 will quantize (the data inputs of the
weighted layers, the identity inputs of residual Adds), updated batch by batch, so memory stays
that of one batch. ONNX Runtime's histogram calibrators keep every batch's activations until the
end (gigabytes for a few hundred crops) and need equal batch sizes; its entropy method is still
used as it is.

"mse" takes, per tensor, the clipping threshold that minimises the mean squared INT8 error of
that tensor's own values (rounding below the threshold, clipping above), from its maximum down
to its 99th percentile: a tensor with a few huge outliers gets clipped, one whose tail is
populated keeps its maximum. "minmax" takes the maximum, "percentile" the 99.99th percentile.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx

from reid_trt.core.errors import MissingDependencyError
from reid_trt.core.onnxio import probe_session
from reid_trt.core.options import CalibrationMethod as Method

if TYPE_CHECKING:
    from onnxruntime.quantization.calibrate import TensorsData

HISTOGRAM_BINS = 4096
CANDIDATES = 128  # clipping thresholds tried per tensor, between its 99th percentile and max
PERCENTILE = 99.99
MSE_TOLERANCE = 0.02  # relative: thresholds whose error is this close to the least count as tied
# Activation ranges are widened by this factor beyond what the calibration data showed. Fitted
# to one camera, they clip other cameras: calibrated on MOT17-04 alone, the Market-1501
# osnet_x0_25 gave min cosine 0.965 on contrast-shifted CUHK03/MSMT17 crops; widened 1.15x
# 0.985 (and 0.979 after the search, with 79% of conv MACs in INT8 instead of 69%), 1.3x 0.991
# (every other set and shift >= 0.991, the calibration camera unchanged),
# 1.5x 0.996 with more rounding elsewhere (benchmarks/results/int8_cross_camera_cpu.md).
HEADROOM = 1.3


class AbsHistograms:
    """Fixed-width histograms of |x| per tensor, widened (bins merged) as larger values come."""

    def __init__(self, bins: int = HISTOGRAM_BINS):
        self.bins = bins
        self.counts: dict[str, np.ndarray] = {}
        self.width: dict[str, float] = {}

    def add(self, name: str, values: np.ndarray) -> None:
        """Counts |values| (float32; overwritten: the caller's arrays are spent here)."""
        # In place where the array allows: each fresh temporary of a batch's activation is tens
        # of MB of page faults, and three of them were half the time here (the same counts).
        a = values.astype(np.float32, copy=False).ravel()
        a = np.abs(a, out=a) if a.flags.writeable else np.abs(a)
        peak = float(a.max()) if a.size else 0.0
        if name not in self.counts:
            self.counts[name] = np.zeros(self.bins, np.int64)
            self.width[name] = max(peak, 1e-8) / self.bins
        counts, width = self.counts[name], self.width[name]
        if peak >= width * len(counts):  # merge k neighbours so the peak fits in `bins` bins
            k = int(np.ceil(peak / (width * self.bins))) + 1
            counts = np.pad(counts, (0, -len(counts) % k)).reshape(-1, k).sum(axis=1)
            counts = np.pad(counts, (0, self.bins - len(counts)))
            width *= k
            self.width[name] = width
        np.divide(a, width, out=a)  # float32, as a / width computes it
        idx = a.astype(np.intp)
        np.minimum(idx, len(counts) - 1, out=idx)
        self.counts[name] = counts + np.bincount(idx, minlength=len(counts))

    def edges(self, name: str) -> np.ndarray:
        return np.arange(len(self.counts[name]) + 1) * self.width[name]

    def threshold(self, name: str, method: Method) -> float:
        counts, edges = self.counts[name], self.edges(name)
        filled = np.nonzero(counts)[0]
        top = float(edges[filled[-1] + 1]) if len(filled) else float(edges[1])
        if method == Method.MINMAX:
            return top
        if method == Method.PERCENTILE:
            cdf = np.cumsum(counts) / max(counts.sum(), 1)
            return float(edges[min(np.searchsorted(cdf, PERCENTILE / 100) + 1, len(edges) - 1)])
        return mse_threshold(counts[:filled[-1] + 1] if len(filled) else counts,
                             edges[:filled[-1] + 2] if len(filled) else edges)


def histograms(model: onnx.ModelProto, tensors: list[str], batches: list[np.ndarray]
               ) -> AbsHistograms:
    """One pass of the FP32 graph over the batches, histogramming `tensors`."""
    session = probe_session(model, tensors)
    feed = model.graph.input[0].name
    hist = AbsHistograms()
    for batch in batches:
        for name, value in zip(tensors, session.run(tensors, {feed: batch}), strict=True):
            hist.add(name, value)
    return hist


def _quantization():
    try:
        from onnxruntime import quantization
    except ImportError:
        raise MissingDependencyError("onnxruntime", "export", "INT8 calibration") from None
    return quantization


def mse_threshold(hist: np.ndarray, edges: np.ndarray) -> float:
    """The threshold T minimising sum(count * (x - q_T(x))^2) over the |x| histogram, where
    q_T rounds to a symmetric INT8 grid of step T/127 and clips at T."""
    centers = (edges[:-1] + edges[1:]).astype(np.float64) / 2
    weights = hist.astype(np.float64)
    total = weights.sum()
    if total == 0 or centers[-1] <= 0:
        return float(max(edges[-1], 1e-8))
    cdf = np.cumsum(weights) / total
    low = centers[min(np.searchsorted(cdf, 0.99), len(centers) - 1)]
    thresholds = np.unique(np.linspace(max(low, 1e-8), float(edges[-1]), CANDIDATES))
    steps = (thresholds / 127.0)[:, None]  # every candidate at once: (candidates, bins)
    q = np.minimum(np.round(centers[None, :] / steps), 127) * steps
    errors = ((centers[None, :] - q) ** 2 * weights[None, :]).sum(axis=1)
    # The widest threshold within MSE_TOLERANCE of the least error: the error curve is often
    # flat or has two dips, and its exact argmin jumped between them when the calibration
    # frames were only re-encoded as JPEG. The wider range also clips other cameras less.
    near = np.flatnonzero(errors <= errors.min() * (1 + MSE_TOLERANCE))
    return float(thresholds[near[-1]])


def entropy_ranges(model: onnx.ModelProto, batches: list[np.ndarray], op_types: list[str]
                   ) -> TensorsData:
    """ONNX Runtime's entropy (KL) calibration, as it computes it (equal batch sizes needed)."""
    q = _quantization()
    from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator

    size = min(len(b) for b in batches)
    name = model.graph.input[0].name

    class Reader(q.CalibrationDataReader):
        def __init__(self):
            self.items = iter([b[:size] for b in batches])

        def get_next(self):
            batch = next(self.items, None)
            return None if batch is None else {name: batch}

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        onnx.save(model, path)
        calibrator = create_calibrator(path, op_types, Path(tmp) / "augmented.onnx",
                                       CalibrationMethod.Entropy, extra_options={"symmetric": True})
        with contextlib.redirect_stdout(io.StringIO()):  # ORT prints progress per step
            calibrator.collect_data(Reader())
            return calibrator.compute_data()


def tensor_ranges(model: onnx.ModelProto, batches: list[np.ndarray], method: Method,
                  tensors: list[str], op_types: list[str], headroom: float = HEADROOM
                  ) -> TensorsData:
    """TensorsData for the quantizer: a symmetric range per tensor, by `method`, widened by
    `headroom` except for the graph's input, which gets the pixels' whole range."""
    if method == Method.ENTROPY:
        ranges = entropy_ranges(model, batches, op_types)
        amax = amax_of(ranges)
    else:
        hist = histograms(model, tensors, batches)
        amax = {name: hist.threshold(name, method) for name in tensors}
    _quantization()
    from onnxruntime.quantization.calibrate import CalibrationMethod, TensorData, TensorsData

    inputs = {i.name for i in model.graph.input}
    whole = input_bound(model)
    data = {}
    for name, value in amax.items():
        if name in inputs:  # the pixels' whole range where the contract says it
            value = max(value, whole or 0.0)
        bound = np.float32(max(value * (1.0 if name in inputs else headroom), 1e-8))
        data[name] = TensorData(lowest=-bound, highest=bound)
    return TensorsData(CalibrationMethod.MinMax, data)


def input_bound(model: onnx.ModelProto) -> float | None:
    """The largest |value| a mean/std-normalised input can take (black or white pixels), from
    the graph's contract; None for graphs that take pixels and normalise inside. The first
    convolution's input is quantized with this whole range, not a calibrated one: "mse" clips
    the brightest pixels of the calibration scenes (2.23 of 2.64 on MOT17-02's 43 boxes), and
    a brighter camera then loses its highlights in INT8 (min cosine 0.87 on MOT17-04 with only
    that first layer left float)."""
    from reid_trt.core.contract import contract_of
    from reid_trt.core.errors import ReidTrtError

    try:
        contract = contract_of(model)
    except ReidTrtError:
        return None
    if contract.uint8_input or contract.pixel_scale is not None:
        return None
    return max(max(m / s, (1.0 - m) / s) for m, s in zip(contract.mean, contract.std, strict=True))


def amax_of(ranges: TensorsData) -> dict[str, float]:
    """Tensor name -> the symmetric range's bound, for reports and the TensorRT cache."""
    out = {}
    for name, data in ranges.data.items():
        low, high = data.range_value
        out[name] = float(max(abs(np.min(low)), abs(np.max(high)), 1e-12))
    return out
