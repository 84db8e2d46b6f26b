"""torch -> ONNX for OSNet: export, simplify, precision, metadata and graph checks."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import logging
import os
import warnings
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

import onnx
import torch

from reid_trt.core import defaults
from reid_trt.core.contract import Contract
from reid_trt.core.errors import ExportError, MissingDependencyError, opt
from reid_trt.core.fileio import cache_dir, write_bytes_atomic
from reid_trt.export.checks import check_graph
from reid_trt.export.graph import ExportGraph, example_input
from reid_trt.export.precision import simplified as _simplify
from reid_trt.export.precision import to_fp16
from reid_trt.models import get_variant

MAX_DYNAMIC_BATCH = 4096


def _torch_export(graph: ExportGraph, contract: Contract, batch: int | None,
                  opset: int) -> onnx.ModelProto:
    dynamic = batch is None
    x = example_input(contract, batch=2 if dynamic else batch)
    dynamic_shapes = {"x": {0: torch.export.Dim("batch", min=1, max=MAX_DYNAMIC_BATCH)}} \
        if dynamic else None
    log = io.StringIO()
    try:
        # The exporter prints progress and warns about its own internals: keep the CLI quiet.
        with contextlib.redirect_stdout(log), warnings.catch_warnings(), _quiet("torch.onnx"):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(graph, (x,), dynamo=True, opset_version=opset,
                                        input_names=[contract.input_name],
                                        output_names=[contract.output_name],
                                        dynamic_shapes=dynamic_shapes, optimize=True,
                                        external_data=False)
    except ModuleNotFoundError as e:
        raise MissingDependencyError(e.name or "onnxscript", "export", "torch.onnx export") from e
    except Exception as e:
        raise ExportError(f"torch.onnx.export failed for {contract.variant}: "
                          f"{type(e).__name__}: {str(e).splitlines()[0][:300]}") from e
    model = program.model_proto
    got = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if got != opset:
        raise ExportError(f"{opt('opset')} {opset}: the exporter produced opset {got} (conversion "
                          f"failed); use {opt('opset')} {defaults.ONNX_OPSET} or newer")
    if dynamic:  # name the batch axis identically on input and output
        for value in (model.graph.input[0], model.graph.output[0]):
            value.type.tensor_type.shape.dim[0].dim_param = "batch"
    return model


@contextlib.contextmanager
def _quiet(logger_name: str):
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


# Torch exports kept in this process, keyed by everything that shapes the traced graph: exporting
# the same checkpoint again (fp32 then fp16, `onnx` then `trt -w`, the demo's three graphs) reuses
# the trace, which is 90% of an export's time. Bounded by size, the least recently used going
# first: a trace of osnet_x0_25 is about 1 MB, of osnet_x1_0 about 9 MB. (Eight traces, as it
# was, let a process exporting many models trace the same checkpoint six times: the test suite.)
_TRACES: OrderedDict[tuple, bytes] = OrderedDict()
KEEP_TRACE_BYTES = 128 << 20
# And on disk (the cache folder's traces/), for the next process: `reid-export onnx` then
# `reid-export trt -w` of one checkpoint, a re-run, traced 20-40 s each on a 2-core CPU. A trace
# read back is still verified against PyTorch like any export before a graph is written.
KEEP_DISK_TRACE_BYTES = 512 << 20
# The packages whose sources a trace depends on besides its key: a change to any file of them (a
# new fold, another wrapper) must not meet a trace made before it, whatever the version says.
_TRACED_CODE = ("export", "models")


@functools.cache
def _toolchain() -> str:
    """Versions of what writes a trace, and a hash of reid-trt's own code that does."""
    from importlib import metadata

    root = Path(__file__).resolve().parents[1]
    code = hashlib.sha256()
    for package in _TRACED_CODE:
        for source in sorted((root / package).glob("*.py")):
            code.update(source.read_bytes())
    versions = []
    for dist in ("torch", "onnxscript", "onnx", "onnxslim"):
        try:
            versions.append(f"{dist}={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{dist}=?")
    return f"{' '.join(versions)} code={code.hexdigest()[:16]}"


def trace_key(contract: Contract, batch: int | None, opset: int) -> tuple | None:
    """The cache key of an export of the checkpoint `contract.weights_sha256`, or None when
    the contract names no checkpoint (the model cannot be told apart from another)."""
    if not contract.weights_sha256:
        return None
    float32 = replace(contract, precision="fp32", io_dtype="fp32")
    return (repr(float32), batch, opset, _toolchain())


