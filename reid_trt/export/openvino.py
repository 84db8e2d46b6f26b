"""ONNX -> OpenVINO IR (.xml + .bin) with the preprocessing contract in its runtime info,
verified against ONNX Runtime on the source graph before it is written."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reid_trt.core import defaults
from reid_trt.core.contract import Contract, contract_of
from reid_trt.core.errors import VerificationError, opt
from reid_trt.core.fileio import check_output, file_mode, replace_together
from reid_trt.core.machine import int8_kernels_unsafe
from reid_trt.core.metrics import cosine_rows
from reid_trt.core.onnxio import load_onnx, ort_session
from reid_trt.core.openvino_ir import compile_for, openvino, write_contract
from reid_trt.core.preprocess import graph_input
from reid_trt.core.threads import OFFLINE
from reid_trt.data.synthetic import person_like_crops
from reid_trt.export.verify import ParityReport

# OpenVINO's CPU plugin property (not in its Python API) that runs FakeQuantize as written, in
# float, instead of its integer kernels.
NO_INT8_KERNELS = {"LP_TRANSFORMS_MODE": "NO"}


@dataclass(frozen=True)
class OpenVINOResult:
    xml: Path
    weights: Path
    contract: Contract
    parity: ParityReport


def export_openvino(onnx_path: Path, xml: Path | None = None) -> OpenVINOResult:
    """Converts a graph from reid-export to an IR at `xml` (default: beside it, .xml/.bin)."""
    ov = openvino("converting to OpenVINO IR")
    onnx_path = Path(onnx_path)
    xml = Path(xml) if xml is not None else onnx_path.with_suffix(".xml")
    weights = xml.with_suffix(".bin")
    check_output(xml, opt("output"), (".xml",), inputs=[onnx_path], side_files=[weights])
    graph = load_onnx(onnx_path)
    contract = contract_of(graph, str(onnx_path))
    model = ov.convert_model(str(onnx_path))
    write_contract(model, contract)

    crops = person_like_crops(defaults.VERIFY_CROPS, contract.height, contract.width,
                              seed=defaults.VERIFY_SEED)
    x = graph_input(crops, contract)
    # The IR is judged on what it computes, the Q/DQ graph as written (what TensorRT computes),
    # not on kernels that are wrong on this CPU (core/machine.int8_kernels_unsafe: the runtime
    # refuses those); each precision to its own tolerance.
    as_written = contract.precision == "int8" and int8_kernels_unsafe()
    session = ort_session(graph, source=str(onnx_path), int8_in_float=as_written)
    want = session.run(None, {graph.graph.input[0].name: x})[0]
    config = {"INFERENCE_PRECISION_HINT": "f32", **(NO_INT8_KERNELS if as_written else {})}
    compiled = compile_for(ov.Core(), model, "CPU", OFFLINE, config, onnx_path.name)
    got = compiled.create_infer_request().infer({0: x})[compiled.outputs[0]]
    cos = cosine_rows(np.asarray(got, np.float32), want.astype(np.float32))
    parity = ParityReport(len(crops), float(np.abs(got - want).max()), float(cos.min()),
                          float(cos.mean()), defaults.MIN_COSINE[contract.precision])
    if not parity.passed:
        raise VerificationError(f"the OpenVINO IR of {onnx_path.name} disagrees with ONNX Runtime "
                                f"on the graph: {parity.summary()}; nothing was written")

    # Both files or neither: saved under temporary names, renamed weights first, then topology
    # (a reader finds the .xml only once its .bin is there); an old pair is moved aside first
    # and put back if the new one cannot take its place.
    with tempfile.TemporaryDirectory(dir=xml.parent, prefix=f".{xml.stem}.") as tmp:
        staged = Path(tmp) / "model.xml"
        ov.save_model(model, str(staged), compress_to_fp16=False)
        moves = [(staged.with_suffix(".bin"), weights), (staged, xml)]
        for src, dst in moves:
            os.chmod(src, file_mode(dst))
        replace_together(moves)
    return OpenVINOResult(xml, weights, contract, parity)
