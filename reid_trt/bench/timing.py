"""Timing: latency samples and their statistics, and the subjects timed in interleaved rounds."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from reid_trt.bench.alternation import QUIET_S
from reid_trt.bench.results import Latency, LatencyRow
from reid_trt.bench.subjects import BenchConfig, Subject
from reid_trt.runtime.backends.base import Backend, Profiled

# QUIET_S before each subject's turn (the one quiet gap of bench/alternation.py): the previous
# subject's worker threads (PyTorch's OpenMP pool, ONNX Runtime told to spin always) stop
# spinning within it; without it, ONNX Runtime at batch 32 was timed 1.4x slower in a
# four-subject run than alone in a fresh process (issue #28).


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
    """Fills each subject's `latency`: end to end and compute only, per batch size."""
    rounds = min(config.rounds, config.runs)
    per_round = [config.runs // rounds + (r < config.runs % rounds) for r in range(rounds)]
    for subject in subjects:
        subject.latency = []
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
            subject.latency.append(LatencyRow(batch, note))
        for key, fn in calls.items():
            progress(f"batch {batch}: warming up {key[0]}", 0)
            time_calls(fn, config.warmup)
            samples[key] = []
        keys = list(calls)
        for r, runs in enumerate(per_round):
            # Each round in a rotated order, so no subject always follows the same neighbour.
            for key in keys[r % len(keys):] + keys[:r % len(keys)]:
                progress(f"batch {batch}: {key[1].replace('_', ' ')}, {key[0]}", 0)
                fn = calls[key]
                time.sleep(QUIET_S)  # the last subject's threads go to sleep
                fn()  # untimed: caches and pools warm again after the other subject
                samples[key] += time_calls(fn, runs)
        for subject in subjects:
            row = subject.latency[-1]
            for mode in ("end_to_end", "compute"):
                got = samples.get((subject.label, mode))
                setattr(row, mode, summarize(got, batch) if got else None)
        progress(f"batch {batch} done", 1)


def add_ratios(subjects: list[Subject], reference: Subject) -> None:
    """Throughput of each subject over the reference's, per batch size and mode."""
    ref_rows = {row.batch: row for row in reference.latency}
    for subject in subjects:
        for row in subject.latency:
            for mode in ("end_to_end", "compute"):
                own, ref = row.timing(mode), ref_rows[row.batch].timing(mode)
                setattr(row, f"speedup_{mode}",
                        own.throughput / ref.throughput if own and ref else None)
