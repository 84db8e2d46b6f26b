"""Which CPU backend runs an ONNX graph fastest on this machine: measured once, remembered.

ONNX Runtime's and OpenVINO's CPU kernels rank differently by CPU: end to end on the real
osnet_x0_25 at batch 32, ONNX Runtime ran 1.4x faster than OpenVINO on a 2-core AMD EPYC and
OpenVINO 2.4x faster than ONNX Runtime on a 2-core Intel Xeon (benchmarks/results/
cpu_backend_choice_cpu.md, issue #21). A rule by vendor name would guess for every CPU neither was
measured on, so the first load of a graph on a machine times both, end to end (preprocessing
included, as Embedder runs them) at batch 1 and 32, for about a second, and remembers the winner
per machine and graph structure: weights do not change the ranking, so re-exports and
re-calibrations of one architecture reuse it.

REID_TRT_CPU_BACKEND=onnxruntime|openvino skips the measurement; REID_TRT_CACHE_DIR moves the
record (default ~/.cache/reid-trt).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import math
import os
import statistics
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from reid_trt.core.errors import ReidTrtError
from reid_trt.core.fileio import cache_dir, read_regular, write_bytes_atomic
from reid_trt.core.machine import machine_label
from reid_trt.core.onnxio import load_onnx
from reid_trt.core.options import Spin
from reid_trt.core.preprocess import graph_input
from reid_trt.core.threads import RUNTIME, ThreadSettings, for_backend
from reid_trt.core.timing import interleaved

log = logging.getLogger("reid_trt")

BACKEND_ENV = "REID_TRT_CPU_BACKEND"
CANDIDATES = ("onnxruntime", "openvino")
PROBE_BATCHES = (1, 32)
PROBE_ROUNDS = 3  # interleaved, so a burst of other load hits both backends alike
# Within this factor ONNX Runtime keeps the default: a probe cannot rank closer than that on a
# shared machine, and ONNX Runtime is the reference the exported graph was verified with.
TIE = 1.05
# 2: probes that rotate and wait out the other runtime's threads (1 timed through their spinning);
# 3: no INT8 graph on OpenVINO where its CPU INT8 kernels are wrong (core/machine.py)
# 4: keyed by the CPU's family, model and instruction sets and every thread setting
RECORD_VERSION = 4


@dataclass
class CpuChoice:
    """The backend Embedder runs an .onnx on when none is named, and why."""

    backend: str
    reason: str
    ms: dict[str, dict[str, float]] = field(default_factory=dict)  # backend -> batch -> ms
    measured: str = ""  # when the probe ran (UTC)
    cached: bool = False  # read from the record rather than measured in this process

    def __str__(self) -> str:
        when = f"; measured {self.measured[:10]}, remembered" if self.cached else ""
        return f"{self.backend} ({self.reason}{when})"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def installed() -> list[str]:
    """CPU backends for .onnx that are installed, in order of preference on a tie."""
    from importlib.util import find_spec

    return [name for name in CANDIDATES if find_spec(name) is not None]


def machine_key() -> str:
    """What the ranking depends on besides the graph: the CPU (name, family and model, and the
    instruction sets the kernels pick by, so a record from another CPU sold under the same name
    is never reused), the cores this process may use, and the versions of both runtimes (a new
    release can reorder them)."""
    parts = [machine_label(), *(f"{d}={_version(d)}" for d in ("onnxruntime", "openvino"))]
    return " | ".join(parts)


def structure_key(model) -> str:
    """The graph's architecture without its weights: operators, attributes, weight shapes and
    types, inputs and outputs."""
    g = model.graph
    h = hashlib.sha256()
    for value in (*g.input, *g.output):
        h.update(str(value.type).encode())
    for init in g.initializer:
        h.update(f"{init.data_type}{tuple(init.dims)}".encode())
    for node in g.node:
        h.update(node.op_type.encode())
        for a in node.attribute:
            h.update(str(a).encode())
    return h.hexdigest()[:32]


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def record_path() -> Path:
    return cache_dir() / "cpu_backend.json"


MAX_RECORD_BYTES = 1 << 20  # about 1 KB per graph structure and machine


def _valid_entry(entry) -> bool:
    return (isinstance(entry, dict) and entry.get("backend") in CANDIDATES
            and isinstance(entry.get("reason", ""), str)
            and isinstance(entry.get("measured", ""), str)
            and isinstance(entry.get("ms", {}), dict)
            and all(isinstance(per, dict) and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in per.values())
                for per in entry.get("ms", {}).values()))


def _read_record(path: Path) -> dict:
    """The record of choices; a missing one is empty, and a damaged one (not a file, too big, not
    JSON, another version, entries of another shape) is dropped with one warning: measured again
    and rewritten, never a traceback."""
    empty = {"version": RECORD_VERSION, "choices": {}}
    try:
        if not path.exists():
            return empty
        record = json.loads(read_regular(path, MAX_RECORD_BYTES))
        if not isinstance(record, dict) or record.get("version") != RECORD_VERSION:
            return empty  # an older layout: measured again
        choices = record.get("choices")
        if not isinstance(choices, dict):
            raise ValueError("its choices are not an object")
        bad = [key for key, entry in choices.items() if not _valid_entry(entry)]
        if bad:
            log.warning("reid-trt: dropped %d damaged entries of the CPU backend record %s; "
                        "they are measured again", len(bad), path)
            for key in bad:
                del choices[key]
        return record
    except OSError:
        return empty
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        log.warning("reid-trt: ignored the CPU backend record %s (%s); it is measured again and "
                    "rewritten", path, str(e).splitlines()[0][:100])
        return empty


def _remember(key: str, choice: CpuChoice) -> None:
    path = record_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        record = _read_record(path)
        entry = {k: v for k, v in asdict(choice).items() if k != "cached"}
        record["choices"][key] = entry
        write_bytes_atomic(path, (json.dumps(record, indent=1) + "\n").encode())
    except OSError as e:  # a read-only home: measured again next time, nothing else changes
        log.warning("reid-trt: cannot record the CPU backend choice in %s (%s)", path, e.strerror)


def _open(name: str, path: Path, model, threads: ThreadSettings = RUNTIME):
    if name == "openvino":
        from reid_trt.runtime.backends.openvino import OpenVINOBackend

        return OpenVINOBackend(path, "cpu", graph=model, threads=threads)
    from reid_trt.core.options import Device
    from reid_trt.runtime.backends.onnxruntime import OnnxRuntimeBackend

    return OnnxRuntimeBackend(path, Device("cpu"), graph=model, threads=threads)


def probe_crops(n: int) -> list[np.ndarray]:
    """Fixed synthetic crops of a detector's typical size, so the probe times the resize too."""
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (180, 72, 3), dtype=np.uint8) for _ in range(n)]


