"""The `ReID:` section of a DeepStream nvtracker config (NvDCF or NvDeepSORT) for a reid-trt
graph or engine, with every number taken from the model, and a checker for such sections.

DeepStream feeds the re-ID network y = netScaleFactor * (x - offsets[c]) on 0-255 pixels, one
scale for all three channels. ImageNet's per-channel std cannot be written that way (NVIDIA's
samples use 1/57.63 with mean offsets, up to 1.3% off per channel), so the only exact setting is
a graph that normalises inside from RGB 0-255 (`reid-export onnx --for deepstream`): offsets 0,
netScaleFactor 1. `keepAspc: 1` letterboxes, which torchreid's training resize never does, so it
stays 0. DeepStream ignores keys it does not know, silently: check_reid_section refuses them.
"""

from __future__ import annotations

import os
from pathlib import Path

from reid_trt.core.contract import Contract, contract_of
from reid_trt.core.engine_file import check_engine_file
from reid_trt.core.errors import MissingDependencyError, ReidTrtError, opt
from reid_trt.core.fileio import atomic_path
from reid_trt.core.manifest import Manifest, read_manifest
from reid_trt.core.onnxio import graph_precision, load_onnx
from reid_trt.core.options import InputFormat

# The ReID keys of gst-nvtracker's NvMultiObjectTracker config (DeepStream 6.4-8.0 docs).
DOCUMENTED_KEYS = frozenset({
    "reidType", "batchSize", "workspaceSize", "reidFeatureSize", "reidHistorySize", "inferDims",
    "networkMode", "inputOrder", "colorFormat", "offsets", "netScaleFactor", "keepAspc",
    "addFeatureNormalization", "tltEncodedModel", "tltModelKey", "onnxFile", "modelEngineFile",
    "calibrationTableFile", "outputReidTensor", "useVPICropScaler", "reidExtractionInterval",
})
# What each key's value must be: (kind, lowest, highest); kinds: int, number, dims (a list of
# `count` positive ints), numbers (a list of `count` numbers), path. A wrong type would otherwise
# crash the checker (int("abc")) or reach DeepStream, which reads it as 0.
KEY_TYPES = {
    "reidType": ("int", 0, 3), "batchSize": ("int", 1, 4096), "workspaceSize": ("int", 1, 1 << 20),
    "reidFeatureSize": ("int", 1, 65536), "reidHistorySize": ("int", 1, 1 << 16),
    "inferDims": ("dims", 3, 3), "networkMode": ("int", 0, 2), "inputOrder": ("int", 0, 1),
    "colorFormat": ("int", 0, 2), "offsets": ("numbers", 3, 3),
    "netScaleFactor": ("number", 0, float("inf")), "keepAspc": ("int", 0, 1),
    "addFeatureNormalization": ("int", 0, 1), "outputReidTensor": ("int", 0, 1),
    "useVPICropScaler": ("int", 0, 1), "reidExtractionInterval": ("int", -1, 1 << 20),
    "tltEncodedModel": ("path", 0, 0), "tltModelKey": ("path", 0, 0), "onnxFile": ("path", 0, 0),
    "modelEngineFile": ("path", 0, 0), "calibrationTableFile": ("path", 0, 0),
}
REID_TYPE = {"nvdcf": 2, "deepsort": 1}  # 2: re-association of lost targets; 1: NvDeepSORT
NETWORK_MODE = {"fp32": 0, "fp16": 1, "int8": 2}
DEFAULT_BATCH = 100  # targets embedded per call, as NVIDIA's sample configs set it
DEFAULT_HISTORY = 100
DEFAULT_WORKSPACE_MIB = 1000


def yaml_module():
    try:
        import yaml
    except ImportError:
        raise MissingDependencyError("pyyaml", None, "DeepStream configs") from None
    return yaml


def _model_of(engine: Path | None, onnx_path: Path | None
              ) -> tuple[Contract, str, Manifest | None]:
    if (engine is None) == (onnx_path is None):
        raise ReidTrtError(f"pass either {opt('engine')} PLAN or {opt('onnx')} MODEL")
    if engine is not None:
        if not Path(engine).is_file():
            raise ReidTrtError(f"{opt('engine')} {engine}: no such file")
        manifest = read_manifest(engine)
        check_engine_file(engine, manifest)
        return manifest.preprocessing, manifest.precision, manifest
    graph = load_onnx(onnx_path)
    return contract_of(graph, str(onnx_path)), graph_precision(graph), None


