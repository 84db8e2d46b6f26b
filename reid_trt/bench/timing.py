"""Latency samples and their statistics."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


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
