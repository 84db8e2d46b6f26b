"""Strongly typed TensorRT engines from ONNX: the graph's tensor types decide the precision."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import onnx

from reid_trt.engine.compat import RTX_DEFAULT_TARGETS, Trt, collecting_logger, load_trt
from reid_trt.engine.manifest import Manifest, manifest_path
from reid_trt.errors import ReidTrtError
from reid_trt.fileio import atomic_path, check_writable, sha256_file, write_bytes_atomic

DEFAULT_PROFILE = (1, 16, 64)  # batch sizes: trackers embed 1 to a few dozen boxes per frame
INSTANCENORM_PATHS = ("native", "plugin")


@dataclass(frozen=True)
class BuildConfig:
    """Options of `reid-export trt`; None means the default (or, for precision, the graph's own)."""

    precision: str | None = None
    min_batch: int | None = None
    opt_batch: int | None = None
    max_batch: int | None = None
    workspace_mib: int | None = None
    opt_level: int | None = None
    timing_cache: Path | None = None
    dla_core: int | None = None
    trt: str = "auto"
    instancenorm: str = "native"
    compute_capabilities: tuple[str, ...] = ()  # TensorRT-RTX targets, e.g. ("sm75",)
    hardware_compatibility: str | None = None  # full TensorRT: "ampere_plus"


@dataclass
class BuildResult:
    engine: Path
    manifest: Manifest
    trt_label: str
    notes: list[str] = field(default_factory=list)


def resolve_profile(config: BuildConfig, static_batch: int | None) -> tuple[int, int, int]:
    given = (config.min_batch, config.opt_batch, config.max_batch)
    if static_batch is not None:
        if any(b not in (None, static_batch) for b in given):
            raise ReidTrtError(
                f"the graph has a static batch of {static_batch}; drop --min/--opt/--max-batch or "
                "export with --dynamic-batch")
        return (static_batch,) * 3
    lo, opt, hi = (g if g is not None else d for g, d in zip(given, DEFAULT_PROFILE, strict=True))
    if config.max_batch is None and config.opt_batch is not None:
        hi = max(hi, opt)
    if config.min_batch is None and config.opt_batch is not None:
        lo = min(lo, opt)
    if not 1 <= lo <= opt <= hi:
        raise ReidTrtError(f"inconsistent batch profile --min-batch {lo} --opt-batch {opt} "
                           f"--max-batch {hi}: need 1 <= min <= opt <= max")
    return lo, opt, hi


def _check_precision(config: BuildConfig, onnx_path: Path) -> str:
    from reid_trt.export.precision import graph_precision

    actual = graph_precision(onnx.load(str(onnx_path), load_external_data=False))
    if config.precision not in (None, actual):
        hint = ("'reid-export calibrate'" if config.precision == "int8"
                else f"'reid-export onnx --precision {config.precision}'")
        raise ReidTrtError(
            f"{onnx_path} is an {actual} graph but --precision {config.precision} was given: "
            f"strongly typed engines take their precision from the graph; make an "
            f"{config.precision} graph with {hint}, or drop --precision")
    return actual


def _parse(trt: Trt, builder, logger, onnx_path: Path, instancenorm: str):
    network = builder.create_network(trt.strongly_typed_flags())
    parser = trt.module.OnnxParser(network, logger)
    flag = trt.module.OnnxParserFlag.NATIVE_INSTANCENORM
    if instancenorm == "native":
        parser.set_flag(flag)
    else:
        if not trt.has_instancenorm_plugin:
            raise ReidTrtError(f"--instancenorm plugin: {trt.label} has no InstanceNormalization "
                               "plugin (its parser always uses the native layer); use "
                               "--instancenorm native")
        trt.module.init_libnvinfer_plugins(logger, "")
        parser.clear_flag(flag)
    if not parser.parse_from_file(str(onnx_path)):
        failures = []
        for i in range(parser.num_errors):
            err = parser.get_error(i)
            failures.append(f"node {err.node()} '{err.node_name()}' ({err.node_operator()}): "
                            f"{err.desc().splitlines()[0]}")
        raise ReidTrtError(f"{trt.label} cannot parse {onnx_path}: " + "; ".join(failures[:4]))
    return network, parser


def instancenorm_path(network) -> str | None:
    """How the parsed network computes InstanceNorm: 'native', 'plugin', or None if it has none."""
    kinds = {network.get_layer(i).type.name for i in range(network.num_layers)}
    if any(k.startswith("PLUGIN") for k in kinds):
        return "plugin"
    return "native" if "NORMALIZATION" in kinds else None


def weighted_layers(network) -> dict[str, int]:
    """How many convolution and matrix-multiply layers the strongly typed network computes in
    each precision: 'int8' where both data and weights come from DequantizeLinear (TensorRT
    fuses them into an INT8 kernel), else the layer's float type. The graph's types decide this,
    so it is known before any GPU builds or runs the engine."""
    produced_by = {}
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        for j in range(layer.num_outputs):
            produced_by[layer.get_output(j).name] = layer.type.name
    names = {"FLOAT": "fp32", "HALF": "fp16", "BF16": "bf16"}
    counts: dict[str, int] = {}
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if layer.type.name not in ("CONVOLUTION", "MATRIX_MULTIPLY"):
            continue
        inputs = [layer.get_input(j) for j in range(min(layer.num_inputs, 2))]
        if len(inputs) == 2 and all(t is not None and produced_by.get(t.name) == "DEQUANTIZE"
                                    for t in inputs):
            kind = "int8"
        else:
            kind = names.get(layer.get_output(0).dtype.name, layer.get_output(0).dtype.name.lower())
        counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items()))


