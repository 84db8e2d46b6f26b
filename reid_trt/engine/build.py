"""Strongly typed TensorRT engines from ONNX: the graph's tensor types decide the precision."""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import onnx

from reid_trt.core.contract import Int8Record, contract_of
from reid_trt.core.errors import ReidTrtError, opt
from reid_trt.core.fileio import atomic_paths, check_output, sha256_file, write_bytes_atomic
from reid_trt.core.machine import cuda_compute_capability
from reid_trt.core.manifest import (
    ENGINE_SUFFIXES,
    IOTensor,
    Manifest,
    Profile,
    layer_precision,
    manifest_path,
)
from reid_trt.core.onnxio import graph_precision, is_fp16_qdq, load_onnx
from reid_trt.core.options import (
    MAX_WORKSPACE_MIB,
    ConfigError,
    HardwareCompatibility,
    InstanceNormPath,
    Precision,
    TrtFlavour,
    batch_size,
    bounded,
    coerce_choices,
    described,
)
from reid_trt.core.trt_compat import RTX_DEFAULT_TARGETS, Trt, collecting_logger, load_trt, sm
from reid_trt.engine.layers import engine_layer_report

DEFAULT_PROFILE = (1, 16, 64)  # batch sizes: trackers embed 1 to a few dozen boxes per frame
MAX_DLA_CORES = 2  # Orin and Xavier have two


@dataclass(frozen=True)
class BuildConfig:
    """Options of `reid-export trt`, checked on construction; None means the default (or, for
    precision, the graph's own)."""

    precision: Precision | None = described(
        None, f"With {opt('onnx')}: the graph's (default); fp16 on an fp32 graph converts it "
        "first (InstanceNorm and L2 kept fp32) and verifies it against the fp32 graph.")
    min_batch: int | None = described(None, "Profile minimum batch [1].")
    opt_batch: int | None = described(None, "Profile optimum batch [16].")
    max_batch: int | None = described(None, "Profile maximum batch [64].")
    timing_cache: Path | None = described(None, "Loaded if present, saved after.")
    workspace_mib: int | None = described(None, "Workspace limit in MiB.")
    opt_level: int | None = described(None, "Builder optimisation level 0-5.")
    dla_core: int | None = described(None, "Jetson DLA core (GPU fallback on).")
    trt: TrtFlavour = described(TrtFlavour.AUTO, "auto: full TensorRT first, else TensorRT-RTX.")
    instancenorm: InstanceNormPath = described(InstanceNormPath.NATIVE, "InstanceNorm layer.")
    compute_capabilities: tuple[str, ...] = described(
        (), "TensorRT-RTX target, repeatable (e.g. sm75 for Turing; current: the GPU building "
        "it, e.g. Hopper, which the named targets leave out).")
    hardware_compatibility: HardwareCompatibility | None = described(
        None, "Full TensorRT: ampere_plus for one engine across Ampere and later.")
    # INT8 graphs: precision of their unquantized layers in the engine (None: what calibration
    # recorded in the graph, else fp16). The graph on disk keeps them FP32 (right everywhere).
    unquantized: Precision | None = described(
        None, "INT8: the engine's precision for the layers left unquantized [fp16; for a graph, "
        "what calibrate recorded]. The .onnx keeps them fp32.")

    def __post_init__(self):
        set_ = object.__setattr__
        coerce_choices(self, ("precision", "hardware_compatibility", "unquantized"),
                       precision=Precision, trt=TrtFlavour, instancenorm=InstanceNormPath,
                       hardware_compatibility=HardwareCompatibility, unquantized=Precision)
        if self.unquantized == Precision.INT8:
            raise ConfigError("unquantized", "int8", "choose fp16 or fp32")
        for name in ("min_batch", "opt_batch", "max_batch"):
            if getattr(self, name) is not None:
                batch_size(getattr(self, name), name)
        if self.workspace_mib is not None:
            bounded(self.workspace_mib, "workspace_mib", 1, MAX_WORKSPACE_MIB,
                    "MiB; more than any GPU has")
        if self.opt_level is not None:
            bounded(self.opt_level, "opt_level", 0, 5, "TensorRT's builder levels; default 3")
        if self.dla_core is not None:
            bounded(self.dla_core, "dla_core", 0, MAX_DLA_CORES - 1, "Jetson DLA cores")
        set_(self, "compute_capabilities", tuple(self.compute_capabilities))
        for cc in self.compute_capabilities:
            if not re.fullmatch(r"sm\d{2,3}|current", str(cc).lower()):
                raise ConfigError("compute_capabilities", cc, "write targets as smXX, e.g. sm86, "
                                  "or current for the GPU building the engine")
        if self.timing_cache is not None and Path(self.timing_cache).is_dir():
            raise ConfigError("timing_cache", str(self.timing_cache), "is a directory; pass a "
                              "file path")
        resolve_profile(self, None)  # an inconsistent min/opt/max fails now, not after export


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
                f"the graph has a static batch of {static_batch}; drop {opt('min_batch')}/"
                f"{opt('opt_batch')}/{opt('max_batch')} or export with {opt('dynamic_batch')}")
        return (static_batch,) * 3
    lo, best, hi = (g if g is not None else d for g, d in zip(given, DEFAULT_PROFILE, strict=True))
    if config.max_batch is None and config.opt_batch is not None:
        hi = max(hi, best)
    if config.min_batch is None and config.opt_batch is not None:
        lo = min(lo, best)
    if config.max_batch is None and config.min_batch is not None:
        hi = max(hi, lo)
    if config.opt_batch is None:  # the default optimum follows a profile given around it
        best = min(max(best, lo), hi)
    if not 1 <= lo <= best <= hi:
        said = ", ".join(f"{opt(name)} {value}" + ("" if value == given_value else " (default)")
                         for name, value, given_value in zip(
                             ("min_batch", "opt_batch", "max_batch"), (lo, best, hi), given,
                             strict=True))
        raise ReidTrtError(f"{said}: the batch profile needs min <= opt <= max; give "
                           f"{opt('min_batch')} no larger than {opt('max_batch')}")
    return lo, best, hi