def _disk_trace(key: tuple) -> Path:
    digest = hashlib.sha256(repr(key).encode()).hexdigest()[:32]
    return cache_dir() / "traces" / f"{digest}.onnx"


def _read_disk_trace(key: tuple) -> tuple[bytes, onnx.ModelProto] | None:
    """The kept trace of `key`, as bytes and parsed; None if there is none to use."""
    path = _disk_trace(key)
    try:
        data = path.read_bytes()
        model = onnx.load_from_string(data)  # a damaged file is traced again, not used
        os.utime(path)  # recently used: evicted last
        return data, model
    except Exception:  # missing, unreadable, damaged: the trace is made again
        return None


def _keep_disk_trace(key: tuple, data: bytes) -> None:
    """Best effort: a cache folder that cannot be written only costs the next process a trace."""
    path = _disk_trace(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, data)
        kept = sorted(path.parent.glob("*.onnx"), key=lambda p: p.stat().st_mtime, reverse=True)
        total = 0
        for old in kept:
            total += old.stat().st_size
            if total > KEEP_DISK_TRACE_BYTES and old != path:
                old.unlink(missing_ok=True)
                # its lock too (a process still holding it, rare for the least recently
                # used trace, costs a second trace only: both write whole files)
                old.with_suffix(".lock").unlink(missing_ok=True)
    except OSError:
        pass


def _remember(key: tuple, data: bytes) -> None:
    _TRACES[key] = data
    while sum(map(len, _TRACES.values())) > KEEP_TRACE_BYTES and len(_TRACES) > 1:
        _TRACES.popitem(last=False)


@contextlib.contextmanager
def _tracing(key: tuple):
    """Held while `key` is traced: a process exporting the same checkpoint meanwhile (two
    commands at once, test processes) waits and reads the trace instead of making its own.
    Without a writable cache folder, nothing is held."""
    path = _disk_trace(key).with_suffix(".lock")
    try:
        import fcntl  # POSIX; elsewhere two processes may both trace

        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(path, "w")  # noqa: SIM115 (held across the yield)
    except (ImportError, OSError):
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def traced_graph(model: torch.nn.Module, contract: Contract, batch: int | None, opset: int,
                 key: tuple | None = None) -> onnx.ModelProto:
    """The simplified FP32 graph of `model` (from the caches when `key` is in them)."""
    if key is None:
        return _simplify(_torch_export(ExportGraph(model, contract).eval(), contract, batch, opset))
    if key in _TRACES:
        _TRACES.move_to_end(key)
        return onnx.load_from_string(_TRACES[key])
    with _tracing(key):
        kept = _read_disk_trace(key)
        if kept is None:
            graph = ExportGraph(model, contract).eval()
            traced = _simplify(_torch_export(graph, contract, batch, opset))
            data = traced.SerializeToString()
            _keep_disk_trace(key, data)
        else:
            data, traced = kept
    _remember(key, data)
    return traced


def onnx_from_model(model: torch.nn.Module, contract: Contract, batch: int | None = None,
                    opset: int = defaults.ONNX_OPSET, trace: tuple | None = None
                    ) -> onnx.ModelProto:
    """A clean, simplified ONNX graph of `model` that honours `contract`.

    Args:
        model: an eval-mode OSNet of `contract.variant` (not modified).
        contract: input format, normalisation, precision and I/O dtype of the graph.
        batch: a static batch size, or None for a dynamic batch axis.
        opset: the ONNX opset to target.
        trace: `trace_key(...)` when `model` is exactly the checkpoint the contract names: its
            trace is then kept and reused within this process.
    """
    onnx_model = traced_graph(model, contract, batch, opset, trace)
    if contract.precision == "fp16":
        # Simplified again: the converter appends its Casts out of topological order.
        onnx_model = _simplify(to_fp16(onnx_model, keep_fp32_io=contract.io_dtype == "fp32"))
    elif contract.precision != "fp32":
        raise ExportError(f"{opt('precision')} {contract.precision}: export writes fp32 or fp16 graphs; "
                          "INT8 graphs come from 'reid-export calibrate'")
    check_graph(onnx_model, get_variant(contract.variant).instance_norms, batch is None)
    onnx_model.producer_name = "reid-trt"
    onnx_model.producer_version = contract.reid_trt_version
    del onnx_model.metadata_props[:]
    onnx.helper.set_model_props(onnx_model, contract.to_metadata())
    onnx.checker.check_model(onnx_model)
    return onnx_model
