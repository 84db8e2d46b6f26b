"""The export steps as library functions; the CLI is a thin layer over these."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from reid_trt import defaults
from reid_trt.contract import Contract
from reid_trt.errors import ReidTrtError
from reid_trt.fileio import atomic_path, check_writable, sha256_file

PRECISIONS = ("fp32", "fp16")
INPUT_FORMATS = ("float", "uint8-bgr")


@dataclass(frozen=True)
class ExportConfig:
    """Options of `reid-export onnx`; None means the default."""

    variant: str = "auto"
    precision: str = "fp32"
    io_dtype: str = "fp32"
    input_format: str = "float"
    normalize: bool = False
    batch: int | None = None  # None: dynamic batch axis
    opset: int = defaults.ONNX_OPSET
    height: int = defaults.INPUT_HEIGHT
    width: int = defaults.INPUT_WIDTH
    trust_checkpoint: bool = False

    def validate(self) -> None:
        if self.precision not in PRECISIONS:
            raise ReidTrtError(f"--precision {self.precision}: choose one of {', '.join(PRECISIONS)}"
                               " (int8 comes from 'reid-export calibrate')")
        if self.io_dtype not in PRECISIONS:
            raise ReidTrtError(f"--io-dtype {self.io_dtype}: choose fp32 or fp16")
        if self.io_dtype == "fp16" and self.precision != "fp16":
            raise ReidTrtError("--io-dtype fp16 needs --precision fp16")
        if self.input_format not in INPUT_FORMATS:
            raise ReidTrtError(f"--input {self.input_format}: choose float or uint8-bgr")
        if self.batch is not None and self.batch < 1:
            raise ReidTrtError(f"--batch {self.batch}: a static batch must be >= 1")
        if self.height % 32 or self.width % 32 or self.height < 64 or self.width < 32:
            raise ReidTrtError(f"--input-size {self.height}x{self.width}: OSNet needs multiples of "
                               "32, at least 64x32 (torchreid trains 256x128)")


@dataclass
class ExportResult:
    path: Path
    variant: str
    evidence: tuple[str, ...]
    contract: Contract
    parity: object  # verify.ParityReport


def default_output(weights: Path, precision: str) -> Path:
    suffix = ".onnx" if precision == "fp32" else f".{precision}.onnx"
    return Path(weights.stem + suffix)


def export_onnx(weights: Path | str, output: Path | str | None = None,
                config: ExportConfig = ExportConfig(),
                verify_crops: list[np.ndarray] | None = None) -> ExportResult:
    """Loads a torchreid checkpoint, exports it, verifies it against PyTorch, then writes it.

    The graph is written only after it passed verification, and atomically: a failure at any
    step leaves nothing at `output`.
    """
    from reid_trt.export.onnx_export import onnx_from_model
    from reid_trt.export.verify import require_parity, verify_against_torch
    from reid_trt.models.checkpoint import load_model

    config.validate()
    weights = Path(weights)
    output = check_writable(Path(output) if output else default_output(weights, config.precision))
    loaded = load_model(weights, config.variant, trust=config.trust_checkpoint)
    contract = Contract(
        variant=loaded.variant, height=config.height, width=config.width,
        input_format=config.input_format, normalized=config.normalize,
        precision=config.precision, io_dtype=config.io_dtype,
        weights_sha256=sha256_file(weights),
    )
    model = onnx_from_model(loaded.model, contract, batch=config.batch, opset=config.opset)
    parity = verify_against_torch(model, loaded.model, contract, verify_crops)
    require_parity(parity, f"the exported {config.precision} graph of {weights}")
    with atomic_path(output) as tmp:
        onnx.save(model, tmp)
    return ExportResult(output, loaded.variant, loaded.evidence, contract, parity)


def verify_onnx(onnx_path: Path | str, weights: Path | str, trust_checkpoint: bool = False,
                verify_crops: list[np.ndarray] | None = None):
    """Re-runs the export verification for an existing graph.

    Returns (ParityReport, same_weights): same_weights says whether `weights` is the file the
    graph was exported from (sha256 in its metadata).
    """
    from reid_trt.contract import contract_of
    from reid_trt.export.verify import verify_against_torch
    from reid_trt.models.checkpoint import load_model

    onnx_path = Path(onnx_path)
    model = load_onnx(onnx_path)
    contract = contract_of(model, str(onnx_path))
    loaded = load_model(weights, contract.variant, trust=trust_checkpoint)
    same_weights = contract.weights_sha256 == sha256_file(Path(weights))
    return verify_against_torch(model, loaded.model, contract, verify_crops), same_weights


def load_onnx(path: Path) -> onnx.ModelProto:
    if not path.is_file():
        raise ReidTrtError(f"{path}: no such file; pass the path of an .onnx exported by reid-export")
    try:
        return onnx.load(str(path))
    except Exception as e:
        raise ReidTrtError(f"{path} is not a readable ONNX model (truncated or corrupt?): "
                           f"{str(e).splitlines()[0][:160]}") from None
