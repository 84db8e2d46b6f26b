"""A stage alone against the same stage taking turns with a neighbour, as in a tracker's loop.

A tracker runs the detector, then re-ID, then the detector again, on the same cores. Each stage
can slow the other: worker threads that busy-wait after a call hold the cores the next stage
needs, and the neighbour's activations push the model's weights out of the caches. This times
both stages alone and alternating, in interleaved rounds so that a machine slowing down mid-run
hits both alike, and reports the medians and their ratios.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

from reid_trt.core.timing import Turn, interleaved


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


def alternate(stage: Callable[[], object], neighbour: Callable[[], object], calls: int = 6,
              rounds: int = 5, warmup: int = 2) -> Alternation:
    """Four subjects in core/timing's interleaved rounds: the stage alone, the neighbour alone,
    the stage right after the neighbour and the neighbour right after the stage (the untimed one
    run just before each timed call), `calls` timed calls each per round."""
    samples = interleaved({
        "stage alone": Turn(stage), "neighbour alone": Turn(neighbour),
        "stage alternating": Turn(stage, before=neighbour),
        "neighbour alternating": Turn(neighbour, before=stage),
    }, [calls] * rounds, warmup=warmup)
    ms = {k: 1e3 * statistics.median(v) for k, v in samples.items()}
    return Alternation(ms["stage alone"], ms["stage alternating"], ms["neighbour alone"],
                       ms["neighbour alternating"])
