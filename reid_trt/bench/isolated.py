"""Each subject timed in a process of its own, as trtexec and perf_analyzer time one subject per
process, while the rounds stay interleaved across them.

In one process the subjects' runtimes meet: PyTorch's OpenMP pool, ONNX Runtime's and OpenVINO's
threads and their allocators. Measured on a 2-core AMD EPYC (Zen 3) with the real osnet_x0_25 on
PyTorch, ONNX Runtime and OpenVINO (benchmarks/bench_isolation.py): in one process OpenVINO's
batch-1 latency was 2.1x and its batch-32 compute 1.8x what the same subject took alone in a fresh
process, ONNX Runtime's batch-32 compute 1.3x. Here each subject's Embedder is opened again in a
worker process, which times its own calls (core/timing.Timed); the parent runs core/timing's
loop over them, so only one worker computes at a time and the others wait on their pipe, asleep.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass

import numpy as np

from reid_trt.core.errors import ReidTrtError, opt


@dataclass(frozen=True)
class SubjectSpec:
    """How to open a subject's Embedder again in another process: the runtime it runs on
    (never left to choose again), and its settings."""

    path: str
    backend: str
    device: str | None
    spin: str | None
    variant: str = "auto"
    trust_checkpoint: bool = False


def _serve(conn, spec: SubjectSpec) -> None:
    """The worker: opens the subject, then answers the parent's requests until told to stop."""
    from reid_trt.bench.timing import mode_call
    from reid_trt.core.timing import Turn
    from reid_trt.runtime.backends.base import Profiled
    from reid_trt.runtime.embedder import Embedder

    try:
        embedder = Embedder(spec.path, device=spec.device, backend=spec.backend, spin=spec.spin,
                            variant=spec.variant, trust_checkpoint=spec.trust_checkpoint)
    except Exception as e:  # reported to the parent as its one-line error
        conn.send(("error", f"{type(e).__name__}: {e}"))
        return
    conn.send(("ready", None))
    turns: dict = {}
    while True:
        op, *args = conn.recv()
        try:
            if op == "stop":
                embedder.close()
                conn.send(("done", None))
                return
            if op == "stage":  # key, mode, crops
                key, mode, crops = args
                turns[key] = Turn(mode_call(embedder, mode, crops))
                conn.send(("done", None))
            elif op == "warm":
                turns[args[0]].warm(args[1])
                conn.send(("done", None))
            elif op == "timed":
                conn.send(("done", turns[args[0]].timed(args[1])))
            elif op == "memory":
                backend = embedder.backend
                conn.send(("done", backend.device_memory_bytes()
                           if isinstance(backend, Profiled) else None))
        except Exception as e:
            conn.send(("error", f"{type(e).__name__}: {e}"))


class SubjectProcess:
    """A subject's Embedder in a worker process of its own (spawned: no state of this process
    carried over)."""

    def __init__(self, spec: SubjectSpec, label: str):
        self.label = label
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, spec), daemon=True,
                                       name=f"reid-bench {label}")
        self.process.start()
        child.close()
        self._answer()

    def _answer(self):
        try:
            status, value = self.conn.recv()
        except EOFError:
            raise ReidTrtError(f"reid-bench: the process timing '{self.label}' ended "
                               f"(exit code {self.process.exitcode}); to time it in this process "
                               f"instead, turn {opt('isolate')} off") from None
        if status == "error":
            raise ReidTrtError(f"reid-bench: timing '{self.label}' in its own process failed: "
                               f"{value}")
        return value

    def ask(self, *request):
        self.conn.send(request)
        return self._answer()

    def turn(self, key, mode: str, crops: list[np.ndarray]) -> RemoteTurn:
        self.ask("stage", key, mode, crops)
        return RemoteTurn(self, key)

    def device_memory_bytes(self) -> int | None:
        return self.ask("memory")

    def close(self) -> None:
        if self.process.is_alive():
            try:
                self.ask("stop")
            except (ReidTrtError, OSError):
                pass
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
        self.conn.close()


@dataclass(frozen=True)
class RemoteTurn:
    """core/timing.Timed for one (subject, mode) staged in a SubjectProcess."""

    process: SubjectProcess
    key: object

    def warm(self, calls: int) -> None:
        if calls:
            self.process.ask("warm", self.key, calls)

    def timed(self, runs: int) -> list[float]:
        return self.process.ask("timed", self.key, runs)