def _check_precision(config: BuildConfig, onnx_path: Path, model) -> str:
    actual = graph_precision(model)
    if config.precision not in (None, actual):
        hint = ("'reid-export calibrate'" if config.precision == "int8"
                else f"'reid-export onnx --precision {config.precision}'")
        raise ReidTrtError(
            f"{onnx_path} is an {actual} graph but {opt('precision')} {config.precision} was given: "
            f"strongly typed engines take their precision from the graph; make an "
            f"{config.precision} graph with {hint}, or drop {opt('precision')}")
    return actual


def _parse(trt: Trt, builder, logger, onnx_path: Path, instancenorm: str):
    network = builder.create_network(trt.strongly_typed_flags())
    parser = trt.module.OnnxParser(network, logger)
    flag = trt.module.OnnxParserFlag.NATIVE_INSTANCENORM
    if instancenorm == InstanceNormPath.NATIVE:
        parser.set_flag(flag)
    else:
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


def precision_counts(network) -> dict[str, int]:
    """How many convolution and matrix-multiply layers the strongly typed network computes in
    each precision: 'int8' where both data and weights come from DequantizeLinear (TensorRT
    fuses them into an INT8 kernel), else the layer's float type. The graph's types decide this,
    so it is known before any GPU builds or runs the engine."""
    produced_by = {}
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        for j in range(layer.num_outputs):
            produced_by[layer.get_output(j).name] = layer.type.name
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
            kind = layer_precision(layer.get_output(0).dtype.name)
        counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items()))


def _io(network) -> list[IOTensor]:
    tensors = [("input", network.get_input(i)) for i in range(network.num_inputs)]
    tensors += [("output", network.get_output(i)) for i in range(network.num_outputs)]
    return [IOTensor(t.name, mode, t.dtype.name, list(t.shape)) for mode, t in tensors]


def _configure(trt: Trt, builder, config: BuildConfig, notes: list[str]):
    m = trt.module
    builder_config = builder.create_builder_config()
    if config.workspace_mib is not None:
        builder_config.set_memory_pool_limit(m.MemoryPoolType.WORKSPACE, config.workspace_mib << 20)
    if config.opt_level is not None:
        builder_config.builder_optimization_level = config.opt_level
    if config.dla_core is not None:
        if config.dla_core >= builder.num_DLA_cores:
            raise ReidTrtError(f"{opt('dla_core')} {config.dla_core}: this machine has "
                               f"{builder.num_DLA_cores} DLA cores")
        builder_config.default_device_type = m.DeviceType.DLA
        builder_config.DLA_core = config.dla_core
        builder_config.set_flag(m.BuilderFlag.GPU_FALLBACK)
        notes.append(f"DLA core {config.dla_core}; layers the DLA cannot run fall back to the GPU")
    return builder_config