def _check_feedable(contract: Contract, source: Path) -> None:
    if contract.input_format != InputFormat.RGB255:
        raise ReidTrtError(
            f"{source} takes {contract.input_format} input; DeepStream feeds RGB 0-255 scaled by "
            "one factor, which cannot express its per-channel normalisation: export with "
            "'reid-export onnx --for deepstream' (and build the engine from that graph)")


def _relative(path: Path, config: Path) -> str:
    """Paths relative to the config's folder, as nvtracker resolves them."""
    try:
        return os.path.relpath(Path(path).resolve(), Path(config).resolve().parent)
    except ValueError:  # another drive
        return str(Path(path).resolve())


def reid_section(config_path: Path, *, engine: Path | None = None, onnx_path: Path | None = None,
                 tracker: str = "nvdcf", batch: int | None = None, gpu: int = 0,
                 history: int = DEFAULT_HISTORY) -> dict:
    """The ReID section for `engine` or `onnx_path`, to be written at `config_path`."""
    contract, precision, manifest = _model_of(engine, onnx_path)
    _check_feedable(contract, Path(engine or onnx_path))
    if tracker not in REID_TYPE:
        raise ReidTrtError(f"{opt('tracker')} {tracker}: choose nvdcf or deepsort")
    if not _is_int(gpu) or gpu < 0:
        raise ReidTrtError(f"{opt('gpu_id')} {gpu}: a GPU index is 0 or more")
    if manifest is not None:
        largest = manifest.profile.max
        batch = largest if batch is None else batch
        if not 1 <= batch <= largest:
            raise ReidTrtError(f"{opt('batch')} {batch}: the engine {Path(engine).name} takes batches of "
                               f"{manifest.profile.min} to {largest}; rebuild it with "
                               f"{opt('max_batch')} {batch} or pass a batch it takes")
        workspace = int(manifest.options.get("workspace_mib") or DEFAULT_WORKSPACE_MIB)
    else:
        batch = DEFAULT_BATCH if batch is None else batch
        if not 1 <= batch <= 4096:
            raise ReidTrtError(f"{opt('batch')} {batch}: pass 1 to 4096 targets per call")
        workspace = DEFAULT_WORKSPACE_MIB
    section = {
        "reidType": REID_TYPE[tracker],
        "batchSize": batch,
        "workspaceSize": workspace,
        "reidFeatureSize": contract.embedding_dim,
        "reidHistorySize": history,
        "inferDims": [3, contract.height, contract.width],
        "networkMode": NETWORK_MODE[precision],
        "inputOrder": 0,  # NCHW
        "colorFormat": 0,  # RGB
        "offsets": [0.0, 0.0, 0.0],
        "netScaleFactor": 1.0,
        "keepAspc": 0,
        "addFeatureNormalization": 0 if contract.normalized else 1,
        "outputReidTensor": 0,
    }
    if engine is not None:
        section["modelEngineFile"] = _relative(engine, config_path)
    else:
        # DeepStream builds the engine on first run and caches it under its own naming rule.
        built = Path(onnx_path).with_name(
            f"{Path(onnx_path).name}_b{batch}_gpu{gpu}_{precision}.engine")
        section["onnxFile"] = _relative(onnx_path, config_path)
        section["modelEngineFile"] = _relative(built, config_path)
    check_reid_section(section, contract, precision, manifest)
    return section


