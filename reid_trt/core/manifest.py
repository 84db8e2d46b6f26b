"""The sidecar manifest `model.plan.json`: what an engine is, how it was built, how to feed it.

The engine file itself stays raw, so trtexec, Triton and DeepStream load it as usual.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

from reid_trt.core.contract import Contract
from reid_trt.core.errors import ReidTrtError
from reid_trt.core.fileio import read_regular
from reid_trt.core.options import Precision, TrtFlavour
from reid_trt.core.records import fields_jsonable

MANIFEST_FORMAT = "reid-trt-engine/1"
ENGINE_SUFFIXES = (".plan", ".engine", ".trt")
MAX_MANIFEST_BYTES = 4 << 20  # a manifest is a few KB: a bigger file is not one


# TensorRT's element types in each spelling it uses (its DataType names, the TensorRT-RTX tensor
# table's words, the builder's layer report's) -> the DataType name a manifest records.
ELEMENT_TYPES = {"float": "FLOAT", "half": "HALF", "int8": "INT8", "uint8": "UINT8",
                 "int32": "INT32", "int64": "INT64", "bool": "BOOL", "bf16": "BF16",
                 "bfloat16": "BF16", "fp8": "FP8"}
# The precision a layer computing in that type runs at (the words of Manifest.weighted_layers).
LAYER_PRECISIONS = {"FLOAT": "fp32", "HALF": "fp16", "INT8": "int8", "BF16": "bf16", "FP8": "fp8"}


def element_type(word: str) -> str:
    """TensorRT's DataType name for any of its spellings of a type ('half', 'Half' -> 'HALF')."""
    return ELEMENT_TYPES.get(word.lower(), word.upper())


def layer_precision(word: str) -> str:
    """The precision a layer computing in type `word` runs at ('Half' -> 'fp16'); a type that is
    no precision keeps its own name, lowercased."""
    return LAYER_PRECISIONS.get(element_type(word), word.lower())


def manifest_path(engine: Path) -> Path:
    return engine.with_name(engine.name + ".json")


def rebuild_advice(engine: Path | str, where: str = "", target: str | None = None) -> str:
    """The one way every message says how to make `engine` right again: build it anew from the
    .onnx it was built from (`where`: ' on this machine', ' for this GPU'; `target`: the GPU
    architecture the new build must name, e.g. 'sm89')."""
    if target is None:
        return (f"rebuild it{where} with 'reid-export trt --onnx MODEL.onnx -o {engine}' (the "
                ".onnx it was built from)")
    return (f"rebuild it{where} with 'reid-export trt --onnx MODEL.onnx -o {engine} "
            f"--compute-capability {target}' (the .onnx it was built from)")


@dataclass(frozen=True)
class Profile:
    """The engine's batch sizes (TensorRT's optimisation profile)."""

    min: int
    opt: int
    max: int

    @property
    def static(self) -> int | None:
        """The one batch a static-batch engine takes, else None."""
        return self.max if self.min == self.max else None


@dataclass(frozen=True)
class IOTensor:
    """An engine input or output as the network declares it."""

    name: str
    mode: str  # "input" or "output"
    dtype: str  # TensorRT's DataType name (ELEMENT_TYPES)
    shape: list[int]  # -1 for the dynamic batch


@dataclass(frozen=True)
class EngineLayers:
    """What the built engine itself runs, read from the builder's layer report
    (engine/layers.py): the graph's conv/matmul layers by the precision they run at, the INT8
    share of conv MACs, the layers in INT8, and the reformat layers TensorRT added."""

    weighted_layers: dict[str, int]
    int8_mac_share: float
    int8_layers: list[str]
    reformat_layers: int


@dataclass
class Manifest:
    trt_flavour: TrtFlavour  # TENSORRT or RTX
    trt_version: str
    precision: Precision
    profile: Profile
    io: list[IOTensor]
    contract: Contract  # how to feed it
    targets: str  # compute capabilities or hardware compatibility level
    instancenorm: str
    onnx_sha256: str
    weighted_layers: dict[str, int] = field(default_factory=dict)  # conv/matmul count by precision
    unquantized: str = ""  # INT8 engines: precision of the layers left unquantized
    engine_layers: EngineLayers | None = None  # None: the builder printed no layer report
    engine_sha256: str = ""
    engine_bytes: int = 0
    build_seconds: float = 0.0
    built_at: str = ""
    options: dict = field(default_factory=dict)  # workspace, opt level, DLA core
    builder_warnings: list[str] = field(default_factory=list)
    format: str = MANIFEST_FORMAT

    @property
    def preprocessing(self) -> Contract:
        return self.contract

    def to_dict(self) -> dict:
        """The manifest as model.plan.json holds it (no layer report: {})."""
        data = fields_jsonable(self)
        if self.engine_layers is None:
            data["engine_layers"] = {}
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict) -> Manifest:
        """The manifest from the JSON `_check_shape` passed."""
        layers = data.get("engine_layers") or None
        return cls(**{**data, "trt_flavour": TrtFlavour(data["trt_flavour"]),
                      "precision": Precision(data["precision"]),
                      "profile": Profile(**data["profile"]),
                      "io": [IOTensor(**t) for t in data["io"]],
                      "engine_layers": None if layers is None else EngineLayers(**layers),
                      "contract": Contract.from_dict(data["contract"], "the engine manifest")})


