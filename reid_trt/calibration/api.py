"""`reid-export calibrate` as a library call: dataset -> calibration set -> Q/DQ INT8 graph,
with the method and the unquantized parts chosen by agreement with FP32 (or by mAP)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx

from reid_trt.calibration.datasets import (
    ReidDataset,
    Sample,
    load_dataset,
    read_samples,
    stratified_sample,
)
from reid_trt.calibration.quantize import (
    METHODS,
    Agreement,
    Budget,
    SearchResult,
    layer_groups,
    search_fallback,
    tensor_ranges,
)
from reid_trt.contract import Contract, contract_of
from reid_trt.errors import ReidTrtError
from reid_trt.export.precision import qdq_to_fp16
from reid_trt.fileio import atomic_path, check_writable, sha256_file

BATCH = 16


@dataclass(frozen=True)
class CalibrationConfig:
    """Options of `reid-export calibrate`."""

    dataset: str = "auto"
    size: int = 256
    method: str = "auto"
    seed: int = 0
    eval_size: int = 256
    unquantized: str = "fp16"  # precision of the parts left unquantized: fp16, or fp32
    budget: Budget = field(default_factory=Budget)


@dataclass
class CalibrationResult:
    path: Path
    cache: Path
    report_path: Path
    report: dict


def _sample_id(s: Sample) -> str:
    return f"{s.path}{'' if s.box is None else s.box}"


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


def _map(embeddings: np.ndarray, samples: list[Sample], n_query: int):
    from reid_trt.evaluation import evaluate

    q, g = samples[:n_query], samples[n_query:]
    return evaluate(embeddings[:n_query], [s.pid for s in q], [s.camid for s in q],
                    embeddings[n_query:], [s.pid for s in g], [s.camid for s in g])


def calibrate_onnx(source: onnx.ModelProto, source_sha256: str, calib_data: Path | str,
                   output: Path | str, config: CalibrationConfig = CalibrationConfig(),
                   progress: Callable[[str], None] = lambda _: None) -> CalibrationResult:
    """Quantizes an FP32 graph exported by reid-export; writes the INT8 graph, a TensorRT
    calibration cache and a JSON report beside it (all atomically)."""
    from reid_trt.calibration.cache import cache_path, cache_text, calibration_hash
    from reid_trt.evaluation import neighbour_agreement
    from reid_trt.export.verify import cosine_rows, graph_inputs, ort_session

    start = time.perf_counter()
    output = check_writable(Path(output))
    contract = contract_of(source, "the source graph")
    if contract.precision != "fp32":
        raise ReidTrtError(f"calibration takes an fp32 graph, this one is {contract.precision}: "
                           "export with 'reid-export onnx --precision fp32'")
    if config.size < 1:
        raise ReidTrtError(f"--calib-size {config.size}: must be >= 1")
    methods = METHODS if config.method == "auto" else (config.method,)
    if config.method not in ("auto", *METHODS):
        raise ReidTrtError(f"--calib-method {config.method}: choose auto or {', '.join(METHODS)}")
    if config.unquantized not in ("fp16", "fp32"):
        raise ReidTrtError(f"--unquantized {config.unquantized}: choose fp16 or fp32")

    progress("reading the dataset")
    dataset = load_dataset(calib_data, config.dataset)
    calib_samples = stratified_sample(dataset.train, config.size, config.seed)
    calib_crops, calib_samples, skipped = read_samples(calib_samples)
    if not calib_crops:
        raise ReidTrtError(f"--calib-data {calib_data}: none of the {config.size} sampled images "
                           "could be read")
    n_query, eval_samples = _eval_split(dataset, calib_samples, config.eval_size, config.seed)
    eval_crops, eval_samples, eval_skipped = read_samples(eval_samples)
    calib_ids = {_sample_id(s) for s in calib_samples}
    n_query = len(n_query) if n_query is not None else None

    x_calib = graph_inputs(calib_crops, contract)
    batches = [x_calib[i:i + BATCH] for i in range(0, len(x_calib), BATCH)]
    x_eval = graph_inputs(eval_crops, contract)
    name = source.graph.input[0].name
    reference = ort_session(source).run(None, {name: x_eval})[0]
    fp32_scores = _map(reference, eval_samples, n_query) if n_query else None

    # Every candidate is scored as it will be written: with the unquantized parts in FP16 (where
    # TensorRT runs them faster than FP32) unless asked otherwise. FP16 moves some INT8 rounding
    # decisions, which alone costs about as much agreement as a sensitive block, so the search
    # must see it.
    def written(model: onnx.ModelProto, sort: bool = True) -> onnx.ModelProto:
        return qdq_to_fp16(model, sort) if config.unquantized == "fp16" else model

    def score(model: onnx.ModelProto) -> Agreement:
        got = ort_session(written(model, sort=False)).run(None, {name: x_eval})[0]
        cos = cosine_rows(got, reference)
        drop = None
        if fp32_scores is not None:
            drop = 100.0 * (fp32_scores.mAP - _map(got, eval_samples, n_query).mAP)
        return Agreement(float(cos.mean()), float(cos.min()),
                         neighbour_agreement(reference, got, k=5), drop)

    tried: dict[str, tuple[SearchResult, object]] = {}
    for method in methods:
        progress(f"calibrating ({method})")
        ranges = tensor_ranges(source, batches, method)
        tried[method] = (search_fallback(source, ranges, score, config.budget,
                                         lambda m, k=method: progress(f"{k}: {m}")), ranges)

    fine = layer_groups(source, fine=True) | layer_groups(source)
    total_layers = sum(len(v) for v in layer_groups(source).values())

    def float_layers(result: SearchResult) -> int:
        return len({n for part in result.excluded for n in fine[part]})

    def rank(method: str):
        result = tried[method][0]
        return (not config.budget.holds(result.agreement), float_layers(result),
                -result.agreement.mean_cosine)

    method = min(tried, key=rank)
    chosen, ranges = tried[method]
    quantized, unquantized = written(chosen.model), config.unquantized
    int8_contract = replace(contract, precision="int8")
    del quantized.metadata_props[:]
    onnx.helper.set_model_props(quantized, {**int8_contract.to_metadata(),
                                            "reid_trt.calibration_method": json.dumps(method),
                                            "reid_trt.unquantized_precision": json.dumps(unquantized)})

    digest = calibration_hash(source_sha256, [_sample_id(s) for s in calib_samples],
                              asdict(contract))
    cache = cache_path(output, digest)
    report_path = output.with_name(output.stem + ".calib.json")
    known_ids = {s.pid for s in calib_samples if s.pid >= 0}
    report = {
        "method": method,
        "budget": asdict(config.budget),
        "budget_held": config.budget.holds(chosen.agreement),
        "int8_vs_fp32": chosen.agreement.to_dict(),
        "unquantized_precision": unquantized,
        "fp32_retrieval": fp32_scores.to_dict() if fp32_scores else None,
        "unquantized_parts": chosen.excluded,
        "unquantized_layers": f"{float_layers(chosen)} of {total_layers} Conv/Gemm layers "
                              f"(kept in {unquantized})",
        "block_sensitivity": chosen.sensitivity,
        "search_steps": chosen.steps,
        "methods_tried": {m: {"int8_vs_fp32": r.agreement.to_dict(),
                              "unquantized_layers": float_layers(r),
                              "budget_held": config.budget.holds(r.agreement)}
                          for m, (r, _) in tried.items()},
        "calibration_set": {"dataset": dataset.kind, "root": str(dataset.root),
                            "images": len(calib_crops), "unreadable_skipped": skipped,
                            "identities": len(known_ids) or None,
                            "cameras": len({s.camid for s in calib_samples}), "seed": config.seed},
        "evaluation_set": {"images": len(eval_crops), "queries": n_query,
                           "unreadable_skipped": eval_skipped,
                           "held_out": sum(_sample_id(s) not in calib_ids for s in eval_samples)},
        "source_sha256": source_sha256,
        "calibration_hash": digest,
        "seconds": round(time.perf_counter() - start, 1),
    }
    with atomic_path(output) as tmp_model, atomic_path(cache) as tmp_cache, \
            atomic_path(report_path) as tmp_report:
        onnx.save(quantized, tmp_model)
        tmp_cache.write_text(cache_text(ranges, method))
        report["int8_sha256"] = sha256_file(tmp_model)
        tmp_report.write_text(json.dumps(report, indent=2) + "\n")
    return CalibrationResult(output, cache, report_path, report)


def source_graph(onnx_path: Path | None, weights: Path | None, trust_checkpoint: bool = False
                 ) -> tuple[onnx.ModelProto, str, Contract]:
    """The FP32 graph to calibrate: a file, or a fresh verified export of a checkpoint."""
    if (onnx_path is None) == (weights is None):
        raise ReidTrtError("pass exactly one of --onnx (an fp32 graph) or --weights (a checkpoint)")
    if onnx_path is not None:
        from reid_trt.export.api import load_onnx

        model = load_onnx(Path(onnx_path))
        return model, sha256_file(Path(onnx_path)), contract_of(model, str(onnx_path))
    import tempfile

    from reid_trt.export.api import ExportConfig, export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        exported = export_onnx(weights, Path(tmp) / "fp32.onnx",
                               ExportConfig(trust_checkpoint=trust_checkpoint))
        model = onnx.load(str(exported.path))
        return model, sha256_file(exported.path), exported.contract