def _targets(trt: Trt, builder_config, config: BuildConfig) -> str:
    m = trt.module
    if trt.is_rtx:
        if not config.compute_capabilities:
            return RTX_DEFAULT_TARGETS
        builder_config.num_compute_capabilities = len(config.compute_capabilities)
        for i, cc in enumerate(config.compute_capabilities):
            builder_config.set_compute_capability(getattr(m.ComputeCapability, cc.upper()), i)
        return ", ".join(c.lower() for c in config.compute_capabilities)
    if config.hardware_compatibility:
        level = getattr(m.HardwareCompatibilityLevel, config.hardware_compatibility.value.upper())
        builder_config.hardware_compatibility_level = level
        return f"hardware compatibility {config.hardware_compatibility}"
    return "the compute capability of the build GPU"


def preflight(config: BuildConfig) -> Trt:
    """The TensorRT to build with, once every option is known to suit it: called before any
    export or calibration, so a build option that cannot work leaves nothing behind."""
    trt = load_trt(config.trt)
    if config.dla_core is not None and not trt.has_dla:
        raise ConfigError("dla_core", config.dla_core, f"{trt.label} has no DLA (Jetson only); "
                          "build with full TensorRT on the Jetson, or drop it")
    if config.timing_cache is not None and not trt.has_timing_cache:
        raise ConfigError("timing_cache", str(config.timing_cache), f"{trt.label} does not use a "
                          "timing cache (it would force a GPU at build time and does not change "
                          "the engine); drop it")
    if config.instancenorm == InstanceNormPath.PLUGIN and not trt.has_instancenorm_plugin:
        raise ConfigError("instancenorm", "plugin", f"{trt.label} has no InstanceNormalization "
                          "plugin (its parser always uses the native layer); use native")
    if trt.is_rtx and config.hardware_compatibility:
        raise ConfigError("hardware_compatibility", str(config.hardware_compatibility),
                          "is for full TensorRT; TensorRT-RTX targets compute capabilities")
    if not trt.is_rtx and config.compute_capabilities:
        raise ConfigError("compute_capabilities", ",".join(config.compute_capabilities),
                          "are TensorRT-RTX targets; full TensorRT builds for the GPU it runs on "
                          "(or hardware_compatibility ampere_plus)")
    if trt.is_rtx:
        known = [sm(cc) for cc in trt.rtx_targets] + ["current"]
        for cc in config.compute_capabilities:
            if cc.lower() not in known:
                raise ConfigError("compute_capabilities", cc, f"{trt.label} knows "
                                  f"{', '.join(known)}")
        if "current" in config.compute_capabilities:
            cc = cuda_compute_capability()
            if cc is None:
                raise ConfigError("compute_capabilities", "current", "needs a GPU at build time "
                                  "and none answers here; name the targets instead (e.g. sm86)")
            if not trt.runs_on(cc):
                # TensorRT-RTX builds such an engine, and then cannot load it.
                raise ConfigError("compute_capabilities", "current", f"this GPU is {sm(cc)}, "
                                  f"which {trt.label} does not run on; here build with "
                                  "full TensorRT 10+ (trt='tensorrt'), or name the targets of "
                                  "the GPUs that will run the engine")
    return trt


def check_engine_output(output: Path, inputs: list[Path | None]) -> Path:
    """The engine path and its manifest, checked before anything is built."""
    return check_output(output, opt("output"), ENGINE_SUFFIXES, inputs=inputs,
                        side_files=[manifest_path(Path(output))])


def _timing_cache(trt: Trt, builder_config, path: Path | None):
    if path is None:
        return None
    try:
        data = path.read_bytes() if path.is_file() else b""
    except OSError as e:
        raise ReidTrtError(f"{opt('timing_cache')} {path} cannot be read ({e.strerror})") from None
    cache = builder_config.create_timing_cache(data)
    builder_config.set_timing_cache(cache, ignore_mismatch=False)
    return cache


