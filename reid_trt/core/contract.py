"""The preprocessing contract: what a graph or engine expects, stored in ONNX metadata_props.

Export writes it; calibration, the engine builder and the runtime read it, so no user ever re-enters
input size, colour order or normalisation. Pure Python: the runtime imports it without torch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

from reid_trt.core import defaults
from reid_trt.core.errors import ReidTrtError
from reid_trt.core.options import InputFormat, Precision, coerce_choices
from reid_trt.core.version import __version__

METADATA_PREFIX = "reid_trt."


@dataclass(frozen=True)
class Contract:
    """How to feed a model and what it returns. Checked on construction: a contract read from a
    file someone edited fails here, not as a wrong-shaped tensor later."""

    variant: str
    height: int = defaults.INPUT_HEIGHT
    width: int = defaults.INPUT_WIDTH
    input_format: InputFormat = InputFormat.FLOAT
    mean: tuple[float, float, float] = defaults.IMAGENET_MEAN
    std: tuple[float, float, float] = defaults.IMAGENET_STD
    embedding_dim: int = defaults.EMBEDDING_DIM
    normalized: bool = False
    precision: Precision = Precision.FP32
    io_dtype: Precision = Precision.FP32
    input_name: str = defaults.INPUT_NAME
    output_name: str = defaults.OUTPUT_NAME
    weights_sha256: str = ""
    reid_trt_version: str = __version__

    def __post_init__(self):
        set_ = object.__setattr__
        coerce_choices(self, input_format=InputFormat, precision=Precision, io_dtype=Precision)
        for name in ("height", "width", "embedding_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 65536:
                raise ReidTrtError(f"contract field {name}={value!r} is not a positive size")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if not (isinstance(value, (tuple, list)) and len(value) == 3 and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
                raise ReidTrtError(f"contract field {name}={value!r} is not 3 numbers")
            set_(self, name, tuple(float(v) for v in value))
        if min(self.std) <= 0:
            raise ReidTrtError(f"contract field std={self.std!r} must be positive")
        for name in ("variant", "input_name", "output_name", "weights_sha256"):
            if not isinstance(getattr(self, name), str):
                raise ReidTrtError(f"contract field {name}={getattr(self, name)!r} is not a string")

    @property
    def uint8_input(self) -> bool:
        return self.input_format == InputFormat.UINT8_BGR

    @property
    def pixel_scale(self) -> float | None:
        """What one 8-bit pixel step is in the graph's input, for formats that normalise inside
        from float pixels (1 for 0-255, 1/255 for 0-1); None when normalisation is outside."""
        return {InputFormat.RGB255: 1.0, InputFormat.RGB01: 1.0 / 255.0}.get(self.input_format)

    @property
    def layout(self) -> str:
        return "NHWC" if self.uint8_input else "NCHW"

    @property
    def colour_order(self) -> str:
        return "BGR" if self.uint8_input else "RGB"

    def input_shape(self, batch: int | str) -> tuple:
        if self.uint8_input:
            return (batch, self.height, self.width, 3)
        return (batch, 3, self.height, self.width)

    def summary(self) -> str:
        """One line for people: what goes in, what comes out."""
        return (f"{self.input_format} {self.layout} {self.height}x{self.width} "
                f"{self.colour_order}, mean {self.mean}, std {self.std}, "
                f"{'L2-normalised' if self.normalized else 'raw'} {self.embedding_dim}-d")

    def to_dict(self) -> dict:
        return {k: str(v) if isinstance(v, InputFormat | Precision) else v
                for k, v in asdict(self).items()}

    def to_metadata(self) -> dict[str, str]:
        meta = {METADATA_PREFIX + k: json.dumps(v) for k, v in self.to_dict().items()}
        # Redundant but readable by tools that know nothing of reid-trt (Netron, Triton users).
        meta[METADATA_PREFIX + "layout"] = json.dumps(self.layout)
        meta[METADATA_PREFIX + "colour_order"] = json.dumps(self.colour_order)
        return meta

    @classmethod
    def from_dict(cls, data: dict, source: str = "model") -> Contract:
        """A contract from stored values; wrong types or values are a one-line error."""
        if not isinstance(data, dict):
            raise ReidTrtError(f"{source}: the preprocessing contract is a "
                               f"{type(data).__name__}, not a mapping; re-export the model")
        known = {f.name for f in fields(cls)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}
        try:
            return cls(**values)
        except (ReidTrtError, TypeError) as e:
            raise ReidTrtError(f"{source} carries a broken preprocessing contract ({e}); "
                               "re-export it with 'reid-export onnx'") from None

    @classmethod
    def from_metadata(cls, meta: dict[str, str], source: str = "model") -> Contract:
        values = {}
        for key, raw in meta.items():
            if key.startswith(METADATA_PREFIX):
                try:
                    values[key.removeprefix(METADATA_PREFIX)] = json.loads(raw)
                except ValueError:
                    raise ReidTrtError(f"{source}: metadata '{key}' is not valid JSON ({raw[:40]!r}"
                                       "); re-export it with 'reid-export onnx'") from None
        if "variant" not in values:
            raise ReidTrtError(
                f"{source} carries no reid-trt metadata (no '{METADATA_PREFIX}variant'): a graph "
                "from another exporter (BoxMOT, torchreid, a tracking repo) is taken in with "
                "'reid-export adopt GRAPH'; from a checkpoint, export it with 'reid-export onnx'"
            )
        return cls.from_dict(values, source)


def contract_of(model, source: str = "model") -> Contract:
    """The contract stored in an onnx.ModelProto's metadata_props, checked against the graph's
    own inputs and outputs: metadata copied onto another graph is refused here, before any
    build, conversion or session."""
    contract = Contract.from_metadata({p.key: p.value for p in model.metadata_props}, source)
    check_graph_io(model, contract, source)
    return contract


# ONNX element types (onnx.TensorProto) by name, without importing onnx here.
_ELEM_TYPES = {1: "float32", 2: "uint8", 10: "float16"}


def _tensor(value) -> tuple[str, list]:
    """(element type, dims: int for a fixed size, the name or '?' for a free one) of a graph
    input or output."""
    t = value.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim]
    return _ELEM_TYPES.get(t.elem_type, f"type {t.elem_type}"), dims


def check_graph_io(model, contract: Contract, source: str = "model") -> None:
    """An onnx.ModelProto's inputs and outputs against `contract` (check_io)."""
    weights = {i.name for i in model.graph.initializer}
    check_io([(i.name, *_tensor(i)) for i in model.graph.input if i.name not in weights],
             {o.name: _tensor(o) for o in model.graph.output}, contract, source)


