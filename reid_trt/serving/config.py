"""Triton model configurations: made from what a model says of itself, written as `config.pbtxt`,
and read back and checked with Triton's own protobuf schema (tritonclient's model_config_pb2).

Nothing here is guessed: tensor names, dtypes and dims come from the graph or the engine's
manifest, the batch limits from its profile, and the preprocessing contract travels in
`parameters` so that any client can read what to send.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from reid_trt.core.contract import Contract
from reid_trt.core.errors import MissingDependencyError, ReidTrtError, opt
from reid_trt.core.options import (
    Choice,
    ConfigError,
    InputFormat,
    Precision,
    bounded,
    coerce_choices,
    described,
)

# ONNX element types and TensorRT DataType names -> Triton's data types.
ONNX_TYPES = {1: "FP32", 10: "FP16", 2: "UINT8", 3: "INT8", 6: "INT32", 7: "INT64", 16: "BF16"}
TRT_TYPES = {"FLOAT": "FP32", "HALF": "FP16", "UINT8": "UINT8", "INT8": "INT8", "INT32": "INT32",
             "INT64": "INT64", "BF16": "BF16"}
NUMPY_TYPES = {"FP32": "float32", "FP16": "float16", "UINT8": "uint8", "INT8": "int8",
               "INT32": "int32", "INT64": "int64"}
MAX_INSTANCES = 64
MAX_QUEUE_DELAY_US = 10_000_000  # 10 s: a longer wait is a typo
CONTRACT_KEY = "reid_trt.contract"
MODEL_FILE_KEY = "reid_trt.model_file"


class Kind(Choice):
    PLAN = "plan"  # Triton's TensorRT backend runs the engine
    ONNX = "onnx"  # Triton's ONNX Runtime backend runs the graph
    PYTHON = "python"  # Triton's Python backend runs reid-trt's Embedder on the model


PLATFORMS = {Kind.PLAN: "tensorrt_plan", Kind.ONNX: "onnxruntime_onnx"}
MODEL_FILES = {Kind.PLAN: "model.plan", Kind.ONNX: "model.onnx", Kind.PYTHON: "model.py"}


def instance_kind(kind: Kind, is_engine: bool) -> str:
    """Where instances run: an engine needs a GPU (Triton places one instance group per GPU);
    the ONNX Runtime backend takes the GPU when the server has one; a Python model on a graph
    picks its device itself (Embedder's default: cuda:0 when present)."""
    if is_engine:
        return "KIND_GPU"
    return "KIND_AUTO" if kind == Kind.ONNX else "KIND_CPU"


def model_config_pb2():
    try:
        from tritonclient.grpc import model_config_pb2
    except ImportError:
        raise MissingDependencyError("tritonclient[grpc]", "serve",
                                     "checking Triton model configurations") from None
    return model_config_pb2


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # Triton's name without TYPE_: FP32, FP16, UINT8
    dims: tuple[int, ...]  # without the batch axis


@dataclass(frozen=True)
class ModelSpec:
    """What Triton needs to know of one model, read from the model itself."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    min_batch: int
    opt_batch: int
    max_batch: int  # the profile's or graph's largest batch
    default_max_batch: int  # served when no --max-batch is given
    contract: Contract  # how a client feeds the served model


@dataclass(frozen=True)
class ServeOptions:
    """How a model is served; checked on construction."""

    name: str = described("osnet", "Model name: the folder in the repository.")
    kind: Kind | None = described(  # None: plan for an engine, onnx for a graph
        None, "plan|onnx|python: Triton's TensorRT or ONNX Runtime backend, or its Python "
        "backend running reid-trt's Embedder [plan for an engine, onnx for a graph].")
    max_batch: int | None = described(  # None: the model's own maximum
        None, "max_batch_size [the engine profile's maximum; 64 for a graph].")
    instances: int = described(1, "Model instances (per GPU for engines).")
    max_queue_delay_us: int = described(
        1000, "Microseconds Triton may hold a request to batch it with others.")

    def __post_init__(self):
        coerce_choices(self, optional=("kind",), kind=Kind)
        check_model_name(self.name)
        if self.max_batch is not None:
            bounded(self.max_batch, "max_batch", 1)
        bounded(self.instances, "instances", 1, MAX_INSTANCES)
        bounded(self.max_queue_delay_us, "max_queue_delay_us", 0, MAX_QUEUE_DELAY_US)


def check_model_name(name) -> str:
    """A Triton model name is a folder of the repository and part of every request's URL."""
    if not isinstance(name, str) or not name or name.startswith(".") or len(name) > 128 or \
            not all(c.isalnum() or c in "_-." for c in name):
        raise ConfigError("name", name, "use letters, digits, '_', '-' and '.' (no '/', no "
                          "leading '.'), at most 128 characters")
    return name


def python_contract(contract: Contract) -> Contract:
    """What the Python-kind model takes: uint8 BGR crops already at the contract's size (the
    server's Embedder normalises them and the embeddings) and gives L2-normalised fp32."""
    return dataclasses.replace(contract, input_format=InputFormat.UINT8_BGR, input_name="crops",
                               output_name="embeddings", normalized=True,
                               io_dtype=Precision.FP32)


def python_spec(spec: ModelSpec) -> ModelSpec:
    contract = python_contract(spec.contract)
    return dataclasses.replace(
        spec, contract=contract,
        inputs=(TensorSpec("crops", "UINT8", (contract.height, contract.width, 3)),),
        outputs=(TensorSpec("embeddings", "FP32", (contract.embedding_dim,)),))


def preferred_batches(spec: ModelSpec, max_batch: int) -> list[int]:
    """The profile's optimum (what TensorRT tuned for) and the maximum, both within the limit."""
    return sorted({min(spec.opt_batch, max_batch), max_batch})


def build_config(spec: ModelSpec, options: ServeOptions, is_engine: bool,
                 extra: dict[str, str] | None = None):
    """A ModelConfig message for `spec` served as `options` say (its kind resolved); `extra`
    adds parameters."""
    pb = model_config_pb2()
    max_batch = options.max_batch or spec.default_max_batch
    check_batch_limits(spec, max_batch, options.kind)
    config = pb.ModelConfig(name=options.name, max_batch_size=max_batch)
    if options.kind == Kind.PYTHON:
        config.backend = "python"
    else:
        config.platform = PLATFORMS[options.kind]
    for specs, field in ((spec.inputs, config.input), (spec.outputs, config.output)):
        for t in specs:
            field.add(name=t.name, data_type=pb.DataType.Value("TYPE_" + t.dtype), dims=t.dims)
    config.dynamic_batching.preferred_batch_size.extend(preferred_batches(spec, max_batch))
    config.dynamic_batching.max_queue_delay_microseconds = options.max_queue_delay_us
    kind = instance_kind(options.kind, is_engine)
    config.instance_group.add(kind=pb.ModelInstanceGroup.Kind.Value(kind), count=options.instances)
    params = {CONTRACT_KEY: json.dumps(spec.contract.to_dict(), sort_keys=True), **(extra or {})}
    for key, value in params.items():
        config.parameters[key].string_value = value
    return config


def check_batch_limits(spec: ModelSpec, max_batch: int, kind: Kind) -> None:
    if max_batch > spec.max_batch:
        raise ConfigError("max_batch", max_batch, f"above the model's largest batch "
                          f"{spec.max_batch}; pass at most {spec.max_batch} or rebuild the engine "
                          f"with a larger {opt('max_batch')}")
    if kind == Kind.PLAN and spec.min_batch > 1:  # (Embedder pads a Python model's batches)
        raise ConfigError("max_batch", max_batch, f"the engine's profile starts at batch "
                          f"{spec.min_batch}, but Triton sends batches from 1; rebuild it with "
                          f"{opt('min_batch')} 1")


def to_text(config) -> str:
    from google.protobuf import text_format

    return text_format.MessageToString(config)


def parse_config(text: str, source: str | Path = "config.pbtxt"):
    """A config.pbtxt parsed with Triton's schema; a malformed one is a one-line error."""
    from google.protobuf import text_format

    try:
        return text_format.Parse(text, model_config_pb2().ModelConfig())
    except text_format.ParseError as e:
        raise ReidTrtError(f"{source} is not a valid Triton model configuration ({e})") from None


def check_config(config, spec: ModelSpec, source: str | Path = "config.pbtxt") -> None:
    """`config` against the model it serves: tensor names, dtypes, dims, batch limits."""
    pb = model_config_pb2()
    problems = []
    if not 1 <= config.max_batch_size <= spec.max_batch:
        problems.append(f"max_batch_size {config.max_batch_size} is outside the model's "
                        f"1..{spec.max_batch}")
    for what, tensors, wanted in (("input", config.input, spec.inputs),
                                  ("output", config.output, spec.outputs)):
        got = {(t.name, pb.DataType.Name(t.data_type).removeprefix("TYPE_"), tuple(t.dims))
               for t in tensors}
        expected = {(t.name, t.dtype, t.dims) for t in wanted}
        if got != expected:
            problems.append(f"{what}s {sorted(got)} are not the model's {sorted(expected)}")
    batching = config.dynamic_batching.preferred_batch_size
    if any(not 1 <= b <= config.max_batch_size for b in batching):
        problems.append(f"preferred batch sizes {list(batching)} exceed max_batch_size")
    try:
        served = served_contract(config, str(source))
    except ReidTrtError as e:
        problems.append(f"parameter {CONTRACT_KEY} is not a preprocessing contract ({e})")
    else:
        if served != spec.contract:
            problems.append(f"parameter {CONTRACT_KEY} does not match the model's contract")
    if problems:
        raise ReidTrtError(f"{source} does not fit its model: {'; '.join(problems)}")


def served_contract(config, source: str = "the served model") -> Contract:
    """The preprocessing contract a served model's config carries."""
    raw = config.parameters[CONTRACT_KEY].string_value if CONTRACT_KEY in config.parameters \
        else ""
    if not raw:
        raise ReidTrtError(f"{source} carries no '{CONTRACT_KEY}' parameter; serve it from a "
                           "repository written by 'reid-export triton'")
    try:
        return Contract.from_dict(json.loads(raw), source)
    except ValueError:
        raise ReidTrtError(f"{source}: parameter '{CONTRACT_KEY}' is not JSON; rewrite the "
                           "repository with 'reid-export triton'") from None