def _io(network) -> list[dict]:
    tensors = [("input", network.get_input(i)) for i in range(network.num_inputs)]
    tensors += [("output", network.get_output(i)) for i in range(network.num_outputs)]
    return [{"name": t.name, "mode": mode, "dtype": t.dtype.name, "shape": list(t.shape)}
            for mode, t in tensors]


def _configure(trt: Trt, builder, config: BuildConfig, notes: list[str]):
    m = trt.module
    builder_config = builder.create_builder_config()
    if config.workspace_mib is not None:
        builder_config.set_memory_pool_limit(m.MemoryPoolType.WORKSPACE, config.workspace_mib << 20)
    if config.opt_level is not None:
        if not 0 <= config.opt_level <= 5:
            raise ReidTrtError(f"--opt-level {config.opt_level}: choose 0 to 5 (default 3)")
        builder_config.builder_optimization_level = config.opt_level
    if config.dla_core is not None:
        if not trt.has_dla:
            raise ReidTrtError(f"--dla-core: {trt.label} has no DLA (Jetson only); build with full "
                               "TensorRT on the Jetson, or drop --dla-core")
        if config.dla_core >= builder.num_DLA_cores:
            raise ReidTrtError(f"--dla-core {config.dla_core}: this machine has "
                               f"{builder.num_DLA_cores} DLA cores")
        builder_config.default_device_type = m.DeviceType.DLA
        builder_config.DLA_core = config.dla_core
        builder_config.set_flag(m.BuilderFlag.GPU_FALLBACK)
        notes.append(f"DLA core {config.dla_core}; layers the DLA cannot run fall back to the GPU")
    return builder_config


def _targets(trt: Trt, builder_config, config: BuildConfig) -> str:
    m = trt.module
    if trt.is_rtx:
        if config.hardware_compatibility:
            raise ReidTrtError("--hardware-compatibility is for full TensorRT; TensorRT-RTX "
                               "targets compute capabilities (--compute-capability sm75 ...)")
        if not config.compute_capabilities:
            return RTX_DEFAULT_TARGETS
        builder_config.num_compute_capabilities = len(config.compute_capabilities)
        for i, cc in enumerate(config.compute_capabilities):
            try:
                builder_config.set_compute_capability(getattr(m.ComputeCapability, cc.upper()), i)
            except AttributeError:
                known = [c.lower() for c in dir(m.ComputeCapability) if c.startswith("SM")]
                raise ReidTrtError(f"--compute-capability {cc}: {trt.label} knows "
                                   f"{', '.join(known)}") from None
        return ", ".join(c.lower() for c in config.compute_capabilities)
    if config.compute_capabilities:
        raise ReidTrtError("--compute-capability is for TensorRT-RTX; full TensorRT builds for "
                           "the GPU it runs on (or --hardware-compatibility ampere_plus)")
    if config.hardware_compatibility:
        level = getattr(m.HardwareCompatibilityLevel, config.hardware_compatibility.upper(), None)
        if level is None:
            raise ReidTrtError(f"--hardware-compatibility {config.hardware_compatibility}: "
                               "choose ampere_plus or same_compute_capability")
        builder_config.hardware_compatibility_level = level
        return f"hardware compatibility {config.hardware_compatibility.lower()}"
    return "the compute capability of the build GPU"


