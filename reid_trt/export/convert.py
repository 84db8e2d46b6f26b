"""FP16 graphs from FP32 graphs, verified against the FP32 graph before anything uses them.

What a trtexec user types (`--precision fp16` on an FP32 graph) cannot be a builder flag for a
strongly typed network, but it can be a graph conversion done right: the same conversion as
`reid-export onnx --precision fp16` (InstanceNorm, the L2 normalisation and its reduction kept
FP32, I/O kept FP32), then both graphs run on the same crops, and a conversion that moves any
embedding below the tolerance is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx

from reid_trt.core.contract import Contract, contract_of
from reid_trt.core.errors import ReidTrtError, VerificationError, opt
from reid_trt.core.fileio import atomic_path, check_output, sha256_file
from reid_trt.core.onnxio import graph_precision, load_onnx
from reid_trt.core.options import Precision
from reid_trt.export.precision import simplified, to_fp16
from reid_trt.export.verify import ParityReport, graph_parity

# FP16 against the FP32 graph it came from, min cosine per crop (the real osnet_x0_25 measures
# 0.99996 or better on the real crops here).
FP16_FROM_FP32_MIN_COSINE = 0.9995


@dataclass
class Conversion:
    model: onnx.ModelProto
    contract: Contract
    parity: ParityReport  # FP16 graph against the FP32 graph
    source_sha256: str

    def to_dict(self) -> dict:
        return {"from": "fp32 graph", "source_sha256": self.source_sha256,
                "parity_to_fp32": self.parity.to_dict()}


def fp16_from_fp32(source: Path, crops: list[np.ndarray] | None = None) -> Conversion:
    """The FP16 graph of the FP32 graph at `source`, verified on `crops` (default: generated
    person-like crops)."""
    model = load_onnx(source)
    contract = contract_of(model, str(source))
    actual = graph_precision(model)
    if actual != Precision.FP32:
        raise ReidTrtError(f"{source} is an {actual} graph; FP16 conversion takes an fp32 graph "
                           "(export one with 'reid-export onnx')")
    converted = simplified(to_fp16(model, keep_fp32_io=True))
    target = replace(contract, precision=Precision.FP16, io_dtype=Precision.FP32)
    del converted.metadata_props[:]
    onnx.helper.set_model_props(converted, target.to_metadata())
    onnx.checker.check_model(converted)
    parity = graph_parity(model, converted, contract, FP16_FROM_FP32_MIN_COSINE, crops,
                          (str(source), "the FP16 conversion"))
    if not parity.passed:
        raise VerificationError(f"the FP16 conversion of {source} disagrees with it: "
                                f"{parity.summary()}; nothing was written (keep fp32)")
    return Conversion(converted, target, parity, sha256_file(source))


def write_fp16(source: Path | str, output: Path | str | None = None,
               crops: list[np.ndarray] | None = None) -> tuple[Path, Conversion]:
    """`reid-export fp16`: the verified FP16 graph of an FP32 graph, written atomically."""
    source = Path(source)
    output = Path(output) if output else source.with_name(f"{source.stem}.fp16.onnx")
    check_output(output, opt("output"), (".onnx",), inputs=[source])
    conversion = fp16_from_fp32(source, crops)
    with atomic_path(output) as tmp:
        onnx.save(conversion.model, tmp)
    return output, conversion
