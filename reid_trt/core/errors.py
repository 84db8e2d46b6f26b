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


class OutputPathError(ReidTrtError):
    """The output location cannot be written."""
