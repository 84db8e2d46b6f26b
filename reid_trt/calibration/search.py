"""Which layers INT8 leaves float: the fewest multiply-accumulates, found with few scorings and
decided on statistics that tiny numerical differences cannot flip.

1. The all-INT8 graph is scored; if it holds the budget, nothing stays float.
2. Each OSNet block's damage is measured once: the cosine lost when only that block is INT8.
3. Each layer's share of its block's damage follows its own INT8 noise (candidates.py measures
   it with the layer's FP32 input), so a layer's estimated damage per MAC ranks it.
4. The layers are left float in that order, and the shortest prefix of the ranking that holds
   the budget is found by bisection: first on a subset of the judged crops, then, around that
   guess, on every judged crop (typically 3-4 full scorings).
5. The largest layers of that prefix are given back to INT8 one at a time where the budget
   still holds with a margin.

A full scoring of a candidate that cannot hold stops at the first rows that prove it (Scorer in
api.py): the decisions are those of full scorings, for about a quarter less time (MOT17-04, the
MSMT17 osnet_x0_25: search 37 s -> 27 s, the same graph to the byte).

Why not the greedy block-by-block search this replaced: it took some 40 scorings, each a yes/no
on a single worst crop, and each yes/no steered the next choice, so a difference of 1e-4 in one
crop's cosine between two machines changed the whole placement (20% against 73% of the MACs in
INT8 for the same inputs). Here a ranking comes from means over hundreds of crops, ties go to the
layer with fewer MACs then to graph order, and the budget is judged on the mean of the worst 1%
of crops rather than on the single worst one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import onnx

from reid_trt.calibration.candidates import Int8Graph
from reid_trt.calibration.placement import weighted_layers
from reid_trt.calibration.quantize import Agreement, Budget, Figures, layer_groups
from reid_trt.core.records import fields_jsonable

GIVE_BACK = 1  # the largest float layers tried again in INT8 after the bisection
# A layer given back must hold the budget by this much more (worst-1% cosine, worst-domain
# mean): give-backs are small gains decided near the threshold, where a JPEG re-encode of the
# calibration frames flipped which of two equal 1x1 convs went back to INT8.
GIVE_BACK_MARGIN = (0.002, 0.0005)
RANK_DIGITS = 2  # significant digits of a layer's damage per MAC that count for its rank


@dataclass(frozen=True)
class SearchStep:
    """One candidate the search scored: how many layers it left float, and its figures."""

    excluded: int
    figures: Figures
    # "all" or "subset" for the all-INT8 start; a count where the scoring stopped early
    rows: int | str | None = None
    given_back: str | None = None  # the layer tried in INT8 again, for a give-back step

    @classmethod
    def of(cls, excluded: int, agreement: Agreement, given_back: str | None = None
           ) -> SearchStep:
        return cls(excluded, agreement.figures, agreement.rows_scored, given_back)

    def to_dict(self) -> dict:
        """As the report's search_steps list holds it: the figures inline."""
        head = {"excluded": self.excluded}
        if self.given_back is not None:
            head["given_back"] = self.given_back
        rows = {} if self.rows is None else {"rows": self.rows}
        return {**head, **fields_jsonable(self.figures), **rows}


@dataclass
class SearchResult:
    model: onnx.ModelProto
    agreement: Agreement
    excluded: list[str]  # layers (node names) left float
    sensitivity: dict[str, float] = field(default_factory=dict)  # block -> 1 - mean cosine
    steps: list[SearchStep] = field(default_factory=list)
    scorings: int = 0


def _rounded(value: float) -> float:
    return float(f"{value:.{RANK_DIGITS}g}") if value > 0 else 0.0


def ranking(graph: Int8Graph, damage: dict[str, float], groups: dict[str, list[str]]
            ) -> list[str]:
    """INT8 layers, the one to leave float first: estimated damage per MAC, highest first."""
    macs = {layer.node: layer.macs for layer in weighted_layers(graph.source)}
    estimate = {}
    for block, nodes in groups.items():
        nodes = [n for n in nodes if n in graph.stats]
        noise = sum(graph.stats[n].noise for n in nodes)
        for n in nodes:
            share = graph.stats[n].noise / noise if noise > 0 else 1.0 / len(nodes)
            estimate[n] = _rounded(damage.get(block, 0.0) * share / max(macs[n], 1))
    order = {n: k for k, n in enumerate(graph.int8)}
    return sorted(estimate, key=lambda n: (-estimate[n], macs[n], order[n]))


