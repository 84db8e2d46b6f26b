"""Everything that differs between TensorRT 10.x, 11.x and TensorRT-RTX lives here.

All three build strongly typed networks from ONNX through the same Python API; they differ in the
module name, in what the builder can target (DLA, hardware compatibility, compute capabilities)
and in what they have dropped (weak typing in 11, timing caches and plugins in RTX).
"""

from __future__ import annotations

import importlib
import re
import sys
from dataclasses import dataclass
from types import ModuleType

from packaging.version import Version

from reid_trt.core.errors import MissingDependencyError, ReidTrtError, opt
from reid_trt.core.options import TrtFlavour, choice

FLAVOURS = {"tensorrt": "tensorrt", "rtx": "tensorrt_rtx"}
RTX_DEFAULT_TARGETS = "8.0, 8.6, 8.9, 12.0 (Ampere and later; TensorRT-RTX default)"
MIN_TENSORRT = Version("10.0")


def sm(cc: tuple[int, int]) -> str:
    """A compute capability as TensorRT-RTX targets are written: (8, 6) -> 'sm86'."""
    return f"sm{cc[0]}{cc[1]}"


def trt_label(flavour: str, version: str) -> str:
    """How a TensorRT flavour and version are named to users: 'TensorRT-RTX 1.2.0'."""
    return f"{'TensorRT-RTX' if flavour == TrtFlavour.RTX else 'TensorRT'} {version}"


@dataclass(frozen=True)
class Trt:
    """The TensorRT module in use and what it can do."""

    module: ModuleType
    flavour: str  # "tensorrt" or "rtx"

    @property
    def version(self) -> str:
        return self.module.__version__

    @property
    def is_rtx(self) -> bool:
        return self.flavour == "rtx"

    @property
    def label(self) -> str:
        return trt_label(self.flavour, self.version)

    @property
    def has_dla(self) -> bool:
        return not self.is_rtx  # RTX targets desktop GPUs only

    @property
    def has_timing_cache(self) -> bool:
        # RTX: a timing cache forces a GPU query at build time and does not affect the engine.
        return not self.is_rtx

    @property
    def has_instancenorm_plugin(self) -> bool:
        return not self.is_rtx  # RTX ships no plugin library

    @property
    def rtx_targets(self) -> list[tuple[int, int]]:
        """The compute capabilities TensorRT-RTX builds for (its ComputeCapability names)."""
        names = [n for n in dir(self.module.ComputeCapability) if re.fullmatch(r"SM\d+", n)]
        return sorted((int(n[2:-1]), int(n[-1])) for n in names)

    def runs_on(self, cc: tuple[int, int]) -> bool:
        """Whether this TensorRT runs engines on a GPU of compute capability `cc`. Full TensorRT
        builds on and for the GPU at hand. TensorRT-RTX runs on its targets and newer GPUs, and
        not between them: not on Hopper (sm90, seen on an H200) nor Jetson Orin (sm87)."""
        if not self.is_rtx:
            return True
        targets = self.rtx_targets
        return tuple(cc) in targets or tuple(cc) > targets[-1]

    def strongly_typed_flags(self) -> int:
        return 1 << int(self.module.NetworkDefinitionCreationFlag.STRONGLY_TYPED)


def _import(flavour: str) -> Trt | None:
    try:
        module = importlib.import_module(FLAVOURS[flavour])
    except ImportError:
        return None
    return Trt(module, flavour)


def loaded_trt() -> list[Trt]:
    """The TensorRT flavours this process has imported already (none is imported here)."""
    modules = ((flavour, sys.modules.get(name)) for flavour, name in FLAVOURS.items())
    return [Trt(module, flavour) for flavour, module in modules if module is not None]


def load_trt(flavour: TrtFlavour | str = TrtFlavour.AUTO) -> Trt:
    """The TensorRT flavour to build with: 'tensorrt', 'rtx', or 'auto' (full TensorRT first)."""
    flavour = choice(TrtFlavour, flavour, "trt")
    for candidate in (("tensorrt", "rtx") if flavour == TrtFlavour.AUTO else (flavour.value,)):
        trt = _import(candidate)
        if trt is None:
            continue
        if not trt.is_rtx and Version(trt.version) < MIN_TENSORRT:
            raise ReidTrtError(
                f"TensorRT {trt.version} is too old: strongly typed ONNX engines need TensorRT "
                f">= {MIN_TENSORRT} (JetPack 6.1+); upgrade, or pass {opt('trt')} rtx")
        return trt
    purpose = "building engines (no TensorRT found)"
    if flavour == TrtFlavour.TENSORRT:
        raise MissingDependencyError("tensorrt", None, purpose,
                                     " (full TensorRT 10+: JetPack 6.1+ or NVIDIA's index)")
    raise MissingDependencyError("tensorrt-rtx-cu13", "rtx", purpose,
                                 f"; on Jetson use JetPack's full TensorRT 10+ ({opt('trt')} tensorrt)")


def collecting_logger(trt: Trt):
    """A TensorRT logger that prints nothing: warnings are kept for the manifest, errors for our
    own messages (TensorRT's default logger writes CUDA errors to stderr on GPU-less machines)."""
    module = trt.module

    class CollectingLogger(module.ILogger):
        def __init__(self):
            module.ILogger.__init__(self)
            self.warnings: list[str] = []
            self.errors: list[str] = []
            self.layers: list[str] = []  # the builder's engine layer report (verbose)

        def log(self, severity, msg):
            if severity <= module.ILogger.Severity.ERROR:
                self.errors.append(msg)
            elif severity == module.ILogger.Severity.WARNING:
                self.warnings.append(msg)
            elif severity == module.ILogger.Severity.VERBOSE and msg.startswith("Layers:"):
                self.layers.append(msg)

    return CollectingLogger()
