"""Timing: latency samples and their statistics, and the subjects timed in interleaved rounds."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from reid_trt.bench.results import Latency, LatencyRow
from reid_trt.bench.subjects import BenchConfig, Subject
from reid_trt.core.preprocess import resize_bgr
from reid_trt.core.timing import interleaved, split_runs
from reid_trt.runtime.backends.base import Backend, Profiled


def summarize(samples_s: list[float], batch: int) -> Latency:
    ms = np.asarray(samples_s, dtype=np.float64) * 1000.0
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return Latency(batch, len(ms), float(p50), float(p90), float(p99), float(ms.mean()))


def compute_call(backend: Backend, batch: np.ndarray) -> Callable[[], object]:
    """One inference on an already preprocessed batch: the model alone where the backend can
    stage it (Profiled), else one `run` (a served model: the request, network included)."""
    if isinstance(backend, Profiled):
        return backend.compute_call(batch)
    return lambda: backend.run(batch)


def _batch_note(subject: Subject, batch: int) -> str | None:
    """Why compute-only timing is skipped at this batch size (the engine can't take it as is)."""
    limits = subject.embedder.backend.limits
    if limits.static is not None and limits.static != batch:
        return f"static batch {limits.static}"
    if limits.max is not None and batch > limits.max:
        return f"above the profile maximum {limits.max} (end to end runs it in chunks)"
    if batch < limits.min:
        return f"below the profile minimum {limits.min} (end to end pads it)"
    return None


def time_subjects(subjects: list[Subject], crops: list[np.ndarray], config: BenchConfig,
                  progress: Callable[[str, int], None]) -> dict[int, float]:
    """Fills each subject's `latency`: end to end and compute only, per batch size, all subjects
    and modes of a batch size in one interleaved loop (core/timing.py), with torchreid's resize
    of the same crops beside them; with `config.isolate`, each subject opened from a file times
    itself in a process of its own (bench/isolated.py). Returns batch -> p50 ms of that resize."""
    from reid_trt.bench.isolated import SubjectProcess

    per_round = split_runs(config.runs, config.rounds)
    for subject in subjects:
        subject.latency = []
    resize_ms = {}
    size = (subjects[0].embedder.contract.height, subjects[0].embedder.contract.width)
    workers: dict[str, SubjectProcess] = {}
    try:
        if config.isolate:
            for subject in subjects:
                if subject.spec is not None:
                    progress(f"starting the process that times {subject.label}", 0)
                    workers[subject.label] = SubjectProcess(subject.spec, subject.label)
        for batch in config.batches:
            batch_crops = [crops[i % len(crops)] for i in range(batch)]
            calls = {("resize", "-"): lambda c=batch_crops: resize_bgr(c, size)}
            for subject in subjects:
                modes = ["end_to_end"]
                note = _batch_note(subject, batch)
                if note is None:
                    modes.append("compute")
                for mode in modes:
                    calls[subject.label, mode] = _turn(subject, workers.get(subject.label), mode,
                                                       batch_crops)
                subject.latency.append(LatencyRow(batch, note))
            progress(f"batch {batch}: timing {len(calls)} subjects and modes", 0)
            samples = interleaved(calls, per_round, warmup=config.warmup)
            for subject in subjects:
                row = subject.latency[-1]
                for mode in ("end_to_end", "compute"):
                    got = samples.get((subject.label, mode))
                    setattr(row, mode, summarize(got, batch) if got else None)
            resize_ms[batch] = summarize(samples["resize", "-"], batch).p50_ms
            progress(f"batch {batch} done", 1)
        for subject in subjects:
            if subject.label in workers:
                subject.device_memory = workers[subject.label].device_memory_bytes()
    finally:
        for worker in workers.values():
            worker.close()
    return resize_ms


def mode_call(embedder, mode: str, crops: list[np.ndarray]) -> Callable[[], object]:
    """What one timed call of `mode` runs: the crops end to end, or the model alone on them
    already preprocessed (here, and in a subject's own process: bench/isolated.py)."""
    if mode == "end_to_end":
        return lambda: embedder.embed(crops)
    return compute_call(embedder.backend, embedder.preprocess(crops))


def _turn(subject: Subject, worker, mode: str, crops: list[np.ndarray]):
    """The subject's call in `mode`: staged in its worker process, or here."""
    if worker is not None:
        return worker.turn((subject.label, mode, len(crops)), mode, crops)
    return mode_call(subject.embedder, mode, crops)


def add_ratios(subjects: list[Subject], reference: Subject) -> None:
    """Throughput of each subject over the reference's, per batch size and mode."""
    ref_rows = {row.batch: row for row in reference.latency}
    for subject in subjects:
        for row in subject.latency:
            for mode in ("end_to_end", "compute"):
                own, ref = row.timing(mode), ref_rows[row.batch].timing(mode)
                setattr(row, f"speedup_{mode}",
                        own.throughput / ref.throughput if own and ref else None)
