"""Torch traces kept for the next export of the same checkpoint: in this process and on disk.

Exporting the same checkpoint again (fp32 then fp16, another input format, `--normalize`, `--for`,
`--batch`, `onnx` then `trt -w`, the demo's three graphs, another command, the test processes)
reuses the trace, which is 90% of an export's time (20-40 s on a 2-core CPU): what differs between
those is added to the trace afterwards (onnx_export.with_contract). A trace is keyed by everything
that shapes it: the checkpoint's sha256, the variant and input size (traced_contract), the opset,
the versions of the tools that trace and a hash of reid-trt's own code that does. A trace read
back is still verified against PyTorch like any export before a graph is written; one that fails
is discarded (`forget`), so a bad file in the cache costs one export a second trace, never every
export after it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import onnx

from reid_trt.core.contract import Contract
from reid_trt.core.errors import ExportError
from reid_trt.core.fileio import cache_dir, read_regular, write_bytes_atomic

log = logging.getLogger("reid_trt")

# In this process: bounded by size, the least recently used going first (a trace of osnet_x0_25
# is about 1 MB, of osnet_x1_0 about 9 MB; eight traces, as it was, let the test suite trace the
# same checkpoint six times).
_TRACES: OrderedDict[tuple, bytes] = OrderedDict()
KEEP_TRACE_BYTES = 128 << 20
# On disk, the cache folder's traces/, likewise.
KEEP_DISK_TRACE_BYTES = 512 << 20
# A trace no larger than this is read back (osnet_x1_0's is about 9 MB): a bigger file in the
# folder is not one of ours and is never read whole.
MAX_TRACE_BYTES = 256 << 20
# How long an export waits for another process tracing the same checkpoint (a trace takes up to
# about 40 s on a 2-core CPU) before it gives up with an error saying which lock is held.
LOCK_WAIT_S = 300.0
LOCK_POLL_S = 0.1
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


def traced_contract(contract: Contract) -> Contract:
    """What the trace of an export under `contract` is made for: the model alone, normalised
    float in, raw embeddings out, default names, FP32 (onnx_export.with_contract adds the rest)."""
    plain = Contract(contract.variant)
    return replace(contract, precision="fp32", io_dtype="fp32", input_format="float",
                   normalized=False, input_name=plain.input_name, output_name=plain.output_name)


def trace_key(contract: Contract, opset: int) -> tuple | None:
    """The cache key of an export of the checkpoint `contract.weights_sha256`, or None when
    the contract names no checkpoint (the model cannot be told apart from another)."""
    if not contract.weights_sha256:
        return None
    return (repr(traced_contract(contract)), opset, _toolchain())


def disk_path(key: tuple) -> Path:
    digest = hashlib.sha256(repr(key).encode()).hexdigest()[:32]
    return cache_dir() / "traces" / f"{digest}.onnx"


def _discard(path: Path, why: str) -> None:
    log.warning("reid-trt: discarded the kept trace %s (%s); tracing again", path, why)
    with contextlib.suppress(OSError):
        path.unlink()


def read_kept(key: tuple) -> tuple[bytes, onnx.ModelProto] | None:
    """The kept trace of `key`, as bytes and parsed; None if there is none to use. A file that is
    not a regular file of a sane size, or not a graph, is discarded (one warning line)."""
    path = disk_path(key)
    try:
        data = read_regular(path, MAX_TRACE_BYTES)
    except OSError:
        return None  # none, or unreadable here: traced again, the file left to its owner
    except ValueError as e:  # a folder, a pipe, a file far bigger than any trace
        _discard(path, str(e))
        return None
    try:
        model = onnx.load_from_string(data)
    except Exception:  # protobuf's DecodeError and others: a damaged file
        _discard(path, "damaged")
        return None
    if not model.graph.output or not model.graph.node:
        _discard(path, "no graph in it")
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: evicted last
    return data, model


def keep(key: tuple, data: bytes) -> None:
    """Best effort: a cache folder that cannot be written only costs the next process a trace."""
    path = disk_path(key)
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
    _TRACES.move_to_end(key)
    while sum(map(len, _TRACES.values())) > KEEP_TRACE_BYTES and len(_TRACES) > 1:
        _TRACES.popitem(last=False)


def is_kept(key: tuple) -> bool:
    """Whether an export of `key` now would use a kept trace rather than make one."""
    return key in _TRACES or disk_path(key).is_file()


def forget(key: tuple) -> None:
    """Drops the trace of `key` from this process and from disk: it failed verification."""
    _TRACES.pop(key, None)
    path = disk_path(key)
    if path.exists():
        _discard(path, "its graph disagreed with the checkpoint it is kept for")


@contextlib.contextmanager
def tracing(key: tuple, wait_s: float | None = None):
    """Held while `key` is traced: a process exporting the same checkpoint meanwhile (two
    commands at once, test processes) waits and reads the trace instead of making its own. The
    wait is said in one line and bounded (`wait_s`, default LOCK_WAIT_S); without a writable
    cache folder, nothing is held."""
    path = disk_path(key).with_suffix(".lock")
    try:
        import fcntl  # POSIX; elsewhere two processes may both trace

        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and not path.is_file():
            raise OSError("the lock is not a regular file")
        lock = open(path, "w")  # noqa: SIM115 (held across the yield)
    except (ImportError, OSError):
        yield
        return
    wait_s = LOCK_WAIT_S if wait_s is None else wait_s
    with lock:
        start, said = time.monotonic(), False
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - start
                if waited >= wait_s:
                    raise ExportError(
                        f"another process has been tracing the same checkpoint for {waited:.0f} s "
                        f"(it holds {path}); let it finish and run this again, or stop it") \
                        from None
                if not said:
                    log.warning("reid-trt: waiting for another process tracing the same "
                                "checkpoint (lock %s)", path)
                    said = True
                time.sleep(LOCK_POLL_S)
        yield


def cached_trace(key: tuple, make: Callable[[], onnx.ModelProto]) -> onnx.ModelProto:
    """The trace of `key`: from this process, else from disk (without waiting on anyone), else
    made by `make` under the lock (reading it once more after a wait: the holder may have
    written it) and kept."""
    if key in _TRACES:
        _TRACES.move_to_end(key)
        return onnx.load_from_string(_TRACES[key])
    kept = read_kept(key)
    if kept is None:
        with tracing(key):
            kept = read_kept(key)
            if kept is None:
                traced = make()
                data = traced.SerializeToString()
                keep(key, data)
                kept = data, traced
    _remember(key, kept[0])
    return kept[1]
