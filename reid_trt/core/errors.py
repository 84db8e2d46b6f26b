"""The project's exceptions: one base, a few narrow kinds.

Each message says what went wrong, with which file, option or layer, and how to fix it; the CLI
prints it on one line and exits non-zero.

A message names an option by its field, wrapped in `opt()`: a Python caller reads the field name
(`calib_data`), the command line reads the flag (`--calib-data`); cli/common.py holds the one
table from field to flag, and no flag is written below cli/ (tests/cli/test_vocabulary.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable

_OPTION = re.compile("\u2039([a-z][a-z0-9_]*)\u203a")


def opt(field: str) -> str:
    """An option named in a message, by its config field."""
    return f"\u2039{field}\u203a"


def render(text: str, name_of: Callable[[str], str] = str) -> str:
    """`text` with each option written by `name_of(field)` (default: the field name)."""
    return _OPTION.sub(lambda m: name_of(m.group(1)), text)


class ReidTrtError(Exception):
    """Base of every error reid-trt raises on purpose."""

    def __str__(self) -> str:
        return render(super().__str__())

    def worded(self, name_of: Callable[[str], str]) -> str:
        """The message with options written by `name_of` (the CLI: their flags)."""
        return render(super().__str__(), name_of)


class CheckpointError(ReidTrtError):
    """A weights file that cannot be read, or does not fit the model."""


class ExportError(ReidTrtError):
    """The ONNX export failed or produced a graph that breaks our invariants."""


class VerificationError(ReidTrtError):
    """An exported graph disagrees with PyTorch beyond tolerance."""


class MissingDependencyError(ReidTrtError):
    """An optional package is needed for this step."""

    def __init__(self, package: str, extra: str | None, purpose: str, alternative: str = ""):
        how = f"pip install 'reid-trt[{extra}]' (or pip install {package})" if extra else \
            f"pip install {package}"
        super().__init__(f"{purpose} needs the Python package '{package}': {how}{alternative}")


# Optional packages by the module name an import misses: (the package to install, the extra).
OPTIONAL_MODULES = {
    "torch": ("torch", "export"), "onnxscript": ("onnxscript", "export"),
    "onnxslim": ("onnxslim", "export"), "onnxruntime": ("onnxruntime", "ort"),
    "openvino": ("openvino", "openvino"), "tensorrt_rtx": ("tensorrt-rtx-cu13", "rtx"),
    "cuda": ("cuda-python", "trt"), "tritonclient": ("tritonclient[grpc,http]", "serve"),
    "matplotlib": ("matplotlib", "bench"), "cv2": ("opencv-python-headless", "headless"),
}


def missing_module(error: ModuleNotFoundError, purpose: str) -> MissingDependencyError | None:
    """The one-line error for an optional package a step imported without checking; None for
    any other missing module (a bug, which keeps its traceback)."""
    top = (error.name or "").split(".")[0]
    if top not in OPTIONAL_MODULES:
        return None
    package, extra = OPTIONAL_MODULES[top]
    return MissingDependencyError(package, extra, purpose)


class OutputPathError(ReidTrtError):
    """The output location cannot be written."""
