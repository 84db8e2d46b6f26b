"""Parity of an exported graph with PyTorch: ONNX Runtime and the source model on the same crops."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import onnx

from reid_trt.core import defaults
from reid_trt.core.batching import pad_batch, plan_batches
from reid_trt.core.contract import Contract
from reid_trt.core.errors import VerificationError, opt
from reid_trt.core.metrics import cosine_rows
from reid_trt.core.onnxio import ort_session
from reid_trt.core.preprocess import graph_input, preprocess_numpy
from reid_trt.data.synthetic import person_like_crops


@dataclass(frozen=True)
class ParityReport:
    crops: int
    max_abs_diff: float
    min_cosine: float
    mean_cosine: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.min_cosine >= self.tolerance

    def summary(self) -> str:
        return (f"{self.crops} crops: min cosine {self.min_cosine:.7f}, mean {self.mean_cosine:.7f}, "
                f"max |diff| {self.max_abs_diff:.3g} (tolerance: min cosine >= {self.tolerance})")

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def run_onnx(session, x: np.ndarray, static_batch: int | None) -> np.ndarray:
    """Runs `x` through `session`, in padded chunks of the static batch if the graph has one."""
    name = session.get_inputs()[0].name
    if static_batch is None:
        return session.run(None, {name: x})[0]
    outs = [session.run(None, {name: pad_batch(x[c.start:c.stop], c.padded)})[0][:c.stop - c.start]
            for c in plan_batches(len(x), None, static_batch=static_batch)]
    return np.concatenate(outs)


def torch_embeddings(model, crops: Sequence[np.ndarray], contract: Contract) -> np.ndarray:
    """The reference: PyTorch on crops preprocessed outside the model, as torchreid does."""
    import torch

    x = torch.from_numpy(preprocess_numpy(crops, (contract.height, contract.width),
                                          contract.mean, contract.std))
    with torch.no_grad():
        v = model.eval()(x)
        if contract.normalized:
            v = torch.nn.functional.normalize(v, dim=1, eps=defaults.L2_EPS)
    return v.numpy()


def verify_against_torch(onnx_model: onnx.ModelProto | str, torch_model, contract: Contract,
                         crops: Sequence[np.ndarray] | None = None) -> ParityReport:
    """Compares ONNX Runtime with PyTorch on person-like crops (or the given ones)."""
    if crops is None:
        crops = person_like_crops(defaults.VERIFY_CROPS, contract.height, contract.width,
                                  seed=defaults.VERIFY_SEED)
    session = ort_session(onnx_model, source="the exported graph")
    dim = session.get_inputs()[0].shape[0]
    got = run_onnx(session, graph_input(crops, contract), dim if isinstance(dim, int) else None)
    want = torch_embeddings(torch_model, crops, contract)
    cos = cosine_rows(got, want)
    return ParityReport(
        crops=len(crops),
        max_abs_diff=float(np.abs(got.astype(np.float64) - want).max()),
        min_cosine=float(cos.min()),
        mean_cosine=float(cos.mean()),
        tolerance=defaults.MIN_COSINE[contract.precision],
    )


def graph_parity(reference: onnx.ModelProto, candidate: onnx.ModelProto, contract: Contract,
                 tolerance: float, crops: Sequence[np.ndarray] | None = None,
                 names: tuple[str, str] = ("the source graph", "the new graph")) -> ParityReport:
    """One graph against another in ONNX Runtime on the same crops (default: generated
    person-like ones), for conversions that must keep the function: fp16, adoption."""
    if crops is None:
        crops = person_like_crops(defaults.VERIFY_CROPS, contract.height, contract.width,
                                  seed=defaults.VERIFY_SEED)
    x = graph_input(crops, contract)
    dim = reference.graph.input[0].type.tensor_type.shape.dim[0].dim_value or None
    want = run_onnx(ort_session(reference, source=names[0]), x, dim)
    got = run_onnx(ort_session(candidate, source=names[1]), x, dim)
    cos = cosine_rows(got, want)
    return ParityReport(len(crops), float(np.abs(got.astype(np.float64) - want).max()),
                        float(cos.min()), float(cos.mean()), tolerance)


def require_parity(report: ParityReport, what: str) -> None:
    if not report.passed:
        raise VerificationError(
            f"{what} disagrees with PyTorch: {report.summary()}; nothing was written "
            f"(try {opt('precision')} fp32, or report this with the checkpoint's variant)"
        )
