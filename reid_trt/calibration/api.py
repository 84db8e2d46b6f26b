"""`reid-export calibrate` as a library call: dataset -> calibration set -> Q/DQ INT8 graph,
with the method and the unquantized parts chosen by agreement with FP32 (or by mAP).

The steps, each a function: `load_sets` (calibration and evaluation crops), `Scorer` (FP32
reference and the agreement of a candidate), `choose` (ranges and fallback search per method),
`write_calibration` (graph, TensorRT cache and report, atomically).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx

from reid_trt.calibration.quantize import (
    METHODS,
    Agreement,
    Budget,
    SearchResult,
    layer_groups,
    search_fallback,
    tensor_ranges,
)
from reid_trt.core.contract import Contract, contract_of
from reid_trt.core.defaults import MIN_CROP_HW
from reid_trt.core.errors import ReidTrtError
from reid_trt.core.fileio import atomic_path, check_output, sha256_file
from reid_trt.core.metrics import cosine_rows, evaluate, neighbour_agreement
from reid_trt.core.onnxio import load_onnx, ort_session
from reid_trt.core.options import (
    CalibrationMethod,
    ConfigError,
    Precision,
    bounded,
    coerce_choices,
)
from reid_trt.core.preprocess import graph_input
from reid_trt.data.datasets import (
    KINDS,
    ReidDataset,
    Sample,
    load_dataset,
    read_samples,
    stratified_sample,
)
from reid_trt.export.precision import qdq_to_fp16

BATCH = 16
MAX_SET = 100_000  # images held decoded in memory


@dataclass(frozen=True)
class CalibrationConfig:
    """Options of `reid-export calibrate`, checked on construction."""

    dataset: str = "auto"
    size: int = 256
    method: CalibrationMethod = CalibrationMethod.AUTO
    seed: int = 0
    eval_size: int = 256
    unquantized: Precision = Precision.FP16  # precision of the parts left unquantized
    budget: Budget = field(default_factory=Budget)

    def __post_init__(self):
        if self.dataset not in ("auto", *KINDS):
            raise ConfigError("dataset", self.dataset, f"choose auto or {', '.join(KINDS)}")
        bounded(self.size, "size", 1, MAX_SET)
        bounded(self.eval_size, "eval_size", 2, MAX_SET, "agreement compares neighbours")
        bounded(self.seed, "seed", 0)
        coerce_choices(self, method=CalibrationMethod, unquantized=Precision)
        if self.unquantized == Precision.INT8:
            raise ConfigError("unquantized", "int8", "choose fp16 or fp32")
        if not 0 <= self.budget.max_map_drop <= 100:
            raise ConfigError("max_map_drop", self.budget.max_map_drop, "mAP points, 0 to 100")


@dataclass
class CalibrationSets:
    """Crops to calibrate on and to judge by, and where they came from."""

    dataset: ReidDataset
    calib_crops: list[np.ndarray]
    calib_samples: list[Sample]
    skipped: int
    eval_crops: list[np.ndarray]
    eval_samples: list[Sample]
    eval_skipped: int
    n_query: int | None  # labelled query/gallery: the first n_query eval samples are queries


@dataclass
class CalibrationReport:
    """What `calibrate` did and what the INT8 graph keeps; written as model.int8.calib.json."""

    method: str
    budget: dict
    budget_held: bool
    int8_vs_fp32: dict
    unquantized_precision: str
    fp32_retrieval: dict | None
    unquantized_parts: list[str]
    unquantized_layers: str
    block_sensitivity: dict[str, float]
    search_steps: list[dict]
    methods_tried: dict
    calibration_set: dict
    evaluation_set: dict
    source_sha256: str
    calibration_hash: str
    seconds: float = 0.0
    int8_sha256: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CalibrationResult:
    path: Path
    cache: Path
    report_path: Path
    report: dict


def _sample_id(s: Sample) -> str:
    return f"{s.path}{'' if s.box is None else s.box}"


def report_path_for(output: Path) -> Path:
    return output.with_name(output.stem + ".calib.json")


def check_calibration_output(output: Path, inputs: list) -> Path:
    """The INT8 graph and its report: checked before any dataset is read."""
    return check_output(output, "-o", (".onnx",), inputs=inputs,
                        side_files=[report_path_for(Path(output))])


def _eval_split(dataset: ReidDataset, calib: list[Sample], size: int, seed: int):
    """(query samples or None, evaluation samples): labelled query/gallery where the dataset has
    them; else a stratified mix of the images the calibration did not use and those it did, so
    that every domain of the data is under the budget (a small domain may sit entirely in the
    calibration set)."""
    if dataset.has_protocol:
        query = stratified_sample(dataset.query, min(len(dataset.query), max(size // 4, 1)), seed)
        pids = {q.pid for q in query}
        matches = [g for g in dataset.gallery if g.pid in pids]
        others = [g for g in dataset.gallery if g.pid not in pids]
        rest = max(size - len(query) - len(matches), 0)
        gallery = matches + stratified_sample(others, min(rest, len(others)), seed)
        return query, query + gallery
    used = {_sample_id(s) for s in calib}
    unused = [s for s in dataset.train if _sample_id(s) not in used]
    held_out = stratified_sample(unused, min(size // 2, len(unused)), seed)
    return None, held_out + stratified_sample(calib, min(size - len(held_out), len(calib)), seed)


def load_sets(calib_data: Path | str, config: CalibrationConfig) -> CalibrationSets:
    """The calibration crops (stratified over identities and cameras) and the evaluation crops.
    Images smaller than MIN_CROP_HW are refused: they calibrate ranges no real crop has."""
    dataset = load_dataset(calib_data, config.dataset)
    sampled = stratified_sample(dataset.train, config.size, config.seed)
    crops, samples, skipped = read_samples(sampled, MIN_CROP_HW)
    if not crops:
        raise ReidTrtError(f"--calib-data {calib_data}: none of the {len(sampled)} sampled images "
                           f"could be read at {MIN_CROP_HW[0]}x{MIN_CROP_HW[1]} px or more; pass "
                           "a folder of person crops")
    queries, eval_samples = _eval_split(dataset, samples, config.eval_size, config.seed)
    eval_crops, eval_samples, eval_skipped = read_samples(eval_samples, MIN_CROP_HW)
    if len(eval_crops) < 2:
        raise ReidTrtError(f"--calib-data {calib_data}: fewer than 2 readable images to judge "
                           "INT8 by; pass a larger set")
    return CalibrationSets(dataset, crops, samples, skipped, eval_crops, eval_samples,
                           eval_skipped, None if queries is None else len(queries))


class Scorer:
    """Agreement of candidate graphs with the FP32 source on the evaluation crops.

    Every candidate is scored as it will be written: with the unquantized parts in FP16 (where
    TensorRT runs them faster than FP32) unless asked otherwise. FP16 moves some INT8 rounding
    decisions, which alone costs about as much agreement as a sensitive block, so the search
    must see it."""

    def __init__(self, source: onnx.ModelProto, contract: Contract, sets: CalibrationSets,
                 unquantized: Precision):
        self.sets, self.unquantized = sets, unquantized
        self.name = source.graph.input[0].name
        self.x = graph_input(sets.eval_crops, contract)
        self.reference = ort_session(source, source="the source graph").run(
            None, {self.name: self.x})[0]
        self.fp32_retrieval = self._map(self.reference) if sets.n_query else None

    def _map(self, embeddings: np.ndarray):
        n, samples = self.sets.n_query, self.sets.eval_samples
        q, g = samples[:n], samples[n:]
        return evaluate(embeddings[:n], [s.pid for s in q], [s.camid for s in q],
                        embeddings[n:], [s.pid for s in g], [s.camid for s in g])

    def written(self, model: onnx.ModelProto, sort: bool = True) -> onnx.ModelProto:
        return qdq_to_fp16(model, sort) if self.unquantized == Precision.FP16 else model

    def __call__(self, model: onnx.ModelProto) -> Agreement:
        got = ort_session(self.written(model, sort=False)).run(None, {self.name: self.x})[0]
        cos = cosine_rows(got, self.reference)
        drop = None
        if self.fp32_retrieval is not None:
            drop = 100.0 * (self.fp32_retrieval.mAP - self._map(got).mAP)
        return Agreement(float(cos.mean()), float(cos.min()),
                         neighbour_agreement(self.reference, got, k=5), drop)


def choose(source: onnx.ModelProto, batches: list[np.ndarray], score: Scorer,
           config: CalibrationConfig, progress: Callable[[str], None]):
    """(method, SearchResult, ranges, every method's result): each method's ranges and fallback
    search; the winner meets the budget with the fewest float layers."""
    methods = METHODS if config.method == CalibrationMethod.AUTO else (config.method.value,)
    tried: dict[str, tuple[SearchResult, object]] = {}
    for method in methods:
        progress(f"calibrating ({method})")
        ranges = tensor_ranges(source, batches, method)
        tried[method] = (search_fallback(source, ranges, score, config.budget,
                                         lambda m, k=method: progress(f"{k}: {m}")), ranges)

    def rank(method: str):
        result = tried[method][0]
        return (not config.budget.holds(result.agreement), float_layers(source, result),
                -result.agreement.mean_cosine)

    method = min(tried, key=rank)
    return method, tried[method][0], tried[method][1], tried


def float_layers(source: onnx.ModelProto, result: SearchResult) -> int:
    fine = layer_groups(source, fine=True) | layer_groups(source)
    return len({n for part in result.excluded for n in fine[part]})


def make_report(source: onnx.ModelProto, source_sha256: str, sets: CalibrationSets,
                score: Scorer, config: CalibrationConfig, method: str, chosen: SearchResult,
                tried: dict, digest: str) -> CalibrationReport:
    total = sum(len(v) for v in layer_groups(source).values())
    calib_ids = {_sample_id(s) for s in sets.calib_samples}
    known_ids = {s.pid for s in sets.calib_samples if s.pid >= 0}
    return CalibrationReport(
        method=method, budget=asdict(config.budget),
        budget_held=config.budget.holds(chosen.agreement),
        int8_vs_fp32=chosen.agreement.to_dict(), unquantized_precision=str(config.unquantized),
        fp32_retrieval=score.fp32_retrieval.to_dict() if score.fp32_retrieval else None,
        unquantized_parts=chosen.excluded,
        unquantized_layers=f"{float_layers(source, chosen)} of {total} Conv/Gemm layers "
                           f"(kept in {config.unquantized})",
        block_sensitivity=chosen.sensitivity, search_steps=chosen.steps,
        methods_tried={m: {"int8_vs_fp32": r.agreement.to_dict(),
                           "unquantized_layers": float_layers(source, r),
                           "budget_held": config.budget.holds(r.agreement)}
                       for m, (r, _) in tried.items()},
        calibration_set={"dataset": sets.dataset.kind, "root": str(sets.dataset.root),
                         "images": len(sets.calib_crops),
                         "unreadable_skipped": sets.skipped,
                         "identities": len(known_ids) or None,
                         "cameras": len({s.camid for s in sets.calib_samples}),
                         "seed": config.seed},
        evaluation_set={"images": len(sets.eval_crops), "queries": sets.n_query,
                        "unreadable_skipped": sets.eval_skipped,
                        "held_out": sum(_sample_id(s) not in calib_ids
                                        for s in sets.eval_samples)},
        source_sha256=source_sha256, calibration_hash=digest)


def write_calibration(output: Path, quantized: onnx.ModelProto, ranges, method: str,
                      report: CalibrationReport) -> CalibrationResult:
    """The INT8 graph, the TensorRT cache and the report, each written atomically."""
    from reid_trt.calibration.cache import cache_path, cache_text

    cache = cache_path(output, report.calibration_hash)
    report_path = report_path_for(output)
    with atomic_path(output) as tmp_model, atomic_path(cache) as tmp_cache, \
            atomic_path(report_path) as tmp_report:
        onnx.save(quantized, tmp_model)
        tmp_cache.write_text(cache_text(ranges, method))
        report.int8_sha256 = sha256_file(tmp_model)
        tmp_report.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return CalibrationResult(output, cache, report_path, report.to_dict())


def calibrate_onnx(source: onnx.ModelProto, source_sha256: str, calib_data: Path | str,
                   output: Path | str, config: CalibrationConfig = CalibrationConfig(),
                   progress: Callable[[str], None] = lambda _: None,
                   inputs: tuple = ()) -> CalibrationResult:
    """Quantizes an FP32 graph exported by reid-export; writes the INT8 graph, a TensorRT
    calibration cache and a JSON report beside it (all atomically). `inputs`: files the caller
    read, which no output may overwrite."""
    from reid_trt.calibration.cache import calibration_hash

    start = time.perf_counter()
    output = check_calibration_output(Path(output), list(inputs))
    contract = contract_of(source, "the source graph")
    if contract.precision != Precision.FP32:
        raise ReidTrtError(f"calibration takes an fp32 graph, this one is {contract.precision}: "
                           "export with 'reid-export onnx --precision fp32'")
    progress("reading the dataset")
    sets = load_sets(calib_data, config)
    x_calib = graph_input(sets.calib_crops, contract)
    batches = [x_calib[i:i + BATCH] for i in range(0, len(x_calib), BATCH)]
    score = Scorer(source, contract, sets, config.unquantized)
    method, chosen, ranges, tried = choose(source, batches, score, config, progress)

    quantized = score.written(chosen.model)
    del quantized.metadata_props[:]
    onnx.helper.set_model_props(quantized, {
        **replace(contract, precision=Precision.INT8).to_metadata(),
        "reid_trt.calibration_method": json.dumps(method),
        "reid_trt.unquantized_precision": json.dumps(str(config.unquantized))})
    digest = calibration_hash(source_sha256, [_sample_id(s) for s in sets.calib_samples],
                              contract.to_dict())
    report = make_report(source, source_sha256, sets, score, config, method, chosen, tried,
                         digest)
    report.seconds = round(time.perf_counter() - start, 1)
    return write_calibration(output, quantized, ranges, method, report)


def source_graph(onnx_path: Path | None, weights: Path | None, trust_checkpoint: bool = False
                 ) -> tuple[onnx.ModelProto, str, Contract]:
    """The FP32 graph to calibrate: a file, or a fresh verified export of a checkpoint."""
    if (onnx_path is None) == (weights is None):
        raise ReidTrtError("pass exactly one of --onnx (an fp32 graph) or --weights (a checkpoint)")
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


def calibrate(calib_data: Path | None, output: Path | None, config: CalibrationConfig, *,
              onnx_path: Path | None = None, weights: Path | None = None,
              trust_checkpoint: bool = False,
              progress: Callable[[str], None] = lambda _: None) -> CalibrationResult:
    """`reid-export calibrate`: outputs and dataset checked first, then the source graph (read,
    or exported from `weights`), then `calibrate_onnx`. output None: <source stem>.int8.onnx."""
    if (onnx_path is None) == (weights is None):
        raise ReidTrtError("pass exactly one of --onnx (an fp32 graph) or --weights (a checkpoint)")
    if calib_data is None:
        raise ConfigError("calib_data", None, "INT8 needs a re-ID dataset or a folder of crops")
    source = Path(onnx_path or weights)
    output = Path(output) if output else Path(source.stem + ".int8.onnx")
    inputs = [onnx_path, weights, calib_data]
    check_calibration_output(output, inputs)
    load_dataset(calib_data, config.dataset)  # a wrong folder fails before a long export
    progress("exporting" if weights else "reading the graph")
    graph, sha, _ = source_graph(onnx_path, weights, trust_checkpoint)
    return calibrate_onnx(graph, sha, calib_data, output, config, progress,
                          inputs=tuple(p for p in inputs if p))
