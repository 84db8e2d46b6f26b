"""Graphs from other exporters (BoxMOT, torchreid's tools, tracking repos) made reid-trt graphs:
the structure checked, the opset raised for TensorRT, the graph cleaned, the preprocessing
contract written into it, and the result proven to be the same function (or, with the
checkpoint, verified against PyTorch) before it is written.

Many OSNet users no longer have the .pth, only the .onnx a tracker exported. Such a graph says
nothing of how to feed it; reid-trt's contract is what every command and Embedder read, so the
user states it or it is recognised from the exporter's conventions, and the evidence is shown.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
import onnx.external_data_helper

from reid_trt.core import defaults
from reid_trt.core.contract import Contract
from reid_trt.core.errors import ReidTrtError, VerificationError, opt
from reid_trt.core.fileio import atomic_path, check_output, sha256_file
from reid_trt.core.onnxio import graph_precision, load_onnx
from reid_trt.core.options import InputFormat
from reid_trt.export.precision import simplified
from reid_trt.export.verify import ParityReport, graph_parity
from reid_trt.models import VARIANTS, WIDTHS

SAME_FUNCTION_MIN_COSINE = 1 - 1e-6  # adopted against the original graph, per crop
MIN_OPSET = defaults.ONNX_OPSET  # what TensorRT 10/11 and TensorRT-RTX parse best


@dataclass
class Adoption:
    model: onnx.ModelProto
    contract: Contract
    evidence: list[str]
    parity: ParityReport  # against the original graph, or against PyTorch with weights


def _dims(value) -> list:
    return [d.dim_value or d.dim_param or "?" for d in value.type.tensor_type.shape.dim]


def _inputs(model: onnx.ModelProto) -> list:
    initializers = {i.name for i in model.graph.initializer}
    return [v for v in model.graph.input if v.name not in initializers]


# Ops that end a classifier, not an embedding; and ops that pass a tensor on unchanged in
# meaning (looked through to find what made the output).
CLASSIFIER_OPS = ("Softmax", "LogSoftmax", "ArgMax", "Sigmoid", "TopK")
PASS_THROUGH_OPS = ("Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Cast")


def _output_op(model: onnx.ModelProto, name: str) -> str | None:
    """The op that computes output `name`, looking through reshapes and identities."""
    producers = {out: n for n in model.graph.node for out in n.output}
    node = producers.get(name)
    while node is not None and node.op_type in PASS_THROUGH_OPS and node.input:
        node = producers.get(node.input[0])
    return node.op_type if node is not None else None


def with_external_data(model: onnx.ModelProto, source: Path) -> onnx.ModelProto:
    """`model` with weights kept in files beside `source` read in (the adopted graph is written
    as one file); a missing or unreadable data file is a one-line error naming it."""
    external = [t for t in model.graph.initializer
                if t.data_location == onnx.TensorProto.EXTERNAL]
    if not external:
        return model
    locations = sorted({e.value for t in external for e in t.external_data if e.key == "location"})
    missing = [name for name in locations if not (source.parent / name).is_file()]
    if missing:
        raise ReidTrtError(f"{source} keeps its weights in {', '.join(missing)}, which is not "
                           f"beside it in {source.parent}; put the data file next to the graph "
                           "(as it was exported)")
    try:
        onnx.external_data_helper.load_external_data_for_model(model, str(source.parent))
    except Exception as e:  # a short file, a path that leaves the folder, ...
        raise ReidTrtError(f"{source}: its external weights ({', '.join(locations)}) cannot be "
                           f"read ({' '.join(str(e).split())[:160]}); export the graph again"
                           ) from None
    return model


def check_structure(model: onnx.ModelProto, source: Path) -> tuple[str, list[str]]:
    """(the OSNet variant, evidence) if `model` is an OSNet-family embedding graph; otherwise a
    one-line error with the reason."""
    inputs, outputs = _inputs(model), list(model.graph.output)
    if len(inputs) != 1 or len(outputs) != 1:
        raise ReidTrtError(f"{source} has {len(inputs)} inputs and {len(outputs)} outputs; an "
                           "OSNet embedding graph has one image input and one output")
    shape, out = _dims(inputs[0]), _dims(outputs[0])
    image = len(shape) == 4 and (shape[1] == 3 or shape[3] == 3)
    if not image:
        raise ReidTrtError(f"{source}: input '{inputs[0].name}' is {shape}, not an image batch "
                           "N,3,H,W or N,H,W,3")
    if len(out) != 2:
        raise ReidTrtError(f"{source}: output '{outputs[0].name}' is {out}, not N,D embeddings")
    if out[1] != defaults.EMBEDDING_DIM:
        raise ReidTrtError(
            f"{source}: output '{outputs[0].name}' has {out[1]} values per crop; OSNet's "
            f"embedding has {defaults.EMBEDDING_DIM} (a width of 751 or 1041 is a classifier "
            "head over training identities: export the features, not the logits)")
    head = _output_op(model, outputs[0].name)
    if head in CLASSIFIER_OPS:
        raise ReidTrtError(
            f"{source}: output '{outputs[0].name}' comes out of {head}, a classifier's "
            "probabilities or class, not an embedding; export the features before the classifier "
            "(torchreid's model in eval mode returns them)")
    inits = {i.name: i for i in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv" and len(n.input) > 1
             and n.input[1] in inits]
    stem = next((tuple(inits[n.input[1]].dims) for n in convs), None)
    depthwise = sum(1 for n in convs if next((a.i for a in n.attribute if a.name == "group"), 1)
                    > 1 and tuple(inits[n.input[1]].dims)[2:] == (3, 3))
    width = next((w for w, c in WIDTHS.items() if stem and stem[0] == c[0]), None)
    if stem is None or stem[1:] != (3, 7, 7) or width is None or depthwise < 12:
        raise ReidTrtError(
            f"{source} is not an OSNet-family graph: first conv {stem}, {depthwise} depthwise "
            "3x3 convs (OSNet: a 7x7 stem of 16, 32, 48 or 64 channels and dozens of depthwise "
            "3x3 convs); reid-trt adopts OSNet graphs only")
    norms = sum(n.op_type == "InstanceNormalization" for n in model.graph.node)
    family = "osnet_ain" if norms >= 5 else "osnet_ibn" if norms else "osnet"
    variant = f"{family}_{width}"
    if variant not in VARIANTS:
        raise ReidTrtError(f"{source} looks like {variant}, which torchreid does not define")
    evidence = [f"stem conv {stem} -> width {width}", f"{len(convs)} convs, {depthwise} "
                f"depthwise 3x3", f"{norms} InstanceNorm -> {variant}",
                f"input '{inputs[0].name}' {shape}, output '{outputs[0].name}' {out}"]
    return variant, evidence


def recognised_contract(model: onnx.ModelProto, variant: str, input_format: str | None,
                        mean, std, size: tuple[int, int] | None) -> tuple[Contract, list[str]]:
    """The contract the user stated, the rest filled from the graph and the conventions of the
    exporters that write such graphs (torchreid, BoxMOT, tracking repos: float RGB normalised
    with ImageNet's mean and std outside the graph, raw embeddings out)."""
    image, output = _inputs(model)[0], model.graph.output[0]
    shape = _dims(image)
    nhwc = shape[3] == 3 and shape[1] != 3
    fmt = InputFormat(input_format) if input_format else (
        InputFormat.UINT8_BGR if nhwc else InputFormat.FLOAT)
    if (fmt == InputFormat.UINT8_BGR) != nhwc:
        raise ReidTrtError(f"{opt('input_format')} {fmt}: the graph's input is {shape} "
                           f"({'N,H,W,3' if nhwc else 'N,3,H,W'}); pass the format it takes")
    spatial = shape[1:3] if nhwc else shape[2:4]
    static = tuple(spatial) if all(isinstance(d, int) and d > 0 for d in spatial) else None
    if size is not None and static is not None and tuple(size) != static:
        raise ReidTrtError(f"{opt('input_size')} {size[0]}x{size[1]}: the graph takes "
                           f"{static[0]}x{static[1]}")
    height, width = size or static or (defaults.INPUT_HEIGHT, defaults.INPUT_WIDTH)
    said = "stated"
    evidence = [
        f"input {fmt}: " + (said if input_format else "no format stated; an N,3,H,W float input "
                            "is the exporters' convention (RGB, normalised outside)" if not nhwc
                            else "N,H,W,3 input"),
        f"size {height}x{width}: " + (said if size else "the graph's" if static else "default"),
        "mean/std: " + (said if mean or std else "ImageNet's, as torchreid trains"),
    ]
    precision = graph_precision(model)
    io16 = image.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    contract = Contract(variant=variant, height=int(height), width=int(width), input_format=fmt,
                        mean=tuple(mean or defaults.IMAGENET_MEAN),
                        std=tuple(std or defaults.IMAGENET_STD),
                        normalized=any(n.op_type in ("ReduceL2", "LpNormalization")
                                       for n in model.graph.node),
                        precision=precision, io_dtype="fp16" if io16 else "fp32",
                        input_name=image.name, output_name=output.name)
    return contract, evidence


def adopt_onnx(source: Path | str, *, input_format: str | None = None, mean=None, std=None,
               size: tuple[int, int] | None = None, weights: Path | None = None,
               trust_checkpoint: bool = False, crops: list[np.ndarray] | None = None
               ) -> Adoption:
    """The reid-trt graph of a foreign OSNet graph, proven equal to it (or, with `weights`,
    verified against PyTorch)."""
    source = Path(source)
    original = with_external_data(load_onnx(source), source)
    variant, evidence = check_structure(original, source)
    contract, more = recognised_contract(original, variant, input_format, mean, std, size)
    evidence += more
    model = onnx.ModelProto()
    model.CopyFrom(original)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < MIN_OPSET:
        try:
            model = onnx.version_converter.convert_version(model, MIN_OPSET)
        except Exception as e:  # the converter raises bare RuntimeErrors
            raise ReidTrtError(f"{source}: cannot raise opset {opset} to {MIN_OPSET} "
                               f"({' '.join(str(e).split())[:160]})") from None
        evidence.append(f"opset {opset} -> {MIN_OPSET}")
    model = simplified(model)
    if weights is not None:
        contract = replace(contract, weights_sha256=sha256_file(Path(weights)))
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, contract.to_metadata())
    model.producer_name = model.producer_name or "unknown"
    onnx.checker.check_model(model)
    if weights is not None:
        from reid_trt.export.verify import require_parity, verify_against_torch
        from reid_trt.models.checkpoint import load_model

        loaded = load_model(weights, variant, trust=trust_checkpoint)
        parity = verify_against_torch(model, loaded.model, contract, crops)
        require_parity(parity, f"the adopted graph of {source}")
        return Adoption(model, contract, evidence, parity)
    parity = graph_parity(original, model, contract, SAME_FUNCTION_MIN_COSINE, crops,
                          (str(source), "the adopted graph"))
    if not parity.passed:
        raise VerificationError(f"adopting {source} changed what it computes: {parity.summary()}; "
                                "nothing was written")
    return Adoption(model, contract, evidence, parity)


def write_adopted(source: Path | str, output: Path | str | None = None, **options
                  ) -> tuple[Path, Adoption]:
    """`reid-export adopt`: writes the adopted graph atomically (default <stem>.reid.onnx)."""
    source = Path(source)
    output = Path(output) if output else source.with_name(f"{source.stem}.reid.onnx")
    check_output(output, opt("output"), (".onnx",), inputs=[source, options.get("weights")])
    adoption = adopt_onnx(source, **options)
    with atomic_path(output) as tmp:
        onnx.save(adoption.model, tmp)
    return output, adoption
