"""Timing: latency samples and their statistics, and the subjects timed in interleaved rounds."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from reid_trt.bench.subjects import BenchConfig, Subject
from reid_trt.runtime.backends.base import Backend, Profiled


@dataclass(frozen=True)
class Latency:
    """Wall-clock latency of one call over `runs` calls, and the throughput it implies."""

    batch: int
    runs: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float

    @property
    def throughput(self) -> float:
        """Images per second: batch / mean latency (total images over total time)."""
        return self.batch / (self.mean_ms / 1000.0)

    def to_dict(self) -> dict:
        return {"batch": self.batch, "runs": self.runs, "p50_ms": self.p50_ms,
                "p90_ms": self.p90_ms, "p99_ms": self.p99_ms, "mean_ms": self.mean_ms,
                "throughput": self.throughput}


def time_calls(fn: Callable[[], object], runs: int) -> list[float]:
    """Seconds taken by each of `runs` calls of `fn` (fn itself waits for the device)."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


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
                  progress: Callable[[str, int], None]) -> None:
    """Fills each subject's result["latency"]: end to end and compute only, per batch size."""
    rounds = min(config.rounds, config.runs)
    per_round = [config.runs // rounds + (r < config.runs % rounds) for r in range(rounds)]
    for subject in subjects:
        subject.result["latency"] = []
    for batch in config.batches:
        batch_crops = [crops[i % len(crops)] for i in range(batch)]
        calls, samples = {}, {}
        for subject in subjects:
            embedder = subject.embedder
            calls[subject.label, "end_to_end"] = lambda e=embedder, c=batch_crops: e.embed(c)
            note = _batch_note(subject, batch)
            if note is None:
                calls[subject.label, "compute"] = compute_call(
                    embedder.backend, embedder.preprocess(batch_crops))
            subject.result["latency"].append({"batch": batch, "note": note})
        for key, fn in calls.items():
            progress(f"batch {batch}: warming up {key[0]}", 0)
            time_calls(fn, config.warmup)
            samples[key] = []
        for runs in per_round:
            for key, fn in calls.items():
                progress(f"batch {batch}: {key[1].replace('_', ' ')}, {key[0]}", 0)
                # One untimed call first: the previous subject's worker threads may still be
                # spinning (OpenMP, ONNX Runtime), which would land on this first call.
                fn()
                samples[key] += time_calls(fn, runs)
        for subject in subjects:
            row = subject.result["latency"][-1]
            for mode in ("end_to_end", "compute"):
                got = samples.get((subject.label, mode))
                row[mode] = summarize(got, batch).to_dict() if got else None
        progress(f"batch {batch} done", 1)


def add_ratios(subjects: list[Subject], reference: Subject) -> None:
    """Throughput of each subject over the reference's, per batch size and mode."""
    ref_rows = {row["batch"]: row for row in reference.result["latency"]}
    for subject in subjects:
        for row in subject.result["latency"]:
            for mode in ("end_to_end", "compute"):
                ref = ref_rows[row["batch"]].get(mode)
                row[f"speedup_{mode}"] = (row[mode]["throughput"] / ref["throughput"]
                                          if row[mode] and ref else None)