def engine_from_onnx(onnx_path: Path | str, output: Path | str | None = None,
                     config: BuildConfig = BuildConfig(), conversion: dict | None = None
                     ) -> BuildResult:
    """Builds `onnx_path` into an engine and writes it with its manifest (both atomically).
    `conversion`: how the graph was made from another (recorded in the manifest)."""
    onnx_path = Path(onnx_path)
    model = load_onnx(onnx_path)
    output = check_engine_output(Path(output) if output else onnx_path.with_suffix(".plan"),
                                 [onnx_path])
    contract = contract_of(model, str(onnx_path))
    precision = _check_precision(config, onnx_path, model)
    remainder = _int8_remainder(config, model, onnx_path) if precision == "int8" else None
    trt = preflight(config)
    with tempfile.TemporaryDirectory() as tmp:
        parsed = onnx_path
        if remainder == Precision.FP16 and not is_fp16_qdq(model):
            from reid_trt.export.precision import qdq_to_fp16

            parsed = Path(tmp) / "fp16_remainder.onnx"
            onnx.save(qdq_to_fp16(model), parsed)
        return _build(trt, onnx_path, parsed, output, config, contract, precision, remainder,
                      conversion, model)


def _int8_remainder(config: BuildConfig, model, onnx_path: Path) -> Precision:
    """The precision the engine computes an INT8 graph's unquantized layers in."""
    record = Int8Record.of(model)
    recorded = record.engine_unquantized if record else None
    wanted = config.unquantized or (Precision(recorded) if recorded in ("fp16", "fp32")
                                    else Precision.FP16)
    if wanted == Precision.FP32 and is_fp16_qdq(model):
        raise ConfigError("unquantized", "fp32", f"{onnx_path} already computes its unquantized "
                          "layers in FP16; calibrate again to get an FP32 remainder")
    return wanted


def _build(trt: Trt, onnx_path: Path, parsed: Path, output: Path, config: BuildConfig,
           contract, precision: str, remainder: Precision | None,
           conversion: dict | None, model: onnx.ModelProto) -> BuildResult:
    logger = collecting_logger(trt)
    builder = trt.module.Builder(logger)
    notes: list[str] = []
    if remainder is not None:
        notes.append(f"INT8 graph: its unquantized layers run in {remainder}")
    network, _parser = _parse(trt, builder, logger, parsed, config.instancenorm)
    in_path = instancenorm_path(network)
    if in_path not in (None, config.instancenorm):
        raise ReidTrtError(f"{opt('instancenorm')} {config.instancenorm}: {trt.label} parsed the graph "
                           f"onto the {in_path} path instead")
    builder_config = _configure(trt, builder, config, notes)
    # Detailed layer information: the builder then reports each engine layer's types, which is
    # how the manifest knows what the engine (not the graph) runs in INT8.
    builder_config.profiling_verbosity = trt.module.ProfilingVerbosity.DETAILED
    targets = _targets(trt, builder_config, config)

    image = network.get_input(0)
    static = image.shape[0] if image.shape[0] > 0 else None
    lo, best, hi = resolve_profile(config, static)
    profile = builder.create_optimization_profile()
    rest = tuple(image.shape)[1:]
    profile.set_shape(image.name, (lo, *rest), (best, *rest), (hi, *rest))
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
        trt_flavour=TrtFlavour(trt.flavour), trt_version=trt.version, precision=Precision(precision),
        profile=Profile(lo, best, hi), io=_io(network), contract=contract, targets=targets,
        instancenorm=in_path or "none",
        weighted_layers=precision_counts(network), unquantized=str(remainder or ""),
        engine_layers=engine_layer_report(logger.layers, model),
        onnx_sha256=sha256_file(onnx_path), engine_bytes=len(engine),
        build_seconds=round(seconds, 2), built_at=datetime.now(timezone.utc).isoformat(
            timespec="seconds"),
        options={"workspace_mib": config.workspace_mib, "opt_level": config.opt_level,
                 "dla_core": config.dla_core, "gpu_fallback": config.dla_core is not None,
                 **({"fp16_conversion": conversion} if conversion else {})},
        builder_warnings=logger.warnings[:50],
    )
    with atomic_paths(output, manifest_path(output)) as (engine_tmp, manifest_tmp):
        engine_tmp.write_bytes(engine)
        manifest.engine_sha256 = sha256_file(engine_tmp)
        manifest_tmp.write_text(manifest.to_json())
    if cache is not None:
        write_bytes_atomic(config.timing_cache, bytes(builder_config.get_timing_cache().serialize()))
        notes.append(f"timing cache saved to {config.timing_cache}")
    return BuildResult(output, manifest, trt.label, notes)