def _timing_cache(trt: Trt, builder_config, path: Path | None):
    if path is None:
        return None
    if not trt.has_timing_cache:
        raise ReidTrtError(f"--timing-cache: {trt.label} does not use a timing cache (it would "
                           "force a GPU at build time and does not change the engine); drop it")
    data = path.read_bytes() if path.is_file() else b""
    cache = builder_config.create_timing_cache(data)
    builder_config.set_timing_cache(cache, ignore_mismatch=False)
    return cache


def engine_from_onnx(onnx_path: Path | str, output: Path | str | None = None,
                     config: BuildConfig = BuildConfig()) -> BuildResult:
    """Builds `onnx_path` into an engine and writes it with its manifest (both atomically)."""
    from reid_trt.contract import contract_of

    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise ReidTrtError(f"{onnx_path}: no such file; pass --onnx the path of an .onnx graph")
    output = check_writable(Path(output) if output else onnx_path.with_suffix(".plan"))
    if config.instancenorm not in INSTANCENORM_PATHS:
        raise ReidTrtError(f"--instancenorm {config.instancenorm}: choose native or plugin")
    contract = contract_of(onnx.load(str(onnx_path), load_external_data=False), str(onnx_path))
    precision = _check_precision(config, onnx_path)
    trt = load_trt(config.trt)
    logger = collecting_logger(trt)
    builder = trt.module.Builder(logger)
    notes: list[str] = []
    network, _parser = _parse(trt, builder, logger, onnx_path, config.instancenorm)
    in_path = instancenorm_path(network)
    if in_path not in (None, config.instancenorm):
        raise ReidTrtError(f"--instancenorm {config.instancenorm}: {trt.label} parsed the graph "
                           f"onto the {in_path} path instead")
    builder_config = _configure(trt, builder, config, notes)
    targets = _targets(trt, builder_config, config)

    image = network.get_input(0)
    static = image.shape[0] if image.shape[0] > 0 else None
    lo, opt, hi = resolve_profile(config, static)
    profile = builder.create_optimization_profile()
    rest = tuple(image.shape)[1:]
    profile.set_shape(image.name, (lo, *rest), (opt, *rest), (hi, *rest))
    builder_config.add_optimization_profile(profile)
    cache = _timing_cache(trt, builder_config, config.timing_cache)

    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, builder_config)
    seconds = time.perf_counter() - start
    if serialized is None:
        raise ReidTrtError(f"{trt.label} failed to build {onnx_path}: "
                           + "; ".join(logger.errors[-3:] or ["no reason given"]))
    engine = bytes(serialized)

    manifest = Manifest(
        trt_flavour=trt.flavour, trt_version=trt.version, precision=precision,
        profile={"min": lo, "opt": opt, "max": hi}, io=_io(network),
        contract=asdict(contract), targets=targets, instancenorm=in_path or "none",
        weighted_layers=weighted_layers(network),
        onnx_sha256=sha256_file(onnx_path), engine_bytes=len(engine),
        build_seconds=round(seconds, 2), built_at=datetime.now(timezone.utc).isoformat(
            timespec="seconds"),
        options={"workspace_mib": config.workspace_mib, "opt_level": config.opt_level,
                 "dla_core": config.dla_core, "gpu_fallback": config.dla_core is not None},
        builder_warnings=logger.warnings[:50],
    )
    with atomic_path(output) as engine_tmp:
        engine_tmp.write_bytes(engine)
        manifest.engine_sha256 = sha256_file(engine_tmp)
        with atomic_path(manifest_path(output)) as manifest_tmp:
            manifest_tmp.write_text(manifest.to_json())
    if cache is not None:
        write_bytes_atomic(config.timing_cache, bytes(builder_config.get_timing_cache().serialize()))
        notes.append(f"timing cache saved to {config.timing_cache}")
    return BuildResult(output, manifest, trt.label, notes)
