"""The export steps as library functions; the CLI is a thin layer over these."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx

from reid_trt.core import defaults
from reid_trt.core.contract import Contract
from reid_trt.core.errors import ReidTrtError
from reid_trt.core.fileio import atomic_path, check_output, sha256_file
from reid_trt.core.onnxio import load_onnx
from reid_trt.core.options import (
    ConfigError,
    Consumer,
    InputFormat,
    Precision,
    batch_size,
    bounded,
    coerce_choices,
    described,
    input_side,
)
from reid_trt.export.consumers import check_boxmot_name, check_consumer, tensor_names

if TYPE_CHECKING:
    from reid_trt.export.verify import ParityReport


@dataclass(frozen=True)
class ExportConfig:
    """Options of `reid-export onnx`, checked on construction. batch None: dynamic batch axis."""

    variant: str = "auto"
    precision: Precision = described(Precision.FP32, "fp32 or fp16 (InstanceNorm stays fp32).")
    io_dtype: Precision = described(Precision.FP32, "Float I/O dtype of an fp16 graph.")
    # None: float, or what `consumer` feeds.
    input_format: InputFormat | None = described(
        None, "float: N,3,H,W normalised RGB [default]; uint8-bgr: N,H,W,3 raw OpenCV crops; "
        "float-rgb255 / float-rgb01: N,3,H,W RGB pixel values; all but float normalise inside "
        "the graph.")
    normalize: bool = described(False, "L2-normalise embeddings in the graph.")
    batch: int | None = described(None, "A static batch of N.")
    opset: int = described(defaults.ONNX_OPSET, "ONNX opset.")
    height: int = defaults.INPUT_HEIGHT
    width: int = defaults.INPUT_WIDTH
    trust_checkpoint: bool = False
    consumer: Consumer | None = described(  # a tracker's input rules (consumers.py); None: ours
        None, "A tracker's input rules: boxmot (tensor names, architecture in the file name), "
        "ultralytics (RGB/255 input), deepstream (RGB 0-255 input, for reid-export deepstream).")

    def __post_init__(self):
        coerce_choices(self, ("input_format", "consumer"), precision=Precision,
                       io_dtype=Precision, input_format=InputFormat, consumer=Consumer)
        object.__setattr__(self, "input_format", check_consumer(self))
        if self.precision == Precision.INT8:
            raise ConfigError("precision", "int8", "export writes fp32 or fp16 graphs; INT8 "
                              "graphs come from 'reid-export calibrate'")
        if self.io_dtype == Precision.INT8:
            raise ConfigError("io_dtype", "int8", "choose fp32 or fp16")
        if self.io_dtype == Precision.FP16 and self.precision != Precision.FP16:
            raise ConfigError("io_dtype", "fp16", "needs precision fp16")
        if self.batch is not None:
            batch_size(self.batch, "batch")
        # 18: the dynamo exporter's own; 18-21: what TensorRT 10/11 and ONNX Runtime parse.
        bounded(self.opset, "opset", defaults.ONNX_OPSET, 21, "the exporter converts down to no "
                f"less than {defaults.ONNX_OPSET}")
        input_side(self.height, self.width)
        if not isinstance(self.variant, str):
            raise ConfigError("variant", self.variant, "pass a variant name or 'auto'")


@dataclass
class ExportResult:
    path: Path
    variant: str
    evidence: tuple[str, ...]
    contract: Contract
    parity: ParityReport


def default_output(weights: Path, precision: str) -> Path:
    suffix = ".onnx" if precision == Precision.FP32 else f".{precision}.onnx"
    return Path(weights.stem + suffix)


def check_export_output(weights: Path, output: Path | None, config: ExportConfig,
                        option: str = "-o") -> Path:
    output = Path(output) if output else default_output(Path(weights), config.precision)
    if config.consumer == Consumer.BOXMOT:
        check_boxmot_name(output)
    return check_output(output, option, (".onnx",), inputs=[weights])


def export_onnx(weights: Path | str, output: Path | str | None = None,
                config: ExportConfig = ExportConfig(),
                verify_crops: list[np.ndarray] | None = None) -> ExportResult:
    """Loads a torchreid checkpoint, exports it, verifies it against PyTorch, then writes it.

    The graph is written only after it passed verification, and atomically: a failure at any
    step leaves nothing at `output`.
    """
    from reid_trt.export import trace_cache
    from reid_trt.export.onnx_export import onnx_from_model
    from reid_trt.export.verify import require_parity, verify_against_torch
    from reid_trt.models.checkpoint import load_model

    weights = Path(weights)
    output = check_export_output(weights, output, config)
    loaded = load_model(weights, config.variant, trust=config.trust_checkpoint)
    contract = Contract(
        variant=loaded.variant, height=config.height, width=config.width,
        input_format=config.input_format, normalized=config.normalize,
        precision=config.precision, io_dtype=config.io_dtype,
        weights_sha256=sha256_file(weights), **tensor_names(config.consumer),
    )
    if config.consumer == Consumer.BOXMOT:
        check_boxmot_name(output, loaded.variant)
    key = trace_cache.trace_key(contract, config.opset)
    kept = key is not None and trace_cache.is_kept(key)
    model = onnx_from_model(loaded.model, contract, batch=config.batch, opset=config.opset,
                            trace=key)
    parity = verify_against_torch(model, loaded.model, contract, verify_crops)
    if kept and not parity.passed:  # a kept trace that is wrong for its key: dropped, traced again
        trace_cache.forget(key)
        model = onnx_from_model(loaded.model, contract, batch=config.batch, opset=config.opset,
                                trace=key)
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
    from reid_trt.core.contract import contract_of
    from reid_trt.export.verify import verify_against_torch
    from reid_trt.models.checkpoint import load_model

    onnx_path = Path(onnx_path)
    model = load_onnx(onnx_path)
    contract = contract_of(model, str(onnx_path))
    if contract.precision == Precision.INT8:
        raise ReidTrtError(f"{onnx_path} is an INT8 graph: its accuracy is in its .calib.json "
                           "report; verify checks fp32 and fp16 exports")
    loaded = load_model(weights, contract.variant, trust=trust_checkpoint)
    same_weights = contract.weights_sha256 == sha256_file(Path(weights))
    return verify_against_torch(model, loaded.model, contract, verify_crops), same_weights
