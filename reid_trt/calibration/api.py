"""`reid-export calibrate` as a library call: dataset -> calibration set -> Q/DQ INT8 graph,
judged on cameras and conditions the calibration never saw (protocol.py).

The steps, each a function: `load_sets` (sets.py: calibration crops, and the crops to judge by;
sets with too little variation refused), `Scorer` (scoring.py: FP32 reference; agreement of a
candidate, per domain), `choose` (here: ranges per method, equalisation, bias correction, the
fallback search of search.py), then the report and the files (report.py).

Candidates are scored, and the graph is written, with their unquantized layers in FP32: that is
plain arithmetic every ONNX Runtime computes alike. Scoring them with the float layers in FP16,
as an earlier version did to mimic the engine, made the result depend on ONNX Runtime's version:
1.24 computes FP16 Q/DQ graphs on the CPU differently from 1.32 (all-INT8 mean cosine 0.910
against 0.985 for the same graph) and the search followed. `reid-export trt` still builds the
float layers in FP16 (`--unquantized`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx

from reid_trt.calibration.candidates import Int8Graph
from reid_trt.calibration.equalize import equalize
from reid_trt.calibration.placement import activation_tensors, int8_work
from reid_trt.calibration.quantize import QUANTIZED_OPS, sorted_graph
from reid_trt.calibration.ranges import tensor_ranges
from reid_trt.calibration.report import (
    CalibrationResult,
    Equalization,
    MethodTried,
    report_path_for,
    write_calibration,
)
from reid_trt.calibration.scoring import Scorer, run_chunked
from reid_trt.calibration.search import SearchResult, search
from reid_trt.calibration.sets import (
    CalibrationConfig,
    CalibrationSets,
    load_sets,
    refuse_degenerate,
    sample_id,
)
from reid_trt.core.contract import Contract, Int8Record, contract_of
from reid_trt.core.errors import ReidTrtError, opt
from reid_trt.core.fileio import check_output, sha256_file
from reid_trt.core.metrics import cosine_rows
from reid_trt.core.onnxio import load_onnx, ort_session
from reid_trt.core.options import (
    CalibrationMethod,
    Precision,
)
from reid_trt.core.preprocess import graph_input
from reid_trt.data.shifts import augmented

if TYPE_CHECKING:
    from onnxruntime.quantization.calibrate import TensorsData

# What callers import from here: the orchestration, and the options and sets it takes.
__all__ = ["CalibrationConfig", "CalibrationSets", "Scorer", "calibrate_onnx", "check_source",
           "check_calibration_output", "load_sets", "quantize", "refuse_degenerate",
           "run_chunked", "source_graph"]

BATCH = 16
EQUALIZED_MIN_COSINE = 0.99999  # the equalised FP32 graph must compute what the source does


def check_calibration_output(output: Path, inputs: list) -> Path:
    """The INT8 graph and its report: checked before any dataset is read."""
    return check_output(output, opt("output"), (".onnx",), inputs=inputs,
                        side_files=[report_path_for(Path(output))])


def _equalized(source: onnx.ModelProto, batches: list[np.ndarray], score: Scorer):
    """(equalised graph, its report entry); the source itself if equalising changed the function
    (it never should: the check guards the pass, not the data)."""
    graph, pairs = equalize(source, batches)
    reference = score.reference[:score.n]
    session = ort_session(graph, source="the equalised graph")
    got = run_chunked(session, score.name, score.x[:score.n])
    worst = float(cosine_rows(got, reference).min())
    used = worst >= EQUALIZED_MIN_COSINE
    return (graph if used else source), Equalization(used, pairs, worst)


def range_method(config: CalibrationConfig) -> tuple[CalibrationMethod, bool]:
    """(range method, equalise first). Equalisation raises every channel to the widest one's
    range, so only a clipping method keeps a few outliers from setting the scale: with plain max
    ranges it made INT8 worse in every measurement. `auto` is mse after equalisation: it beat
    minmax on every graph and set measured (all-INT8 mean/low-tail cosine 0.986/0.93 against
    0.975/0.84 for the MSMT17 osnet_x0_25 on MOT17-04), so trying both only doubled the time."""
    if config.method == CalibrationMethod.AUTO:
        return CalibrationMethod.MSE, config.equalize
    clipping = (CalibrationMethod.MSE, CalibrationMethod.PERCENTILE)
    return config.method, config.equalize and config.method in clipping


@dataclass
class Choice:
    """What `choose` settled on."""

    method: str
    graph: onnx.ModelProto  # the FP32 graph quantized (equalised or not)
    result: SearchResult
    ranges: TensorsData  # a symmetric range per activation (ranges.tensor_ranges)
    tried: dict[str, MethodTried]  # by range method
    equalization: Equalization
    seconds: dict[str, float]  # per stage


def choose(source: onnx.ModelProto, batches: list[np.ndarray], score: Scorer,
           config: CalibrationConfig, progress: Callable[[str], None]) -> Choice:
    """Ranges by the configured method (after equalisation where it helps), the all-INT8 graph
    judged on the quick subset, biases corrected, then the fallback search."""
    method, eq = range_method(config)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    graph, equalization = source, Equalization(False)
    if eq:
        progress("equalising")
        graph, equalization = _equalized(source, batches, score)
    progress(f"calibrating ({method})")
    ranges = tensor_ranges(graph, batches, method, activation_tensors(graph), QUANTIZED_OPS)
    candidate = Int8Graph(graph, ranges)
    tried = {str(method): MethodTried(graph is not source, score.quick(candidate()).figures)}
    seconds["ranges"] = time.perf_counter() - clock
    clock = time.perf_counter()
    progress("measuring each layer's INT8 error")
    candidate.measure(batches, correct_bias=config.bias_correction)
    seconds["bias_correction"] = time.perf_counter() - clock
    clock = time.perf_counter()
    result = search(candidate, score, score.quick, config.budget,
                    lambda m: progress(f"{method}: {m}"))
    seconds["search"] = time.perf_counter() - clock
    return Choice(str(method), graph, result, ranges, tried, equalization, seconds)


def calibrate_onnx(source: onnx.ModelProto, source_sha256: str,
                   calib_data: Path | str, output: Path | str,
                   config: CalibrationConfig | None = None,
                   progress: Callable[[str], None] = lambda _: None,
                   inputs: tuple = ()) -> CalibrationResult:
    """Quantizes an FP32 graph exported by reid-export; writes the INT8 graph, a TensorRT
    calibration cache and a JSON report beside it (all atomically). `calib_data`: a dataset
    folder (`quantize` takes the sets `load_sets` read from one). `config` None: the defaults.
    `inputs`: files the caller read, which no output may overwrite."""
    start = time.perf_counter()
    config = CalibrationConfig() if config is None else config
    output = check_calibration_output(Path(output), list(inputs))
    check_source(source)
    progress("reading the dataset")
    sets = load_sets(calib_data, config)
    return quantize(source, source_sha256, sets, output, config, progress, start)


def check_source(source: onnx.ModelProto, name: str = "the source graph") -> Contract:
    contract = contract_of(source, name)
    if contract.precision != Precision.FP32:
        raise ReidTrtError(f"calibration takes an fp32 graph, this one is {contract.precision}: "
                           "export with 'reid-export onnx --precision fp32'")
    return contract


def quantize(source: onnx.ModelProto, source_sha256: str, sets: CalibrationSets, output: Path,
             config: CalibrationConfig, progress: Callable[[str], None],
             start: float | None = None) -> CalibrationResult:
    """calibrate_onnx's work, on a checked source and output and sets already read."""
    from reid_trt.calibration.cache import calibration_hash
    from reid_trt.calibration.report import make_report

    start = time.perf_counter() if start is None else start
    contract = contract_of(source, "the source graph")
    x_calib = graph_input(augmented(sets.calib_crops, config.augment, config.seed), contract)
    batches = [x_calib[i:i + BATCH] for i in range(0, len(x_calib), BATCH)]
    seconds = {"reading": time.perf_counter() - start}
    progress("embedding the judged crops in FP32")
    score = Scorer(source, contract, sets)
    seconds["reference"] = time.perf_counter() - start - seconds["reading"]
    choice = choose(source, batches, score, config, progress)
    seconds.update(choice.seconds)
    method, graph, chosen = choice.method, choice.graph, choice.result
    artifact = sorted_graph(chosen.model)  # float parts FP32: right in every runtime, as written
    del artifact.metadata_props[:]
    onnx.helper.set_model_props(artifact, {
        **replace(contract, precision=Precision.INT8).to_metadata(),
        **Int8Record(method, "fp32", str(config.unquantized)).to_metadata()})
    digest = calibration_hash(source_sha256, [sample_id(s) for s in sets.calib_samples],
                              contract.to_dict())
    report = make_report(sets, score, config, choice, int8_work(graph, artifact),
                         score.plain(artifact), source_sha256, digest)
    report.seconds = round(time.perf_counter() - start, 1)
    report.stage_seconds = {k: round(v, 1) for k, v in seconds.items()}
    return write_calibration(output, artifact, choice.ranges, method, report)


def source_graph(onnx_path: Path | None, weights: Path | None, trust_checkpoint: bool = False
                 ) -> tuple[onnx.ModelProto, str, Contract]:
    """The FP32 graph to calibrate: a file, or a fresh verified export of a checkpoint."""
    if (onnx_path is None) == (weights is None):
        raise ReidTrtError(f"pass exactly one of {opt('onnx')} (an fp32 graph) or {opt('weights')} "
                           "(a checkpoint)")
    if onnx_path is not None:
        model = load_onnx(Path(onnx_path))
        return model, sha256_file(Path(onnx_path)), contract_of(model, str(onnx_path))
    import tempfile

    from reid_trt.export.api import ExportConfig, export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        exported = export_onnx(weights, Path(tmp) / "fp32.onnx",
                               ExportConfig(trust_checkpoint=trust_checkpoint))
        model = onnx.load(str(exported.path))
        return model, sha256_file(exported.path), exported.contract
