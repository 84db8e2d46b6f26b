"""The preprocessing contract: what a graph or engine expects, stored in ONNX metadata_props.

Export writes it; calibration, the engine builder and the runtime read it, so no user ever re-enters
input size, colour order or normalisation. Pure Python: the runtime imports it without torch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

from reid_trt import __version__, defaults
from reid_trt.errors import ReidTrtError

METADATA_PREFIX = "reid_trt."


@dataclass(frozen=True)
class Contract:
    """How to feed a model and what it returns.

    `input_format` is "float" (N,3,H,W float, RGB, mean/std-normalised outside the graph) or
    "uint8-bgr" (N,H,W,3 uint8 BGR, as OpenCV crops; normalisation inside the graph).
    """

    variant: str
    height: int = defaults.INPUT_HEIGHT
    width: int = defaults.INPUT_WIDTH
    input_format: str = "float"
    mean: tuple[float, float, float] = defaults.IMAGENET_MEAN
    std: tuple[float, float, float] = defaults.IMAGENET_STD
    embedding_dim: int = defaults.EMBEDDING_DIM
    normalized: bool = False
    precision: str = "fp32"
    io_dtype: str = "fp32"
    input_name: str = defaults.INPUT_NAME
    output_name: str = defaults.OUTPUT_NAME
    weights_sha256: str = ""
    reid_trt_version: str = __version__

    @property
    def layout(self) -> str:
        return "NHWC" if self.input_format == "uint8-bgr" else "NCHW"

    @property
    def colour_order(self) -> str:
        return "BGR" if self.input_format == "uint8-bgr" else "RGB"

    def input_shape(self, batch: int | str) -> tuple:
        if self.input_format == "uint8-bgr":
            return (batch, self.height, self.width, 3)
        return (batch, 3, self.height, self.width)

    def to_metadata(self) -> dict[str, str]:
        meta = {METADATA_PREFIX + k: json.dumps(v) for k, v in asdict(self).items()}
        # Redundant but readable by tools that know nothing of reid-trt (Netron, Triton users).
        meta[METADATA_PREFIX + "layout"] = json.dumps(self.layout)
        meta[METADATA_PREFIX + "colour_order"] = json.dumps(self.colour_order)
        return meta

    @classmethod
    def from_metadata(cls, meta: dict[str, str], source: str = "model") -> Contract:
        known = {f.name for f in fields(cls)}
        values = {}
        for key, raw in meta.items():
            name = key.removeprefix(METADATA_PREFIX)
            if key.startswith(METADATA_PREFIX) and name in known:
                value = json.loads(raw)
                values[name] = tuple(value) if isinstance(value, list) else value
        if "variant" not in values:
            raise ReidTrtError(
                f"{source} carries no reid-trt metadata (no '{METADATA_PREFIX}variant'); "
                "export it with 'reid-export onnx' so the preprocessing contract travels with it"
            )
        return cls(**values)


def contract_of(model, source: str = "model") -> Contract:
    """The contract stored in an onnx.ModelProto's metadata_props."""
    return Contract.from_metadata({p.key: p.value for p in model.metadata_props}, source)