def time_backends(backends: dict, batches=PROBE_BATCHES, rounds: int = PROBE_ROUNDS) -> dict:
    """backend name -> batch -> median ms of one end-to-end call (preprocess + run), in the one
    timing loop (core/timing.interleaved: turns in rotated order, each after a quiet gap and an
    untimed call, so no backend is timed while the other's threads still hold the cores). A graph
    with a static batch is timed at that batch alone."""
    limits = next(iter(backends.values())).limits  # one graph: the same for every backend
    batches = [b for b in batches if limits.fits(b)] or [limits.static or limits.min]
    crops = probe_crops(max(batches))
    ms = {name: {} for name in backends}
    for b in batches:
        calls = {name: lambda backend=backend, batch=crops[:b]: backend.run(
            graph_input(batch, backend.contract)) for name, backend in backends.items()}
        # small batches are quick and noisier: more calls per round (at least two, so a large
        # batch has six samples, not three)
        samples = interleaved(calls, [max(2, 8 // b)] * rounds)
        for name, seconds in samples.items():
            ms[name][str(b)] = round(1e3 * statistics.median(seconds), 3)
    return ms


def rank(ms: dict[str, dict[str, float]]) -> str:
    """The backend with the least geometric mean of its slowdowns against the fastest at each
    batch size; ONNX Runtime on a tie (within TIE)."""
    batches = next(iter(ms.values())).keys()
    best = {b: min(per[b] for per in ms.values()) for b in batches}
    score = {name: math.exp(statistics.fmean(math.log(per[b] / best[b]) for b in batches))
             for name, per in ms.items()}
    winner = min(score, key=score.get)
    if "onnxruntime" in score and score["onnxruntime"] <= score[winner] * TIE:
        return "onnxruntime"
    return winner


def _describe(winner: str, ms: dict) -> str:
    other = next((n for n in ms if n != winner), None)
    if other is None:
        return "measured alone"
    batches = ", ".join(f"{ms[winner][b]:.1f} vs {ms[other][b]:.1f} ms at batch {b}"
                        for b in ms[winner])
    return f"measured here: {batches} against {other}, end to end on {machine_label()}"


def choose_cpu_backend(path: Path, spin: Spin | None = None, threads: int | None = None):
    """(backend opened on the CPU for the graph at `path`, CpuChoice). `spin` and `threads`
    (core/threads.for_backend) hold in the probe as after it; with `spin` given, ONNX Runtime
    runs it, the one backend with that setting."""
    forced = os.environ.get(BACKEND_ENV, "").strip().lower()
    have = installed()
    if forced and forced != "auto":
        if forced not in CANDIDATES:
            raise ReidTrtError(f"{BACKEND_ENV}={forced}: unknown CPU backend; set onnxruntime, "
                               "openvino or auto")
        if forced not in have:
            raise ReidTrtError(f"{BACKEND_ENV}={forced}, but {forced} is not installed; pip install "
                               f"{forced}, or unset {BACKEND_ENV}")
        return (_open(forced, path, None, for_backend(forced, spin, threads)),
                CpuChoice(forced, f"{BACKEND_ENV}={forced}"))
    if not have:
        raise ReidTrtError(f"{path.name}: no ONNX runtime installed; pip install onnxruntime "
                           "(or openvino)")
    if spin is not None and "onnxruntime" in have:
        return (_open("onnxruntime", path, None, for_backend("onnxruntime", spin, threads)),
                CpuChoice("onnxruntime", f"spin={spin} is an ONNX Runtime setting"))
    settings = {name: for_backend(name, spin, threads) for name in have}
    if len(have) == 1:
        name = have[0]
        missing = next(n for n in CANDIDATES if n != name)
        return _open(name, path, None, settings[name]), CpuChoice(name, f"{missing} is not installed")
    model = load_onnx(path, "model")
    key = f"{machine_key()} | {structure_key(model)} | {settings['onnxruntime'].key()}"
    entry = _read_record(record_path())["choices"].get(key)
    if entry and entry.get("backend") in have:
        choice = CpuChoice(entry["backend"], str(entry.get("reason", "")), entry.get("ms", {}),
                           str(entry.get("measured", "")), cached=True)
        return _open(choice.backend, path, model, settings[choice.backend]), choice
    backends = {"onnxruntime": _open("onnxruntime", path, model, settings["onnxruntime"])}
    try:
        backends["openvino"] = _open("openvino", path, model, settings["openvino"])
    except (ReidTrtError, RuntimeError) as e:  # a graph OpenVINO cannot compile runs on ORT
        choice = CpuChoice("onnxruntime", f"openvino cannot run it: {e}", measured=_now())
        _remember(key, choice)
        return backends["onnxruntime"], choice
    start = time.perf_counter()
    ms = time_backends(backends)
    winner = rank(ms)
    choice = CpuChoice(winner, _describe(winner, ms), ms, _now())
    for name, backend in backends.items():
        if name != winner:
            backend.close()
    log.info("reid-trt: %s runs %s (probe %.1f s)", winner, path.name, time.perf_counter() - start)
    _remember(key, choice)
    return backends[winner], choice
