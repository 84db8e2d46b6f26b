"""The one timing loop: subjects timed in interleaved rounds, each turn after a quiet gap and an
untimed warm call, the order rotated every round.

Every figure the product decides from or reports is taken with it: reid-bench's latency, the CPU
backend probe (runtime/cpu_choice.py), the stage alternation (bench/alternation.py) and the
scripts in benchmarks/. One machine slowing down mid-run then hits every subject alike, no
subject always follows the same neighbour, and none is timed while the last one's threads still
hold the cores.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

# Before each turn: long enough for the last subject's worker threads to stop spinning and sleep
# (ONNX Runtime told to spin always, PyTorch's OpenMP pool: within about 10 ms) and for a
# neighbour's burst to end. Without it, ONNX Runtime at batch 32 was timed 1.4x slower in a
# four-subject run than alone in a fresh process (issue #28).
QUIET_S = 0.05

K = TypeVar("K", bound=Hashable)


class Timed(Protocol):
    """A subject that times itself (in this process or another): `warm` makes untimed calls,
    `timed` returns the seconds of each of `runs` timed ones."""

    def warm(self, calls: int) -> None: ...

    def timed(self, runs: int) -> list[float]: ...


@dataclass(frozen=True)
class Turn:
    """What one subject runs in its turn, in this process: `call`, timed; `before`, untimed,
    right before each timed call (a neighbour stage taking turns with it, as a tracker's detector
    does)."""

    call: Callable[[], object]
    before: Callable[[], object] | None = None

    def warm(self, calls: int) -> None:
        time_calls(self.call, calls, self.before)

    def timed(self, runs: int) -> list[float]:
        return time_calls(self.call, runs, self.before)


def time_calls(call: Callable[[], object], runs: int,
               before: Callable[[], object] | None = None) -> list[float]:
    """Seconds taken by each of `runs` calls of `call` (which itself waits for its device);
    `before` runs untimed ahead of each."""
    samples = []
    for _ in range(runs):
        if before is not None:
            before()
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def split_runs(runs: int, rounds: int) -> list[int]:
    """`runs` timed calls spread over at most `rounds` rounds, as evenly as they go."""
    rounds = max(1, min(rounds, runs))
    return [runs // rounds + (r < runs % rounds) for r in range(rounds)]


def rotated(keys: Sequence[K], r: int) -> list[K]:
    """Round r's order: the keys rotated by r, so that no subject always follows another."""
    keys = list(keys)
    if not keys:
        return keys
    r %= len(keys)
    return keys[r:] + keys[:r]


def interleaved(turns: Mapping[K, Timed | Callable[[], object]], runs_per_round: Sequence[int],
                warmup: int = 1, quiet_s: float = QUIET_S) -> dict[K, list[float]]:
    """Seconds per timed call of each subject (a callable is a Turn). First `warmup` untimed
    calls of each (first-call allocations, lazy kernel choice); then per round, in the rotated
    order, each subject's turn: the quiet gap, one untimed call (caches and pools warm again
    after the other subject), and `runs_per_round[r]` timed calls."""
    turns = {k: t if hasattr(t, "timed") else Turn(t) for k, t in turns.items()}
    for turn in turns.values():
        turn.warm(warmup)
    samples: dict[K, list[float]] = {k: [] for k in turns}
    for r, runs in enumerate(runs_per_round):
        for key in rotated(list(turns), r):
            turn = turns[key]
            time.sleep(quiet_s)
            turn.warm(1)
            samples[key] += turn.timed(runs)
    return samples


def paired_ratio(subject: Sequence[float], baseline: Sequence[float],
                 runs_per_round: Sequence[int]) -> float:
    """The median over rounds of (subject's median / baseline's median) in that round: two
    subjects timed in the same round ran minutes apart at most, so a machine that is slower in
    one round than in another (a neighbour VM, a clock change) cancels out of each round's
    ratio, where it would not out of the ratio of the whole run's medians."""
    ratios, start = [], 0
    for runs in runs_per_round:
        stop = start + runs
        ratios.append(statistics.median(subject[start:stop])
                      / statistics.median(baseline[start:stop]))
        start = stop
    return statistics.median(ratios)
