"""What `calibrate` did and what the INT8 graph keeps: model.int8.calib.json, and the files
written with it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import onnx

from reid_trt.calibration.placement import Int8Work
from reid_trt.calibration.protocol import DomainFigures
from reid_trt.calibration.quantize import Budget, Figures
from reid_trt.calibration.search import SearchStep
from reid_trt.calibration.sets import sample_id
from reid_trt.core.fileio import atomic_paths, sha256_file
from reid_trt.core.metrics import RetrievalScores
from reid_trt.core.records import fields_jsonable

if TYPE_CHECKING:
    from onnxruntime.quantization.calibrate import TensorsData

# The report file's layout: 2 added "schema" and typed every section (the keys stayed); 3 added
# rank1_drop to the figures (with a labelled evaluation set, --eval-data).
REPORT_SCHEMA = 3


@dataclass
class SplitInfo:
    """How the crops were split between calibrating and judging, and any warning."""

    split: str  # "labelled, <set>: <protocol>", "leave-camera-out" or "single camera"
    held_out_cameras: list[int]
    judged_unseen: bool
    shifts: list[str]
    warnings: list[str]


@dataclass
class CalibrationSetInfo:
    dataset: str
    root: str
    images: int
    augmented_copies_per_image: int
    unreadable_skipped: int
    identities: int | None
    cameras: int
    seed: int


@dataclass
class EvaluationSetInfo:
    images: int
    queries: int | None
    with_shifted_copies: int
    unreadable_skipped: int
    held_out: int


@dataclass
class Equalization:
    used: bool
    pairs: int | None = None
    min_cosine_to_source: float | None = None


@dataclass(frozen=True)
class MethodTried:
    """A range method's all-INT8 graph, judged on the quick subset."""

    equalized: bool
    all_int8_quick: Figures


@dataclass
class BiasCorrection:
    used: bool
    layers: int


@dataclass
class CalibrationReport:
    method: str
    budget: Budget
    budget_held: bool
    int8_vs_fp32: Figures  # as the engine runs it (float parts in `unquantized_precision`)
    artifact_vs_fp32: Figures  # the written file in a plain ONNX Runtime session
    unquantized_precision: str  # of the float parts in the engine
    int8_work: Int8Work
    unquantized_parts: list[str]
    domains: dict[str, DomainFigures]  # per held-out camera and per shift
    protocol: SplitInfo
    equalization: Equalization
    bias_correction: BiasCorrection
    fp32_retrieval: RetrievalScores | None
    block_sensitivity: dict[str, float]  # block -> cosine lost when only it is INT8 (quick)
    search_steps: list[SearchStep]  # the search's log: layers left float, and the figures then
    search_scorings: int
    methods_tried: dict[str, MethodTried]  # by range method
    calibration_set: CalibrationSetInfo
    evaluation_set: EvaluationSetInfo
    source_sha256: str
    calibration_hash: str
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    int8_sha256: str = ""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The report as model.int8.calib.json holds it."""
        return {"schema": REPORT_SCHEMA, **fields_jsonable(self)}


@dataclass
class CalibrationResult:
    path: Path
    cache: Path
    report_path: Path
    report: CalibrationReport  # also in report_path, as JSON


def report_path_for(output: Path) -> Path:
    return output.with_name(output.stem + ".calib.json")


def write_calibration(output: Path, quantized: onnx.ModelProto, ranges: TensorsData, method: str,
                      report: CalibrationReport) -> CalibrationResult:
    """The INT8 graph, the TensorRT cache and the report, written all or none."""
    from reid_trt.calibration.cache import cache_path, cache_text

    cache = cache_path(output, report.calibration_hash)
    report_path = report_path_for(output)
    with atomic_paths(output, cache, report_path) as (tmp_model, tmp_cache, tmp_report):
        onnx.save(quantized, tmp_model)
        tmp_cache.write_text(cache_text(ranges, method))
        report.int8_sha256 = sha256_file(tmp_model)
        tmp_report.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return CalibrationResult(output, cache, report_path, report)


def layer_label(model: onnx.ModelProto, node_name: str) -> str:
    """A layer by its module path (conv2.0.conv2b.1.conv1), as torchreid names it."""
    node = next(n for n in model.graph.node if n.name == node_name)
    return node.input[1].removeprefix("model.").removesuffix(".weight").removesuffix(".conv")


def make_report(sets, score, config, choice, work: Int8Work, artifact, source_sha256: str,
                digest: str) -> CalibrationReport:
    """The report from calibrate_onnx's pieces (sets.CalibrationSets, scoring.Scorer, api.Choice)."""
    calib_ids = {sample_id(s) for s in sets.calib_samples}
    known_ids = {s.pid for s in sets.calib_samples if s.pid >= 0}
    split = sets.split
    result, method = choice.result, choice.method
    agreement = result.agreement
    return CalibrationReport(
        method=method, budget=config.budget,
        budget_held=config.budget.holds(agreement),
        int8_vs_fp32=agreement.figures, artifact_vs_fp32=artifact.figures,
        unquantized_precision=str(config.unquantized), int8_work=work,
        unquantized_parts=[layer_label(choice.graph, n.name) for n in choice.graph.graph.node
                           if n.name in set(result.excluded)],  # in graph order
        domains=agreement.domains,
        protocol=SplitInfo(
            split=(f"labelled, {sets.evaluation}" if sets.n_query is not None else
                   "single camera" if split.single_camera else "leave-camera-out"),
            held_out_cameras=[c + 1 for c in split.held_out_cameras],
            judged_unseen=sets.unseen,
            shifts=[k for k in score.groups if k in _shift_names()],
            warnings=list(split.warnings)),
        equalization=choice.equalization,
        bias_correction=BiasCorrection(
            used=config.bias_correction,
            layers=sum(i.name.endswith("_bias_corrected") for i in result.model.graph.initializer)),
        fp32_retrieval=score.fp32_retrieval,
        block_sensitivity=result.sensitivity, search_steps=result.steps,
        search_scorings=result.scorings, methods_tried=choice.tried,
        calibration_set=CalibrationSetInfo(
            dataset=sets.dataset.kind, root=str(sets.dataset.root), images=len(sets.calib_crops),
            augmented_copies_per_image=config.augment, unreadable_skipped=sets.skipped,
            identities=len(known_ids) or None,
            cameras=len({s.camid for s in sets.calib_samples}), seed=config.seed),
        evaluation_set=EvaluationSetInfo(
            images=len(sets.judged_crops), queries=sets.n_query,
            with_shifted_copies=len(score.x), unreadable_skipped=sets.judged_skipped,
            held_out=sum(sample_id(s) not in calib_ids for s in sets.judged_samples)),
        source_sha256=source_sha256, calibration_hash=digest, notes=list(sets.notes))


def _shift_names() -> set[str]:
    from reid_trt.data.shifts import EVALUATION_SHIFTS

    return set(EVALUATION_SHIFTS)
