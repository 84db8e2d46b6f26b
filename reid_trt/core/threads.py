"""CPU thread policy: one settings object for every ONNX Runtime session and OpenVINO compile
the package makes (core/onnxio.ort_session, core/openvino_ir.compile_for), with one default for
offline work and one for the runtime.

Offline work (export verification, calibration, conversion) shares the cores with whatever runs
beside it, so its threads sleep at every wait: two INT8 scorings side by side on 2 cores ran 313
images/s together against 247 spinning. The runtime (Embedder) spins only while a call runs: a
tracker's detector gets the cores between re-ID calls (core/options.Spin has the measurements).

Neither runtime counts the cores other processes are using. Where several reid-trt processes share
a machine (a test suite's workers, calibrations side by side), REID_TRT_THREADS gives each session
and compile that sets no thread count its share, as OMP_NUM_THREADS does for PyTorch: two test
workers on 2 cores with one thread each ran the suite in 800 s and 1,464 CPU-seconds against
947 s and 1,854 with a thread per core in each (2-core EPYC Zen 3, clean clones).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from reid_trt.core.options import BackendName, ConfigError, Spin, bounded, coerce_choices

MAX_THREADS = 1024
THREADS_ENV = "REID_TRT_THREADS"


def threads_from_environment() -> int | None:
    """REID_TRT_THREADS as a thread count; None where it is unset or empty."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if not value:
        return None
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_THREADS:
        raise ConfigError(THREADS_ENV, value, f"set it to a whole number of threads from 1 to "
                          f"{MAX_THREADS}, or unset it for the runtime's own choice")
    return int(value)


@dataclass(frozen=True)
class ThreadSettings:
    """How a CPU runtime's worker threads behave.

    spin: when idle threads busy-wait (ONNX Runtime only; OpenVINO's threads have no such
        setting).
    threads: worker threads per call; None: REID_TRT_THREADS where it is set, else the runtime's
        own choice (one per core this process may use).
    pinning: threads pinned to cores (OpenVINO only). Off: on a 2-core EPYC, batch 32 ran 7%
        faster unpinned (86 against 92 ms) and as fast beside a detector; pinned threads wait
        for their core while a neighbour holds it (benchmarks/stage_alternation.py).
    """

    spin: Spin = Spin.CALL
    threads: int | None = None
    pinning: bool = False

    def __post_init__(self):
        coerce_choices(self, spin=Spin)
        if self.threads is not None:
            bounded(self.threads, "threads", 1, MAX_THREADS)
        if not isinstance(self.pinning, bool):
            raise ConfigError("pinning", self.pinning, "pass True or False")

    @property
    def count(self) -> int | None:
        """The thread count to ask for: `threads`, else REID_TRT_THREADS; None: the runtime's."""
        return self.threads if self.threads is not None else threads_from_environment()

    def ort_options(self, options) -> None:
        """Applies the settings to an onnxruntime.SessionOptions."""
        if self.pinning:
            raise ConfigError("pinning", self.pinning, "ONNX Runtime's threads are not pinned by "
                              "reid-trt; pinning is an OpenVINO setting")
        if self.spin == Spin.NEVER:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        elif self.spin == Spin.CALL:  # spinning inside a run (cheap waits between kernels)
            options.add_session_config_entry("session.force_spinning_stop", "1")
        count = self.count  # REID_TRT_THREADS read once
        if count is not None:
            options.intra_op_num_threads = count

    def openvino_config(self, target: str) -> dict:
        """OpenVINO compile properties for these settings on device `target` (CPU, GPU, ...)."""
        if target != "CPU":
            return {}
        config: dict = {"ENABLE_CPU_PINNING": self.pinning}
        count = self.count
        if count is not None:
            config["INFERENCE_NUM_THREADS"] = count
        return config

    def key(self) -> str:
        """The settings as a record key (the CPU backend choice depends on them)."""
        return f"spin={self.spin}, threads={self.count or 'auto'}, pinning={self.pinning}"


RUNTIME = ThreadSettings(Spin.CALL)  # Embedder, reid-bench's subjects
OFFLINE = ThreadSettings(Spin.NEVER)  # export, verification, calibration, conversion


# What each backend's threads can be told; TensorRT computes on the GPU, and PyTorch's thread
# count is process-wide (torch.set_num_threads), not a property of one model.
SETTABLE = {BackendName.ONNXRUNTIME: ("spin", "threads"), BackendName.OPENVINO: ("threads",)}
WHY_NOT = {"spin": "only ONNX Runtime's threads busy-wait between calls",
           "threads": "its thread count is not set per model"}


def for_backend(backend: str, spin: str | Spin | None = None,
                threads: int | None = None) -> ThreadSettings:
    """RUNTIME's settings with `spin` and `threads` where given, for `backend`. A setting the
    backend has no such thing for is refused, naming it, rather than ignored."""
    backend = BackendName(backend)
    for name, value in (("spin", spin), ("threads", threads)):
        if value is not None and name not in SETTABLE.get(backend, ()):
            raise ConfigError(name, str(value), f"the {backend} backend has no such setting "
                              f"({WHY_NOT[name]}); leave {name} out")
    return ThreadSettings(RUNTIME.spin if spin is None else spin,
                          RUNTIME.threads if threads is None else threads, RUNTIME.pinning)
