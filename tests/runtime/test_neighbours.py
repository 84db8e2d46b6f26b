"""Re-ID beside a detector on the same cores, as a tracker runs them (issue #28): the settings
that decide it reach the runtime, and the alternation and the CPU probe time what they say. How
fast each stage runs beside the other is a benchmark's to measure, on a quiet machine
(benchmarks/stage_alternation.py, results/stage_alternation_cpu.md), not a unit test's beside
the other test process."""

from __future__ import annotations

import dataclasses

import pytest

from reid_trt import Embedder
from reid_trt.bench.alternation import Alternation, alternate
from reid_trt.core.errors import ReidTrtError


class Clock:
    """A fake perf_counter: each stage moves it by its cost, more when it runs right after the
    other (what a neighbour's spinning threads or evicted caches do), and sleeping moves it too."""

    def __init__(self):
        self.now, self.last = 0.0, None

    def perf_counter(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds
        self.last = None  # a quiet gap: nothing is left running

    def stage(self, name, alone_s, after_other_s):
        def call():
            self.now += after_other_s if self.last not in (None, name) else alone_s
            self.last = name
        return call


def test_alternation_times_each_stage_alone_and_right_after_the_other(monkeypatch):
    """bench/alternation.alternate: re-ID and the detector each timed alone and each right after
    the other, in core/timing's interleaved rounds, medians in ms. Whether the default threading
    holds issue #28's bound is a timing, so a benchmark's (benchmarks/stage_alternation.py, in
    fresh processes on a quiet machine; README, Tests); here the bookkeeping, on a fake clock."""
    from reid_trt.core import timing

    clock = Clock()
    monkeypatch.setattr(timing.time, "perf_counter", clock.perf_counter)
    monkeypatch.setattr(timing.time, "sleep", clock.sleep)
    reid = clock.stage("reid", 0.004, 0.005)  # 4 ms alone, 5 ms right after the detector
    detector = clock.stage("detector", 0.050, 0.060)
    got = alternate(reid, detector, calls=3, rounds=4)
    assert dataclasses.astuple(got) == pytest.approx(dataclasses.astuple(
        Alternation(4.0, 5.0, 50.0, 60.0)))
    assert got.stage_slowdown == pytest.approx(1.25) and got.neighbour_slowdown == pytest.approx(1.2)
    assert got.loop_ms == pytest.approx(65.0)


def config_entry(session, key: str) -> str | None:
    try:
        return session.get_session_options().get_session_config_entry(key)
    except Exception:  # ONNX Runtime raises for a key never set
        return None


def test_spin_reaches_onnx_runtime(graphs):
    graph = graphs["osnet_x0_25", "fp32"]
    expected = {"call": ("1", None), "never": (None, "0"), "always": (None, None)}
    for spin, entries in expected.items():
        with Embedder(graph, device="cpu", backend="onnxruntime", spin=spin) as embedder:
            session = embedder.backend.session
            assert (config_entry(session, "session.force_spinning_stop"),
                    config_entry(session, "session.intra_op.allow_spinning")) == entries, spin
    with pytest.raises(ReidTrtError, match=r"spin.*sometimes.*call, always, never"):
        Embedder(graph, device="cpu", spin="sometimes")


def test_the_cpu_probe_rotates_its_order_and_waits_out_the_other_runtime(monkeypatch):
    """runtime/cpu_choice.time_backends: each round in a rotated order, each turn after a quiet
    gap, so neither backend is always timed right after the other's threads."""
    from reid_trt.core import timing
    from reid_trt.core.batching import BatchLimits
    from reid_trt.core.contract import Contract
    from reid_trt.runtime import cpu_choice

    events = []

    class Recorder:
        limits, contract = BatchLimits(), Contract(variant="osnet_x0_25")

        def __init__(self, name):
            self.name = name

        def run(self, batch):
            events.append(self.name)

    monkeypatch.setattr(timing.time, "sleep", lambda s: events.append(f"quiet {s}"))
    ms = cpu_choice.time_backends({"a": Recorder("a"), "b": Recorder("b")}, batches=(32,),
                                  rounds=3)
    assert set(ms) == {"a", "b"} and all(v["32"] > 0 for v in ms.values())
    turns = [e for e in events if e.startswith("quiet")]
    assert len(turns) == 6 and set(turns) == {f"quiet {timing.QUIET_S}"}
    firsts = [events[i + 1] for i, e in enumerate(events) if e.startswith("quiet")]
    assert firsts == ["a", "b", "b", "a", "a", "b"]  # rounds rotate: ab, ba, ab
    # each turn: the quiet gap, one untimed call, two timed ones (at least two per round)
    assert events[2:] == [x for first in firsts for x in (f"quiet {timing.QUIET_S}",
                                                           first, first, first)]