# Field -> the JSON type it must have: a hand-edited or foreign file fails on reading.
_TYPES = {f.name: f.type for f in fields(Manifest)}
_JSON_TYPES = {"str": str, "Profile": dict, "list[IOTensor]": list, "Contract": dict,
               "dict": dict, "dict[str, int]": dict, "int": int, "float": (int, float),
               "list[str]": list, "TrtFlavour": str, "Precision": str,
               "EngineLayers | None": dict}


def _check_shape(data) -> None:
    if not isinstance(data, dict):
        raise ValueError(f"a JSON {type(data).__name__}, not an object")
    if data.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"format {data.get('format')!r}, expected {MANIFEST_FORMAT!r}")
    unknown = sorted(set(data) - set(_TYPES))
    if unknown:
        raise ValueError(f"unknown fields {', '.join(unknown)}")
    for name, value in data.items():
        wanted = _JSON_TYPES[_TYPES[name]]
        if isinstance(value, bool) or not isinstance(value, wanted):
            raise ValueError(f"field '{name}' is a {type(value).__name__}")
    profile = data.get("profile", {})
    if sorted(profile) != ["max", "min", "opt"] or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in profile.values()):
        raise ValueError("profile must hold min, opt and max batch sizes >= 1")
    if not profile["min"] <= profile["opt"] <= profile["max"]:
        raise ValueError(f"profile {profile} is not min <= opt <= max")
    for k, entry in enumerate(data.get("io", [])):
        if not isinstance(entry, dict) or not all(isinstance(entry.get(key), str)
                                                  for key in ("name", "mode", "dtype")):
            raise ValueError(f"io[{k}] is not an object with string name, mode and dtype")
        shape = entry.get("shape")
        if not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= -1 for d in shape):
            raise ValueError(f"io[{k}].shape is not a list of sizes (-1 for the batch)")
    for key, count in data.get("weighted_layers", {}).items():
        if isinstance(count, bool) or not isinstance(count, int):
            raise ValueError(f"weighted_layers['{key}'] is a {type(count).__name__}, not a count")
    if not all(isinstance(w, str) for w in data.get("builder_warnings", [])):
        raise ValueError("builder_warnings holds something other than text")
    _check_engine_layers(data.get("engine_layers", {}))


def _check_engine_layers(layers: dict) -> None:
    """The builder's layer report as `build` writes it, or {} when it printed none."""
    if not layers:
        return
    if sorted(layers) != sorted(f.name for f in fields(EngineLayers)):
        raise ValueError(f"engine_layers holds {', '.join(sorted(layers))}")
    share = layers["int8_mac_share"]
    counts = layers["weighted_layers"]
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
        raise ValueError("engine_layers.int8_mac_share is not a share from 0 to 1")
    if not isinstance(counts, dict) or not all(
            isinstance(n, int) and not isinstance(n, bool) for n in counts.values()):
        raise ValueError("engine_layers.weighted_layers is not a count per precision")
    if not isinstance(layers["int8_layers"], list) or not all(
            isinstance(n, str) for n in layers["int8_layers"]):
        raise ValueError("engine_layers.int8_layers is not a list of layer names")
    if isinstance(layers["reformat_layers"], bool) or not isinstance(layers["reformat_layers"], int):
        raise ValueError("engine_layers.reformat_layers is not a count")


def read_manifest(engine: Path) -> Manifest:
    """The manifest beside `engine`; a missing or corrupt one is an error that says what to do."""
    path = manifest_path(Path(engine))
    rebuild = rebuild_advice(engine)
    if path.is_dir():
        raise ReidTrtError(f"{path} is a directory, not the engine's manifest; move it away and "
                           f"{rebuild}")
    if not path.is_file():
        raise ReidTrtError(f"{path}: no manifest beside the engine; {rebuild}")
    try:
        data = json.loads(read_regular(path, MAX_MANIFEST_BYTES).decode())
        _check_shape(data)
        return Manifest.from_dict(data)
    except OSError as e:
        raise ReidTrtError(f"{path}: cannot read the engine's manifest ({e.strerror})") from None
    except ReidTrtError as e:  # from the contract's own checks
        raise ReidTrtError(f"{path} is not a valid reid-trt manifest (its contract: {e}); "
                           f"{rebuild}") from None
    except (ValueError, TypeError) as e:  # UnicodeDecodeError and JSONDecodeError too
        reason = str(e).splitlines()[0][:160]
        raise ReidTrtError(f"{path} is not a valid reid-trt manifest ({reason}); {rebuild}") \
            from None