def search(graph: Int8Graph, score: Callable[[onnx.ModelProto, Budget | None], Agreement],
           quick: Callable[[onnx.ModelProto], Agreement], budget: Budget,
           progress: Callable[[str], None] = lambda _: None,
           full: Agreement | None = None) -> SearchResult:
    """The fewest MACs left float for `budget` to hold under `score` (every judged crop; it
    may stop early on a candidate that cannot hold the budget it is given). `quick` scores on a
    subset, for block damages only. `full`: the all-INT8 score, if known."""
    scorings = 0

    def judged(excluded: list[str], against: Budget = budget) -> Agreement:
        nonlocal scorings
        scorings += 1
        return score(graph(set(excluded)), against)

    # All INT8 first, on the quick subset: it is judged on every crop only if that holds.
    agreement = full or quick(graph())
    if full is None and budget.holds(agreement):
        agreement = judged([])
    steps = [SearchStep(0, agreement.figures, "all" if full or budget.holds(agreement) else "subset")]
    if budget.holds(agreement):
        return SearchResult(graph(), agreement, [], steps=steps, scorings=scorings)
    groups = {block: [n for n in nodes if n in set(graph.int8)]
              for block, nodes in layer_groups(graph.source).items()}
    groups = {b: n for b, n in groups.items() if n}
    every = set(graph.int8)
    damage = {}
    for block, nodes in groups.items():
        progress(f"damage of {block}")
        damage[block] = max(1.0 - quick(graph(every - set(nodes))).mean_cosine, 0.0)
    order = ranking(graph, damage, groups)

    # Bisection for the shortest prefix of `order` that holds: lo fails, hi holds. The quick
    # subset finds the neighbourhood first (a twelfth of the cost); every decision that stands
    # is then taken on all judged crops, from a bracket found by widening around that guess.
    guess = _bisect(len(order), lambda k: budget.holds(quick(graph(set(order[:k])))))
    results = {0: agreement}

    def holds(k: int) -> bool:
        if k not in results:
            progress(f"{k} of {len(order)} layers float")
            results[k] = judged(order[:k])
            steps.append(SearchStep.of(k, results[k]))
        return budget.holds(results[k])

    lo, hi, step = guess, guess, 1
    if holds(guess):
        while lo > 0:
            lo = max(lo - step, 0)
            if not holds(lo):
                break
            hi, step = lo, step * 2
    else:
        while hi < len(order):
            hi = min(hi + step, len(order))
            if holds(hi):
                break
            lo, step = hi, step * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if holds(mid):
            hi = mid
        else:
            lo = mid
    holds(hi)
    excluded, agreement = order[:hi], results[hi]
    if not budget.holds(agreement):  # even all float misses it (cannot happen for FP32 layers)
        agreement = score(graph(set(excluded)), None)  # every row, for the report
        return SearchResult(graph(set(excluded)), agreement, excluded, damage, steps, scorings)

    macs = {layer.node: layer.macs for layer in weighted_layers(graph.source)}
    strict = budget.tightened(*GIVE_BACK_MARGIN)
    for layer in sorted(excluded, key=lambda n: -macs[n])[:GIVE_BACK]:
        trial = [n for n in excluded if n != layer]
        progress(f"INT8 again for {layer}")
        result = judged(trial, strict)
        steps.append(SearchStep.of(len(trial), result, layer))
        if strict.holds(result):
            excluded, agreement = trial, result
    return SearchResult(graph(set(excluded)), agreement, excluded, damage, steps, scorings)


def _bisect(n: int, holds: Callable[[int], bool]) -> int:
    """The smallest k in 1..n with holds(k), assuming holds(n) (and, roughly, monotone)."""
    lo, hi = 0, n
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if holds(mid) else (mid, hi)
    return hi


LOW_TAIL_FRACTION, LOW_TAIL_LEAST = 0.01, 3


def low_tail_count(rows: int) -> int:
    """How many of `rows` cosines the low tail averages."""
    return min(rows, max(LOW_TAIL_LEAST, int(np.ceil(LOW_TAIL_FRACTION * rows))))


def low_tail(cosines: np.ndarray, rows: int | None = None) -> float:
    """Mean of the worst 1% of the cosines (at least 3 of them): the tail the budget judges,
    steadier than the single worst crop. `rows`: the count the tail is taken of, when these
    cosines are only part of them (the mean of the worst so many here is then an upper bound
    of the whole set's)."""
    k = low_tail_count(len(cosines) if rows is None else rows)
    return float(np.sort(cosines)[:k].mean())