def check_io(inputs: list[tuple[str, str, list]], outputs: dict[str, tuple[str, list]],
             contract: Contract, source: str = "model") -> None:
    """The model takes one image batch and returns (N, embedding_dim) as `contract` says: input
    name, layout, size and element type, output width and type. `inputs`: (name, element type,
    dims); `outputs`: name -> (element type, dims); dims are ints where fixed."""
    io = "float16" if contract.io_dtype == Precision.FP16 else "float32"
    problems = []
    if len(inputs) != 1:
        problems.append(f"{len(inputs)} inputs, not one image batch")
    elif inputs[0][0] != contract.input_name:
        problems.append(f"input '{inputs[0][0]}', not '{contract.input_name}'")
    else:
        _, kind, dims = inputs[0]
        want = contract.input_shape("N")
        wanted_type = "uint8" if contract.uint8_input else io
        if len(dims) != 4 or any(isinstance(d, int) and d != w
                                 for d, w in zip(dims[1:], want[1:], strict=False)):
            problems.append(f"input shape {tuple(dims)}, not {want} ({contract.input_format})")
        if kind != wanted_type:
            problems.append(f"input {kind}, not {wanted_type}")
    if contract.output_name not in outputs:
        problems.append(f"no output '{contract.output_name}' (it has "
                        f"{', '.join(outputs) or 'none'})")
    else:
        kind, dims = outputs[contract.output_name]
        if len(dims) != 2 or (isinstance(dims[1], int) and dims[1] != contract.embedding_dim):
            problems.append(f"output shape {tuple(dims)}, not (N, {contract.embedding_dim})")
        if kind != io:
            problems.append(f"output {kind}, not {io}")
    if problems:
        raise ReidTrtError(f"{source}: its reid-trt metadata does not describe this graph ("
                           f"{'; '.join(problems)}); export the model with 'reid-export onnx' "
                           "or adopt the graph with 'reid-export adopt'")


@dataclass(frozen=True)
class Int8Record:
    """What an INT8 graph records of its calibration beside its contract (metadata_props):
    written by calibration, read by the engine build."""

    calibration_method: str
    unquantized_precision: str  # of the float layers in the graph itself
    engine_unquantized: str  # the precision `reid-export trt` computes them in

    def to_metadata(self) -> dict[str, str]:
        return {METADATA_PREFIX + k: json.dumps(v) for k, v in asdict(self).items()}

    @classmethod
    def of(cls, model) -> Int8Record | None:
        """The record in an onnx.ModelProto, or None (not calibrated by reid-trt, or damaged:
        the build then takes its defaults)."""
        meta = {p.key: p.value for p in model.metadata_props}
        try:
            values = {f.name: json.loads(meta[METADATA_PREFIX + f.name]) for f in fields(cls)
                      if METADATA_PREFIX + f.name in meta}
            return cls(**values)
        except (ValueError, TypeError):
            return None
