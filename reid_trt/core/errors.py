"""The project's exceptions: one base, a few narrow kinds.

Each message says what went wrong, with which file, option or layer, and how to fix it; the CLI
prints it on one line and exits non-zero.
"""


class ReidTrtError(Exception):
    """Base of every error reid-trt raises on purpose."""


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
