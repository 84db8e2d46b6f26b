"""What a graph or an engine is: I/O, precision, contract; per-layer detail where a GPU allows."""

from __future__ import annotations

import json
import re
from pathlib import Path

from reid_trt.core.contract import contract_of
from reid_trt.core.engine_file import EngineFile, disagreements
from reid_trt.core.errors import ReidTrtError
from reid_trt.core.fileio import sha256_file
from reid_trt.core.manifest import ENGINE_SUFFIXES, read_manifest
from reid_trt.core.onnxio import graph_precision, load_onnx, tensor_precisions
from reid_trt.core.trt_compat import collecting_logger, load_trt, trt_label
from reid_trt.export.checks import grouped_conv_count, op_counts


def describe_onnx(path: Path) -> dict[str, str]:
    model = load_onnx(path, "inspect")
    contract = contract_of(model, str(path))
    counts = op_counts(model)

    def io(values) -> str:
        import onnx

        return "; ".join(
            f"{v.name} {onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type)} "
            f"[{', '.join(d.dim_param or str(d.dim_value) for d in v.type.tensor_type.shape.dim)}]"
            for v in values)

    return {
        "file": str(path),
        "variant": contract.variant,
        "precision": graph_precision(model),
        "inputs": io(model.graph.input),
        "outputs": io(model.graph.output),
        "contract": contract.summary(),
        "weights": ", ".join(f"{n} {t}" for t, n in sorted(tensor_precisions(model).items())),
        "ops": f"{sum(counts.values())} nodes: {counts['Conv']} Conv "
               f"({grouped_conv_count(model)} depthwise), "
               f"{counts['InstanceNormalization']} InstanceNorm, "
               f"{counts['QuantizeLinear']} Q / {counts['DequantizeLinear']} DQ",
        "source sha256": contract.weights_sha256 or "unknown",
    }


def layer_information(engine_path: Path, flavour: str) -> str:
    """The engine inspector's per-layer JSON; needs a GPU and the TensorRT runtime it was built by."""
    try:
        trt = load_trt(flavour)
        logger = collecting_logger(trt)
        runtime = trt.module.Runtime(logger)
        engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
    except Exception as e:  # no GPU, no driver or no runtime: the manifest still stands
        return f"unavailable here ({type(e).__name__}: {str(e).splitlines()[0][:100]})"
    if engine is None:
        text = " ".join(logger.errors)
        cuda = re.search(r"cudaError \d+: ([^)]*)", text)
        reason = cuda.group(1) if cuda else (text[:120] or "no GPU?")
        return f"unavailable here (the runtime could not deserialise the engine: {reason})"
    inspector = engine.create_engine_inspector()
    return inspector.get_engine_information(trt.module.LayerInformationFormat.JSON)


def describe_engine(path: Path) -> tuple[dict[str, str], list[str]]:
    """The engine's facts, and where its manifest does not describe it (empty if it does)."""
    if not path.is_file():
        raise ReidTrtError(f"{path}: no such file; pass an engine built by 'reid-export trt'")
    m = read_manifest(path)
    c = m.preprocessing
    same = sha256_file(path) == m.engine_sha256
    intact = "ok" if same else "MISMATCH (engine changed since build)"
    engine = EngineFile.of(path, m)
    found = disagreements(m, engine)
    problems = ([] if same else ["the engine changed since the build (sha256 differs)"]) + found
    if found:
        checked = "DISAGREES: " + "; ".join(found)
    elif engine.readable:
        checked = "agrees with the engine's own tensors (weight types, I/O)"
    else:
        checked = ("not checked (only TensorRT-RTX engines carry a whole tensor table; the "
                   "layers below need a GPU)")
    return {
        "file": str(path),
        "variant": c.variant,
        "built by": f"{trt_label(m.trt_flavour, m.trt_version)} on {m.built_at} in "
                    f"{m.build_seconds} s",
        "targets": m.targets,
        "precision": f"{m.precision} (InstanceNorm {m.instancenorm})",
        "conv/matmul": ", ".join(f"{n} {k}" for k, n in m.weighted_layers.items()) or "unknown",
        "profile": f"batch min {m.profile.min}, opt {m.profile.opt}, max {m.profile.max}",
        "io": "; ".join(f"{t.mode} {t.name} {t.dtype} {t.shape}" for t in m.io),
        "contract": c.summary(),
        "options": json.dumps({k: v for k, v in m.options.items() if v is not None}),
        "warnings": str(len(m.builder_warnings)),
        "engine sha256": f"{m.engine_sha256[:16]}... {intact}",
        "manifest": checked,
        "layers": layer_information(path, m.trt_flavour)[:2000],
    }, problems


def describe(path: Path | str) -> tuple[dict[str, str], list[str]]:
    """What `inspect` shows, and what disagrees with its claims (engines: the sha256 recorded at
    build time, the manifest against the engine's own tensors)."""
    path = Path(path)
    if path.is_dir():
        raise ReidTrtError(f"{path} is a directory; inspect takes an .onnx or an engine file")
    if path.suffix == ".onnx":
        return describe_onnx(path), []
    if path.suffix in ENGINE_SUFFIXES:
        return describe_engine(path)
    raise ReidTrtError(f"{path}: inspect takes .onnx or {'/'.join(ENGINE_SUFFIXES)} files")
