"""Typed options: every choice an enum, every number bounded, every device string parsed, once.

Configs call these on construction, so a bad value fails before anything is read, computed or
written. Errors name the config field (`ConfigError.field`); the CLI maps fields to its flags.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from reid_trt.core.errors import ReidTrtError, render


class Choice(str, Enum):
    """A string-valued choice: compares equal to its value, prints as its value."""

    def __str__(self) -> str:
        return self.value


class Precision(Choice):
    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"


class InputFormat(Choice):
    FLOAT = "float"  # N,3,H,W float RGB, mean/std-normalised outside the graph
    UINT8_BGR = "uint8-bgr"  # N,H,W,3 uint8 BGR as OpenCV crops; normalisation in the graph
    # N,3,H,W float RGB pixel values, mean/std in the graph: 0-255 as DeepStream's nvtracker feeds
    # it (offsets 0, netScaleFactor 1), 0-1 as Ultralytics' trackers feed it (RGB / 255).
    RGB255 = "float-rgb255"
    RGB01 = "float-rgb01"


class Consumer(Choice):
    """Trackers a graph can be exported for (`reid-export onnx --for`)."""

    BOXMOT = "boxmot"
    ULTRALYTICS = "ultralytics"
    DEEPSTREAM = "deepstream"


class TrtFlavour(Choice):
    AUTO = "auto"  # full TensorRT if installed, else TensorRT-RTX
    TENSORRT = "tensorrt"
    RTX = "rtx"


class BackendName(Choice):
    ONNXRUNTIME = "onnxruntime"
    OPENVINO = "openvino"
    TENSORRT = "tensorrt"
    TORCH = "torch"


class Spin(Choice):
    """When a CPU runtime's idle worker threads busy-wait (ONNX Runtime's thread pool).

    A tracker alternates the detector and re-ID on the same cores: threads that spin after a call
    take the cores the detector needs next. Measured on a 2-core AMD EPYC (Zen 3), real
    osnet_x0_25 at batch 32 alternating with a detector-sized PyTorch net
    (benchmarks/stage_alternation.py): ALWAYS slowed the detector 1.3-1.9x; NEVER left it alone
    but slowed re-ID by itself 25%; CALL kept both within a few percent of running alone."""

    CALL = "call"  # spin while a call runs, sleep once it returns: the default
    ALWAYS = "always"  # ONNX Runtime's own default: keep spinning between calls (a dedicated box)
    NEVER = "never"  # sleep at every wait: offline work sharing the cores (calibration, checks)


class InstanceNormPath(Choice):
    NATIVE = "native"
    PLUGIN = "plugin"


class CalibrationMethod(Choice):
    AUTO = "auto"  # mse and minmax both tried; the one that keeps embeddings closest wins
    MSE = "mse"  # per tensor: the clipping threshold with the least INT8 error
    MINMAX = "minmax"
    ENTROPY = "entropy"
    PERCENTILE = "percentile"


class HardwareCompatibility(Choice):
    AMPERE_PLUS = "ampere_plus"
    SAME_COMPUTE_CAPABILITY = "same_compute_capability"


# The exported graph's dynamic batch axis covers 1..MAX_BATCH; larger batches give no more
# throughput on any GPU and a float input of 4096 crops is already 1.6 GB.
MAX_BATCH = 4096
# OSNet is trained at 256x128; activation memory grows with height x width, and beyond this a
# re-ID crop carries no more identity detail (a person box is rarely 1000 px tall).
MAX_INPUT_SIDE = 1024
# TensorRT's workspace pool, in MiB: more than any GPU has is a typo, not a wish.
MAX_WORKSPACE_MIB = 1 << 18


class ConfigError(ReidTrtError):
    """A config value out of its domain. `field` is the config's field name."""

    def __init__(self, field: str, value, reason: str):
        self.field, self.value, self.reason = field, value, reason
        super().__init__(f"{field}={value!r}: {reason}")

    def worded(self, name_of) -> str:
        value = "" if self.value is None else f" {self.value}"
        return f"{name_of(self.field)}{value}: {render(self.reason, name_of)}"


E = TypeVar("E", bound=Choice)


def described(default=dataclasses.MISSING, doc: str = "", *, factory=dataclasses.MISSING):
    """A config field with the help text the command line shows for it (cli/groups.py builds
    the option from the field: its type, default and this text; `opt()` names other options)."""
    return dataclasses.field(default=default, default_factory=factory, metadata={"help": doc})


def choice(kind: type[E], value, field: str) -> E:
    """`value` as a member of `kind`, or a ConfigError listing the choices."""
    if isinstance(value, kind):
        return value
    try:
        return kind(str(value).lower())
    except ValueError:
        raise ConfigError(field, value, "choose one of " + ", ".join(m.value for m in kind)) \
            from None


def coerce_choices(config, optional: tuple[str, ...] = (), **kinds: type[Choice]) -> None:
    """Replaces each named field of a (frozen) dataclass by its enum member, or raises a
    ConfigError naming the field; fields in `optional` may stay None."""
    for field, kind in kinds.items():
        value = getattr(config, field)
        if value is None and field in optional:
            continue
        object.__setattr__(config, field, choice(kind, value, field))


def bounded(value, field: str, low: int, high: int | None = None, why: str = "") -> int:
    """An int in [low, high] (bools and floats refused), or a ConfigError saying why."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(field, value, "must be a whole number")
    if value < low or (high is not None and value > high):
        span = f">= {low}" if high is None else f"between {low} and {high}"
        raise ConfigError(field, value, f"must be {span}" + (f" ({why})" if why else ""))
    return value


def batch_size(value, field: str = "batch") -> int:
    return bounded(value, field, 1, MAX_BATCH, f"the graph's batch axis covers 1..{MAX_BATCH}")


def input_side(height, width, field: str = "input_size") -> tuple[int, int]:
    for side in (height, width):
        if isinstance(side, bool) or not isinstance(side, int):
            raise ConfigError(field, f"{height}x{width}", "must be whole numbers")
    if height % 32 or width % 32 or height < 64 or width < 32 or \
            max(height, width) > MAX_INPUT_SIDE:
        raise ConfigError(field, f"{height}x{width}", f"OSNet needs multiples of 32, from 64x32 "
                          f"to {MAX_INPUT_SIDE}x{MAX_INPUT_SIDE} (torchreid trains 256x128)")
    return height, width


@dataclass(frozen=True)
class Device:
    """Where a model runs: the CPU, or CUDA device `index`."""

    kind: str  # "cpu" or "cuda"
    index: int = 0

    def __str__(self) -> str:
        return "cpu" if self.kind == "cpu" else f"cuda:{self.index}"

    @property
    def is_cuda(self) -> bool:
        return self.kind == "cuda"


_DEVICE = re.compile(r"^(cpu|cuda)(?::(\d{1,3}))?$")


def parse_device(value: str | Device, field: str = "device") -> Device:
    """'cpu', 'cuda' (device 0) or 'cuda:N'; anything else ('gpu', 'cuda:x') is an error."""
    if isinstance(value, Device):
        return value
    found = _DEVICE.match(str(value).strip().lower()) if isinstance(value, str) else None
    if found is None or (found.group(1) == "cpu" and found.group(2) is not None):
        raise ConfigError(field, value, "use 'cpu', 'cuda' or 'cuda:N'")
    return Device(found.group(1), int(found.group(2) or 0))
