"""A stage alone against the same stage taking turns with a neighbour, as in a tracker's loop.

A tracker runs the detector, then re-ID, then the detector again, on the same cores. Each stage
can slow the other: worker threads that busy-wait after a call hold the cores the next stage
needs, and the neighbour's activations push the model's weights out of the caches. This times
both stages alone and alternating, in interleaved rounds so that a machine slowing down mid-run
hits both alike, and reports the medians and their ratios.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

QUIET_S = 0.05  # before each block: threads left spinning by the last block go to sleep


@dataclass(frozen=True)
class Alternation:
    """Median milliseconds per call of the stage and its neighbour, alone and taking turns."""

    stage_alone_ms: float
    stage_alternating_ms: float
    neighbour_alone_ms: float
    neighbour_alternating_ms: float

    @property
    def stage_slowdown(self) -> float:
        return self.stage_alternating_ms / self.stage_alone_ms

    @property
    def neighbour_slowdown(self) -> float:
        return self.neighbour_alternating_ms / self.neighbour_alone_ms

    @property
    def loop_ms(self) -> float:
        """One turn of the loop: neighbour then stage."""
        return self.stage_alternating_ms + self.neighbour_alternating_ms


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def alternate(stage: Callable[[], object], neighbour: Callable[[], object], calls: int = 6,
              rounds: int = 5, warmup: int = 2) -> Alternation:
    """Per round: the stage `calls` times back to back, the neighbour `calls` times back to back,
    then `calls` turns of neighbour-then-stage; each block after a quiet gap."""
    for _ in range(warmup):
        neighbour()
        stage()
    alone, alternating, n_alone, n_alternating = [], [], [], []
    for _ in range(rounds):
        time.sleep(QUIET_S)
        alone += [_timed(stage) for _ in range(calls)]
        time.sleep(QUIET_S)
        n_alone += [_timed(neighbour) for _ in range(calls)]
        time.sleep(QUIET_S)
        for _ in range(calls):
            n_alternating.append(_timed(neighbour))
            alternating.append(_timed(stage))

    def ms(samples: list[float]) -> float:
        return 1e3 * statistics.median(samples)

    return Alternation(ms(alone), ms(alternating), ms(n_alone), ms(n_alternating))
