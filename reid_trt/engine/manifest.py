"""The sidecar manifest `model.plan.json`: what an engine is, how it was built, how to feed it.

The engine file itself stays raw, so trtexec, Triton and DeepStream load it as usual.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from reid_trt.contract import Contract
from reid_trt.errors import ReidTrtError

MANIFEST_FORMAT = "reid-trt-engine/1"


def manifest_path(engine: Path) -> Path:
    return engine.with_name(engine.name + ".json")


@dataclass
class Manifest:
    trt_flavour: str  # "tensorrt" or "rtx"
    trt_version: str
    precision: str
    profile: dict[str, int]  # batch sizes: min, opt, max
    io: list[dict]  # name, mode, dtype, shape (-1 for the dynamic batch)
    contract: dict
    targets: str  # compute capabilities or hardware compatibility level
    instancenorm: str
    onnx_sha256: str
    weighted_layers: dict[str, int] = field(default_factory=dict)  # conv/matmul count by precision
    engine_sha256: str = ""
    engine_bytes: int = 0
    build_seconds: float = 0.0
    built_at: str = ""
    options: dict = field(default_factory=dict)  # workspace, opt level, DLA core
    builder_warnings: list[str] = field(default_factory=list)
    format: str = MANIFEST_FORMAT

    @property
    def preprocessing(self) -> Contract:
        return Contract(**{k: tuple(v) if isinstance(v, list) else v
                           for k, v in self.contract.items()})

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def read_manifest(engine: Path) -> Manifest:
    """The manifest beside `engine`; a missing or corrupt one is an error that says what to do."""
    path = manifest_path(Path(engine))
    rebuild = f"rebuild it with 'reid-export trt --onnx MODEL.onnx -o {engine}'"
    if not path.is_file():
        raise ReidTrtError(f"{path}: no manifest beside the engine; {rebuild}")
    try:
        data = json.loads(path.read_text())
        if data.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {MANIFEST_FORMAT!r}")
        manifest = Manifest(**data)
        manifest.preprocessing  # noqa: B018 - validates the contract
        return manifest
    except (ValueError, TypeError) as e:
        raise ReidTrtError(f"{path} is not a valid reid-trt manifest ({e}); {rebuild}") from None