def check_reid_section(section: dict, contract: Contract, precision: str,
                       manifest: Manifest | None = None, source: str = "ReID") -> None:
    """Every key documented, and every number consistent with the model it runs."""
    if not isinstance(section, dict):
        raise ReidTrtError(f"{source}: the ReID section is not a mapping")
    unknown = sorted(set(section) - DOCUMENTED_KEYS)
    if unknown:
        raise ReidTrtError(f"{source}: unknown key(s) {', '.join(map(_key, unknown))}; "
                           "DeepStream ignores them silently (known: "
                           f"{', '.join(sorted(DOCUMENTED_KEYS))})")
    for key, value in section.items():
        problem = _value_problem(value, *KEY_TYPES[key])
        if problem:
            raise ReidTrtError(f"{source}: {key} is {_shown(value)}: {problem}")
    want = {
        "reidFeatureSize": contract.embedding_dim,
        "inferDims": [3, contract.height, contract.width],
        "networkMode": NETWORK_MODE[precision],
        "inputOrder": 0, "colorFormat": 0, "offsets": [0.0, 0.0, 0.0], "netScaleFactor": 1.0,
        "keepAspc": 0,
    }
    why = {
        "networkMode": f"the model is {precision}",
        "inputOrder": "the graph takes NCHW", "colorFormat": "the graph takes RGB",
        "offsets": "the graph normalises inside from RGB 0-255",
        "netScaleFactor": "the graph normalises inside from RGB 0-255",
        "keepAspc": "1 letterboxes, torchreid's training resize does not",
    }
    for key, value in want.items():
        got = section.get(key)
        same = got is not None and (
            [float(v) for v in got] == [float(v) for v in value] if isinstance(value, list)
            else float(got) == float(value))
        if not same:
            raise ReidTrtError(f"{source}: {key} is {_shown(got)}; set {key}: {value} "
                               f"({why.get(key, 'the model says so')})")
    if manifest is not None and not 1 <= int(section.get("batchSize", 0)) <= manifest.profile.max:
        raise ReidTrtError(f"{source}: batchSize: {section.get('batchSize')!r}, but the engine "
                           f"takes 1 to {manifest.profile.max}")


def _shown(value, limit: int = 60) -> str:
    """A value from a user's file for a one-line message: printable, short."""
    text = "".join(ch if ch.isprintable() else "?" for ch in repr(value))
    return text if len(text) <= limit else text[:limit] + "..."


def _key(key) -> str:
    return key if isinstance(key, str) and key.isprintable() else _shown(key)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    import math

    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def _value_problem(value, kind: str, low, high) -> str:
    """Why `value` cannot be a `kind` in low..high, or ''."""
    if kind == "int":
        if not _is_int(value):
            return "expected a whole number"
        return "" if low <= value <= high else f"expected {low} to {high}"
    if kind == "number":
        if not _is_number(value):
            return "expected a finite number"
        return "" if value > low else "expected a number above 0"
    if kind in ("dims", "numbers"):
        ok = _is_int if kind == "dims" else _is_number
        if not isinstance(value, list) or len(value) != low or not all(ok(v) for v in value):
            return f"expected a list of {low} {'whole' if kind == 'dims' else ''} numbers".replace(
                "  ", " ")
        return "" if kind == "numbers" or all(v > 0 for v in value) else "dims must be positive"
    if not isinstance(value, str) or not value:
        return "expected a file path"
    return ""


def write_reid_config(output: Path, section: dict) -> Path:
    """The section under `ReID:`, atomically; nothing at `output` on failure."""
    yaml = yaml_module()
    text = ("%YAML:1.0\n# Written by reid-export deepstream: include this ReID section in the "
            "tracker's ll-config-file.\n" + yaml.safe_dump({"ReID": section}, sort_keys=False,
                                                           default_flow_style=None))
    with atomic_path(output) as tmp:
        Path(tmp).write_text(text)
    return output


def read_reid_section(config: Path) -> dict:
    """The ReID section of a tracker config (NVIDIA's files start with a %YAML:1.0 line that
    PyYAML does not take)."""
    yaml = yaml_module()
    try:
        text = Path(config).read_text()
        lines = [line for line in text.splitlines() if not line.startswith("%YAML")]
        data = yaml.safe_load("\n".join(lines))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        reason = " ".join(str(e).split())[:160]
        raise ReidTrtError(f"{config}: not a readable YAML tracker config ({reason})") from None
    if not isinstance(data, dict) or "ReID" not in data:
        raise ReidTrtError(f"{config}: no ReID section; write one with 'reid-export deepstream'")
    return data["ReID"]


def check_reid_config(config: Path, engine: Path | None = None,
                      onnx_path: Path | None = None) -> dict:
    """Checks a tracker config's ReID section against the engine or graph it is meant to run."""
    contract, precision, manifest = _model_of(engine, onnx_path)
    _check_feedable(contract, Path(engine or onnx_path))
    section = read_reid_section(config)
    check_reid_section(section, contract, precision, manifest, source=str(config))
    return section
