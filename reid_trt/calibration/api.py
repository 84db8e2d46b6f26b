"""`reid-export calibrate` as a library call: dataset -> calibration set -> Q/DQ INT8 graph,
judged on cameras and conditions the calibration never saw (protocol.py).

The steps, each a function: `load_sets` (calibration crops, and the crops to judge by; sets
with too little variation refused), `Scorer` (FP32 reference; agreement of a candidate, per
domain), `choose` (ranges per method, equalisation, bias correction, the fallback search of
search.py), then the report and the files (report.py).

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
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx

from reid_trt.calibration import protocol
from reid_trt.calibration.candidates import Int8Graph
from reid_trt.calibration.equalize import equalize
from reid_trt.calibration.placement import activation_tensors, int8_work
from reid_trt.calibration.quantize import QUANTIZED_OPS, Agreement, Budget, sorted_graph
from reid_trt.calibration.ranges import tensor_ranges
from reid_trt.calibration.report import (
    CalibrationResult,
    Equalization,
    report_path_for,
    write_calibration,
)
from reid_trt.calibration.search import SearchResult, low_tail, low_tail_count, search
from reid_trt.core.contract import Contract, Int8Record, contract_of
from reid_trt.core.defaults import MIN_CROP_HW
from reid_trt.core.errors import ReidTrtError, opt
from reid_trt.core.fileio import check_output, sha256_file
from reid_trt.core.metrics import cosine_rows, evaluate, neighbour_agreement
from reid_trt.core.onnxio import load_onnx, ort_session
from reid_trt.core.options import (
    CalibrationMethod,
    ConfigError,
    Precision,
    bounded,
    coerce_choices,
    described,
)
from reid_trt.core.preprocess import graph_input
from reid_trt.data.datasets import (
    KINDS,
    SPLIT_PROTOCOL,
    DatasetOptions,
    ReidDataset,
    RetrievalSplit,
    Sample,
    load_dataset,
    read_samples,
    retrieval_split,
    stratified_sample,
)
from reid_trt.data.shifts import EVALUATION_SHIFTS, augmented

BATCH = 16
# Crops per ONNX Runtime call while scoring: memory bounded by the chunk. 32 rather than 64: the
# INT8 candidates ran about 4% faster in interleaved runs (2-core AMD EPYC, onnxruntime 1.32) and
# compute the same bits (the calibrated graph is the same file).
RUN_CHUNK = 32
DEFAULT_SIZE = 256
MAX_SET = 100_000  # images held decoded in memory
EQUALIZED_MIN_COSINE = 0.99999  # the equalised FP32 graph must compute what the source does
# A calibration set is refused when over FLAT_SHARE of its images have a pixel spread (standard
# deviation, 0-255) under FLAT_STD, or it has fewer than MIN_DISTINCT different images. Real
# person crops: spread 15 to 78 (the 257 MOT17 and re-ID crops here); a blank frame: 0.
FLAT_STD, FLAT_SHARE, MIN_DISTINCT = 6.0, 0.1, 8
QUICK_CROPS = 16  # judged crops per domain for a block's damage


@dataclass(frozen=True)
class CalibrationConfig:
    """Options of `reid-export calibrate`, checked on construction.

    size None: 256 images, or all of a smaller set. augment: randomly shifted copies added per
    calibration crop (data/shifts.py; 0 turns augmentation off). equalize: cross-layer
    equalisation before the clipping methods (mse, percentile; auto tries it)."""

    dataset: str = described("auto", "auto|market1501|dukemtmc|msmt17|cuhk03|mot17|folder.")
    size: int | None = described(None, "Calibration images, stratified over identities and "
                                 "cameras [256, or all of a smaller set].")
    method: CalibrationMethod = described(
        CalibrationMethod.AUTO, "auto: the method that meets the budget with the fewest float "
        "layers.")
    seed: int = 0
    eval_size: int = 96
    augment: int = described(1, "Randomly shifted copies added per calibration image "
                             "(brightness, contrast, gamma, blur, ...; 0: none).")
    equalize: bool = described(True, "Cross-layer equalisation before INT8 (with mse/percentile "
                               "ranges).")
    bias_correction: bool = True
    unquantized: Precision = described(
        Precision.FP16, "The engine's precision for the layers left unquantized; the .onnx "
        "keeps them fp32 (and records this for reid-export trt).")
    budget: Budget = field(default_factory=Budget)
    eval_data: Path | None = described(
        None, "A labelled cross-camera set to judge INT8 by instead of the calibration data's "
        "unused crops: query/ and bounding_box_test/, or one folder of Market-named crops from two "
        "cameras; its mAP and Rank-1 change are reported, the mAP drop held to the budget.")

    def __post_init__(self):
        if self.dataset not in ("auto", *KINDS):
            raise ConfigError("dataset", self.dataset, f"choose auto or {', '.join(KINDS)}")
        if self.size is not None:
            bounded(self.size, "size", 1, MAX_SET)
        bounded(self.eval_size, "eval_size", 2, MAX_SET, "agreement compares neighbours")
        bounded(self.seed, "seed", 0)
        bounded(self.augment, "augment", 0, 8, "shifted copies per crop")
        coerce_choices(self, method=CalibrationMethod, unquantized=Precision)
        if self.unquantized == Precision.INT8:
            raise ConfigError("unquantized", "int8", "choose fp16 or fp32")
        if not 0 <= self.budget.max_map_drop <= 100:
            raise ConfigError("max_map_drop", self.budget.max_map_drop, "mAP points, 0 to 100")


@dataclass
class CalibrationSets:
    """Crops to calibrate on and to judge by, and where they came from."""

    dataset: ReidDataset
    split: protocol.Split
    calib_crops: list[np.ndarray]
    calib_samples: list[Sample]
    skipped: int
    judged_crops: list[np.ndarray]
    judged_samples: list[Sample]
    judged_skipped: int
    unseen: bool  # no judged crop was used for calibration
    n_query: int | None  # labelled: the first n_query judged samples are queries
    notes: list[str] = field(default_factory=list)
    evaluation: str | None = None  # labelled: the set judged on and how its queries meet the gallery


def _sample_id(s: Sample) -> str:
    return f"{s.path}{'' if s.box is None else s.box}"


def check_calibration_output(output: Path, inputs: list) -> Path:
    """The INT8 graph and its report: checked before any dataset is read."""
    return check_output(output, opt("output"), (".onnx",), inputs=inputs,
                        side_files=[report_path_for(Path(output))])


def _labelled_split(queries: list[Sample], gallery: list[Sample], size: int, seed: int):
    """Query and gallery samples (the test split, never calibrated on) for mAP."""
    query = stratified_sample(queries, min(len(queries), max(size // 4, 1)), seed)
    pids = {q.pid for q in query}
    matches = [g for g in gallery if g.pid in pids]
    others = [g for g in gallery if g.pid not in pids]
    rest = max(size - len(query) - len(matches), 0)
    return query, query + matches + stratified_sample(others, min(rest, len(others)), seed)


def load_sets(calib_data: Path | str, config: CalibrationConfig) -> CalibrationSets:
    """Calibration crops (stratified over identities and cameras) and the crops to judge by,
    split as protocol.py says. Images under MIN_CROP_HW are refused: they calibrate ranges no
    real crop has."""
    dataset = load_dataset(calib_data, config.dataset)
    if not dataset.train:
        raise ReidTrtError(f"{opt('calib_data')} {calib_data}: no training images (a "
                           f"{dataset.kind} set calibrates on bounding_box_train/; query and "
                           "gallery only judge); pass the set's root with its training split, or "
                           "a folder of crops")
    evaluation = None
    if config.eval_data is not None:
        where = f"{opt('eval_data')} {config.eval_data}"
        evaluation = retrieval_split(load_dataset(config.eval_data, "auto", DatasetOptions(
            opt("eval_data"), opt("eval_data"), folder_ok=False)), where)
    elif dataset.has_protocol:
        evaluation = RetrievalSplit(dataset.query, dataset.gallery, SPLIT_PROTOCOL)
    labelled = evaluation is not None
    split = protocol.Split(list(dataset.train), []) if labelled else \
        protocol.camera_split(dataset, config.seed)
    notes = list(split.warnings)
    pool = split.pool
    if config.size is not None and config.size > len(pool):
        where = "" if split.single_camera else " on the cameras kept for calibration"
        raise ConfigError("size", config.size, f"larger than the set ({len(pool)} images{where});"
                          f" pass {len(pool)} or less, or leave the default")
    size = config.size or min(DEFAULT_SIZE, len(pool))
    if config.size is None and size < DEFAULT_SIZE:
        notes.append(f"the set has {size} images to calibrate on, fewer than the default "
                     f"{DEFAULT_SIZE}: all of them are used")
    sampled = stratified_sample(pool, size, config.seed)
    crops, samples, skipped = read_samples(sampled, MIN_CROP_HW)
    if not crops:
        raise ReidTrtError(f"{opt('calib_data')} {calib_data}: none of the {len(sampled)} sampled images "
                           f"could be read at {MIN_CROP_HW[0]}x{MIN_CROP_HW[1]} px or more "
                           "(unreadable, damaged or cut-short files are skipped); pass a folder "
                           "of person crops")
    refuse_degenerate(crops, calib_data)
    n_query = None
    if labelled:
        queries, judged = _labelled_split(evaluation.query, evaluation.gallery, config.eval_size,
                                          config.seed)
        n_query, unseen = len(queries), not set(judged) & set(samples)
    else:
        judged, unseen = protocol.judged_samples(split, samples, config.eval_size, config.seed,
                                                 _sample_id)
        if not unseen:
            notes.append("every image was used for calibration: only the shifted copies are "
                         "unseen by it")
    judged_crops, judged_samples, judged_skipped = read_samples(judged, MIN_CROP_HW)
    if len(judged_crops) < 2:
        raise ReidTrtError(f"{opt('calib_data')} {calib_data}: fewer than 2 readable images to judge "
                           "INT8 by; pass a larger set")
    if n_query is not None:
        n_query = sum(1 for s in judged_samples[:n_query] if s in set(judged[:n_query]))
    if labelled and not unseen:
        notes.append("some judged images were also calibrated on: pass an evaluation set apart "
                     "from the calibration data")
    described_as = None
    if evaluation is not None:
        root = config.eval_data if config.eval_data is not None else dataset.root
        described_as = f"{root}: {evaluation.protocol}"
    return CalibrationSets(dataset, split, crops, samples, skipped, judged_crops,
                           judged_samples, judged_skipped, unseen, n_query, notes, described_as)


def refuse_degenerate(crops: list[np.ndarray], calib_data) -> None:
    """Calibration crops must look like a camera's: ranges fitted to blank or repeated images
    clip real crops (all-black crops calibrated with 0.997 claimed and gave 0.958 mean / 0.856
    min cosine on real ones), and judging on such crops proves nothing."""
    grey = [c.mean(axis=2) if c.ndim == 3 else c for c in crops]
    flat = sum(float(g.std()) < FLAT_STD for g in grey)
    if flat > FLAT_SHARE * len(crops):
        raise ReidTrtError(
            f"{opt('calib_data')} {calib_data}: {flat} of the {len(crops)} calibration images are blank "
            f"or nearly so (pixel spread under {FLAT_STD:g} of 255), so INT8 ranges would not fit "
            "real crops; pass person crops from your cameras")
    from reid_trt.core.opencv import cv2

    thumbs = {(cv2.resize(g.astype(np.float32), (8, 16), interpolation=cv2.INTER_AREA) // 8)
              .astype(np.uint8).tobytes() for g in grey}
    if len(thumbs) < MIN_DISTINCT:
        raise ReidTrtError(
            f"{opt('calib_data')} {calib_data}: only {len(thumbs)} distinct images among "
            f"{len(crops)} (at least {MIN_DISTINCT} are needed to calibrate and judge INT8); "
            "pass a folder with more, different person crops")


def chunks(rows: int) -> list[slice]:
    """The ONNX Runtime calls a set of `rows` crops is run in: a row is computed to the same bits
    whichever order the chunks go in."""
    return [slice(i, min(i + RUN_CHUNK, rows)) for i in range(0, rows, RUN_CHUNK)]


def run_chunked(session, name: str, x: np.ndarray) -> np.ndarray:
    return np.concatenate([session.run(None, {name: x[c]})[0] for c in chunks(len(x))])


class Scorer:
    """Agreement of candidate graphs with the FP32 source on the judged crops and their shifted
    copies, overall and per domain (protocol.py). `quick` judges the first QUICK_CROPS crops of
    every domain only: enough to measure a block's damage, never to decide the budget."""

    def __init__(self, source: onnx.ModelProto, contract: Contract, sets: CalibrationSets):
        self.sets = sets
        self.name = source.graph.input[0].name
        self.n = len(sets.judged_crops)
        self.groups = protocol.domains(sets.judged_crops, sets.judged_samples, sets.split)
        if sets.n_query is not None:
            self.groups = {(k if k in EVALUATION_SHIFTS else "query and gallery"): v
                           for k, v in self.groups.items()}
        self.x = graph_input(protocol.with_shifts(sets.judged_crops), contract)
        source_session = ort_session(source, source="the source graph")
        self.reference = run_chunked(source_session, self.name, self.x)
        self.fp32_retrieval = self._map(self.reference) if sets.n_query else None
        self.quick_rows = np.flatnonzero(np.arange(len(self.x)) % self.n < QUICK_CROPS)
        at = {int(row): k for k, row in enumerate(self.quick_rows)}
        self.quick_groups = {name: [at[i] for i in idx if i in at]
                             for name, idx in self.groups.items()}
        self.last_worst = ""  # the worst domain of the latest scoring: scored first next time

    def _map(self, embeddings: np.ndarray):
        n, samples = self.sets.n_query, self.sets.judged_samples
        q, g = samples[:n], samples[n:]
        base = embeddings[:self.n]
        return evaluate(base[:n], [s.pid for s in q], [s.camid for s in q],
                        base[n:], [s.pid for s in g], [s.camid for s in g])

    def agreement(self, got: np.ndarray, done: np.ndarray | None = None) -> Agreement:
        """Agreement of `got` with the reference. `done`: the rows computed so far where only
        some are; the figures that need the others are then at their best (a domain not yet
        complete is left out, the worst 1% is of the rows so far), so that a budget fails on
        these only if it must fail on every row."""
        every = done is None or done.all()
        done = np.ones(len(self.x), dtype=bool) if done is None else done
        cos = np.ones(len(self.x))
        cos[done] = cosine_rows(got[done], self.reference[done])
        figures = protocol.domain_figures(cos, {k: v for k, v in self.groups.items()
                                                if done[v].all()})
        worst, figure = protocol.worst_domain(figures) if figures else ("", {"mean_cosine": 1.0})
        enough = done.sum() >= low_tail_count(len(self.x))
        low = low_tail(cos[done], rows=len(self.x)) if enough else 1.0
        base = done[:self.n].all()
        topk = neighbour_agreement(self.reference[:self.n], got[:self.n], k=5) if base else 1.0
        drop = rank1_drop = None
        if base and self.fp32_retrieval is not None:
            int8 = self._map(got)
            drop = 100.0 * (self.fp32_retrieval.mAP - int8.mAP)
            rank1_drop = 100.0 * (self.fp32_retrieval.rank1 - int8.rank1)
        return Agreement(float(cos[done].mean()), float(cos[done].min()), topk, low, drop, worst,
                         figure["mean_cosine"], rank1_drop, figures,
                         rows_scored=None if every else int(done.sum()))

    def __call__(self, model: onnx.ModelProto, budget: Budget | None = None) -> Agreement:
        """Agreement on every judged row. With `budget`, a candidate that fails it is usually
        known to fail long before its last row: the rows of the domain that was worst last time
        go first, and the scoring stops once the rows so far prove the budget cannot hold (a
        whole domain's mean below it, the worst 1% so far below it: more rows only lower
        that). The chunks are those of every other scoring, so the rows computed are the same
        bits and a candidate that holds gets the same figures."""
        session = ort_session(model, int8_in_float=True)
        first = set(self.groups.get(self.last_worst, []))
        order = sorted(chunks(len(self.x)), key=lambda c: not first & set(range(c.start, c.stop)))
        got = np.zeros_like(self.reference)
        done = np.zeros(len(self.x), dtype=bool)
        for rows in order:
            got[rows] = session.run(None, {self.name: self.x[rows]})[0]
            done[rows] = True
            if budget is not None and not done.all():
                partial = self.agreement(got, done)
                if not budget.holds(partial):
                    return self._remember(partial)
        return self._remember(self.agreement(got))

    def _remember(self, agreement: Agreement) -> Agreement:
        self.last_worst = agreement.worst_domain or self.last_worst
        return agreement

    def quick(self, model: onnx.ModelProto) -> Agreement:
        rows = self.quick_rows
        got = run_chunked(ort_session(model, int8_in_float=True), self.name, self.x[rows])
        cos = cosine_rows(got, self.reference[rows])
        worst, figure = protocol.worst_domain(protocol.domain_figures(cos, self.quick_groups))
        return self._remember(Agreement(float(cos.mean()), float(cos.min()), 1.0, low_tail(cos),
                                        None, worst, figure["mean_cosine"]))

    def plain(self, model: onnx.ModelProto) -> Agreement:
        """The graph as written, in an ONNX Runtime session with default options: what any
        other consumer of the file computes."""
        return self.agreement(run_chunked(ort_session(model, as_any_consumer=True), self.name,
                                          self.x))


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
    ranges: object  # onnxruntime TensorsData
    tried: dict  # method -> its all-INT8 figures on the quick subset
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
    tried = {str(method): {"equalized": graph is not source,
                           "all_int8_quick": score.quick(candidate()).summary()}}
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
                   calib_data: Path | str | CalibrationSets, output: Path | str,
                   config: CalibrationConfig = CalibrationConfig(),
                   progress: Callable[[str], None] = lambda _: None,
                   inputs: tuple = ()) -> CalibrationResult:
    """Quantizes an FP32 graph exported by reid-export; writes the INT8 graph, a TensorRT
    calibration cache and a JSON report beside it (all atomically). `calib_data`: a dataset
    folder, or the sets `load_sets` read from one. `inputs`: files the caller read, which no
    output may overwrite."""
    start = time.perf_counter()
    output = check_calibration_output(Path(output), list(inputs))
    check_source(source)
    if not isinstance(calib_data, CalibrationSets):
        progress("reading the dataset")
        calib_data = load_sets(calib_data, config)
    return quantize(source, source_sha256, calib_data, output, config, progress, start)


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
    digest = calibration_hash(source_sha256, [_sample_id(s) for s in sets.calib_samples],
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
