"""One benchmark run: subjects (engines, graphs, checkpoints) timed, compared and scored together.

Every subject is an `Embedder`, so all of them use the same preprocessing and batching; the
PyTorch checkpoint is the baseline. Subjects are timed in interleaved rounds (a few runs of each
in turn, repeated) so that a machine slowing down mid-run hits all of them alike and the ratios
stay meaningful on noisy machines.
"""

from __future__ import annotations

import datetime
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reid_trt.bench.timing import summarize, time_calls
from reid_trt.core.errors import ReidTrtError, opt
from reid_trt.core.machine import cpu_name
from reid_trt.core.options import ConfigError, batch_size, bounded, parse_device
from reid_trt.core.version import __version__
from reid_trt.runtime.backends.base import Backend, Profiled
from reid_trt.runtime.embedder import Embedder

Progress = Callable[[str, int, int], None]  # (what is running, steps done, steps in all)


MAX_CROPS = 10_000  # parity crops are held in memory, decoded
MAX_RUNS = 10_000
MAX_CLIENTS = 256  # threads in this process


@dataclass(frozen=True)
class BenchConfig:
    """Settings of one reid-bench run, checked on construction."""

    batches: tuple[int, ...] = (1, 8, 32, 64)
    warmup: int = 3  # untimed calls per subject and batch size (allocation, autotuning)
    runs: int = 30  # timed calls per subject, batch size and mode
    rounds: int = 3  # the runs are split into this many interleaved rounds
    device: str | None = None
    crops_dir: Path | None = None  # real crops for parity and timing (default: generated ones)
    num_crops: int = 64
    topk: int = 5
    dataset: tuple[str, Path] | None = None  # (kind, root) of a labelled re-ID dataset
    max_queries: int | None = None
    variant: str = "auto"
    trust_checkpoint: bool = False
    companion_onnx: bool = True  # an engine's source .onnx, found beside it, runs too
    clients: int = 0  # concurrent clients per subject (0: no concurrent load)
    client_requests: int = 20  # calls per client
    client_batch: int = 4  # crops per call (the boxes of a frame)

    def __post_init__(self):
        if not self.batches:
            raise ConfigError("batches", self.batches, "give at least one batch size")
        for b in self.batches:
            batch_size(b, "batches")
        bounded(self.runs, "runs", 1, MAX_RUNS)
        bounded(self.warmup, "warmup", 0, MAX_RUNS)
        bounded(self.rounds, "rounds", 1, MAX_RUNS)
        bounded(self.num_crops, "num_crops", 2, MAX_CROPS, "parity compares neighbours, which "
                "needs two crops or more")
        bounded(self.topk, "topk", 1, 1000)
        if self.max_queries is not None:
            bounded(self.max_queries, "max_queries", 1)
        if self.device is not None:
            parse_device(self.device)
        bounded(self.clients, "clients", 0, MAX_CLIENTS)
        bounded(self.client_requests, "client_requests", 1, MAX_RUNS)
        batch_size(self.client_batch, "client_batch")


@dataclass
class Subject:
    label: str
    role: str  # "baseline" (PyTorch eager, from --weights) or "subject"
    path: Path
    embedder: Embedder
    same_weights: bool | None = None  # built from the --weights file? None: unknown
    result: dict = field(default_factory=dict)


def companion_onnx(engine: Path) -> Path | None:
    """The .onnx an engine was built from, if it lies beside it (matched by sha256)."""
    from reid_trt.core.fileio import sha256_file
    from reid_trt.core.manifest import read_manifest

    wanted = read_manifest(engine).onnx_sha256
    candidates = sorted(engine.parent.glob(f"{engine.stem.split('.')[0]}*.onnx"))
    return next((p for p in candidates if sha256_file(p) == wanted), None)


def compute_call(backend: Backend, batch: np.ndarray) -> Callable[[], object]:
    """One inference on an already preprocessed batch: the model alone where the backend can
    stage it (Profiled), else one `run` (a served model: the request, network included)."""
    if isinstance(backend, Profiled):
        return backend.compute_call(batch)
    return lambda: backend.run(batch)


def open_subjects(engines: list[Path], graphs: list[Path], weights: Path | None,
                  config: BenchConfig, served: list[str] = (),
                  openvino: list[Path] = ()) -> list[Subject]:
    from reid_trt.core.fileio import sha256_file

    if not (engines or graphs or weights or served or openvino):
        raise ReidTrtError(f"nothing to benchmark: pass {opt('engine')} PLAN, {opt('onnx')} MODEL, "
                           f"{opt('openvino')} MODEL, {opt('triton')} HOST:PORT/MODEL and/or "
                           f"{opt('weights')} CHECKPOINT")
    paths = [*engines, *graphs]
    if config.companion_onnx:
        for engine in engines:
            source = companion_onnx(engine) if Path(engine).is_file() else None
            if source is not None and source not in paths:
                paths.append(source)
    weights_sha = sha256_file(weights) if weights and Path(weights).is_file() else None
    subjects = []
    if weights is not None:
        embedder = Embedder(weights, device=config.device, variant=config.variant,
                            trust_checkpoint=config.trust_checkpoint)
        subjects.append(Subject("pytorch fp32", "baseline", Path(weights), embedder, True))
    runs = [(path, False) for path in paths] + [(Path(path), True) for path in openvino]
    for path, on_openvino in runs:
        # OpenVINO runs on the CPU unless told: --device names CUDA devices, not Intel ones.
        embedder = Embedder(path, device=None if on_openvino else config.device,
                            backend="openvino" if on_openvino else None)
        precision = embedder.contract.precision
        source = embedder.contract.weights_sha256
        same = None if not (weights_sha and source) else source == weights_sha
        label = {"onnxruntime": "ort", "tensorrt": "trt", "openvino": "openvino"}.get(
            embedder.backend_name)
        # u8-in: the file takes uint8 (not OpenVINO compiling the normalisation in)
        model = getattr(embedder.backend, "model_contract", embedder.contract)
        label += f" {precision}" + (" u8-in" if model.uint8_input else "")
        subjects.append(Subject(label, "subject", Path(path), embedder, same))
    for target in served:
        from reid_trt.serving.client import TritonEmbedder, parse_target

        url, model, protocol = parse_target(target)
        embedder = TritonEmbedder(url, model, protocol=protocol)
        source = embedder.contract.weights_sha256
        same = None if not (weights_sha and source) else source == weights_sha
        subjects.append(Subject(f"triton {protocol} {embedder.contract.precision}", "subject",
                                Path(target), embedder, same))
    labels = [s.label for s in subjects]
    for subject in subjects:  # two graphs of one backend and precision: tell them apart by file
        if labels.count(subject.label) > 1:
            subject.label += f" {subject.path.name}"
    return subjects


def detector_like_crops(crops: list[np.ndarray], seed: int = 0) -> list[np.ndarray]:
    """Generated crops rescaled to the sizes a person detector returns (60-400 px tall), so the
    end-to-end timing includes real resizing work."""
    from reid_trt.core.opencv import cv2

    rng = np.random.default_rng(seed)
    out = []
    for crop in crops:
        height = int(rng.integers(60, 400))
        width = max(int(height * rng.uniform(0.3, 0.55)), 8)
        out.append(cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR))
    return out


def bench_crops(config: BenchConfig) -> tuple[list[np.ndarray], str]:
    """Crops for parity and timing: a folder of crops, the ground-truth boxes of a MOTChallenge
    tree (detector-sized crops), or generated ones."""
    if config.crops_dir is not None:
        from reid_trt.data.datasets import (
            detect_kind,
            load_dataset,
            read_samples,
            stratified_sample,
        )
        from reid_trt.data.folder import read_crops

        root = Path(config.crops_dir)
        if root.is_dir() and detect_kind(root) == "mot17":
            # Spread over tracks and sequences (stratified, fixed seed), as calibration does.
            boxes = load_dataset(root, "mot17").train
            crops, _, _ = read_samples(stratified_sample(boxes, min(config.num_crops,
                                                                    len(boxes))))
            return crops, f"{len(crops)} ground-truth boxes from {root}"
        crops = read_crops(root, limit=config.num_crops)
        return crops, f"{len(crops)} crops from {root}"
    from reid_trt.data.synthetic import person_like_crops

    crops = detector_like_crops(person_like_crops(config.num_crops))
    return crops, f"{len(crops)} generated person-like crops, 60-400 px tall"


def parity(reference: np.ndarray, candidate: np.ndarray, k: int) -> dict:
    from reid_trt.core.metrics import cosine_rows, neighbour_agreement

    cos = cosine_rows(reference, candidate)
    return {"crops": len(cos), "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean()),
            "topk_agreement": neighbour_agreement(reference, candidate, k) if len(cos) > 1 else None,
            "k": k}


def load_protocol(kind: str, root: Path, max_queries: int | None):
    """(query crops, query samples, gallery crops, gallery samples, unreadable count)."""
    from reid_trt.data.datasets import (
        DatasetOptions,
        load_dataset,
        read_samples,
        stratified_sample,
    )

    # A plain folder has no query/gallery split: no use suggesting it here.
    dataset = load_dataset(root, kind, DatasetOptions(opt("dataset"), opt("dataset"), folder_ok=False))
    if not dataset.has_protocol:
        raise ReidTrtError(f"{opt('dataset')} {kind} {root}: no query/gallery split there; mAP needs a "
                           "labelled re-ID set (market1501, dukemtmc, msmt17 or cuhk03 layout)")
    queries = dataset.query
    if max_queries is not None and max_queries < len(queries):
        queries = stratified_sample(queries, max_queries)
    q_crops, q_samples, q_bad = read_samples(queries)
    g_crops, g_samples, g_bad = read_samples(dataset.gallery)
    if not q_crops or not g_crops:
        raise ReidTrtError(f"{opt('dataset')} {kind} {root}: no readable query or gallery images")
    return q_crops, q_samples, g_crops, g_samples, q_bad + g_bad


def retrieval(embedder: Embedder, protocol) -> dict:
    from reid_trt.core.metrics import evaluate

    q_crops, q_samples, g_crops, g_samples, _ = protocol
    scores = evaluate(embedder.embed(q_crops), [s.pid for s in q_samples],
                      [s.camid for s in q_samples], embedder.embed(g_crops),
                      [s.pid for s in g_samples], [s.camid for s in g_samples])
    return scores.to_dict()


def machine_info(subjects: list[Subject]) -> dict:
    info = {"cpu": cpu_name(), "cpu_count": os.cpu_count(), "os": platform.platform(),
            "python": platform.python_version(), "numpy": np.__version__}
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    openvino = sys.modules.get("openvino")
    if openvino is not None:
        info["openvino"] = openvino.__version__
    torch = sys.modules.get("torch")  # loaded by a PyTorch subject; never imported for this
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    for s in subjects:
        if s.embedder.backend_name == "tensorrt":
            info["tensorrt"] = s.embedder.backend.trt.label
        if s.embedder.backend.device.startswith("cuda"):
            info["gpu"] = _gpu_name(s.embedder.backend.device)
    return info


def _gpu_name(device: str) -> str | None:
    try:
        from cuda.bindings import runtime as cudart

        err, props = cudart.cudaGetDeviceProperties(parse_device(device).index)
        return props.name.decode().rstrip("\x00") if int(err) == 0 else None
    except Exception:  # informational only
        return None


def _batch_note(subject: Subject, batch: int) -> str | None:
    """Why compute-only timing is skipped at this batch size (the engine can't take it as is)."""
    limits = subject.embedder.backend.limits
    if limits.static is not None and limits.static != batch:
        return f"static batch {limits.static}"
    if limits.max is not None and batch > limits.max:
        return f"above the profile maximum {limits.max} (end to end runs it in chunks)"
    if batch < limits.min:
        return f"below the profile minimum {limits.min} (end to end pads it)"
    return None


def time_subjects(subjects: list[Subject], crops: list[np.ndarray], config: BenchConfig,
                  progress: Callable[[str, int], None]) -> None:
    """Fills each subject's result["latency"]: end to end and compute only, per batch size."""
    rounds = min(config.rounds, config.runs)
    per_round = [config.runs // rounds + (r < config.runs % rounds) for r in range(rounds)]
    for subject in subjects:
        subject.result["latency"] = []
    for batch in config.batches:
        batch_crops = [crops[i % len(crops)] for i in range(batch)]
        calls, samples = {}, {}
        for subject in subjects:
            embedder = subject.embedder
            calls[subject.label, "end_to_end"] = lambda e=embedder, c=batch_crops: e.embed(c)
            note = _batch_note(subject, batch)
            if note is None:
                calls[subject.label, "compute"] = compute_call(
                    embedder.backend, embedder.preprocess(batch_crops))
            subject.result["latency"].append({"batch": batch, "note": note})
        for key, fn in calls.items():
            progress(f"batch {batch}: warming up {key[0]}", 0)
            time_calls(fn, config.warmup)
            samples[key] = []
        for runs in per_round:
            for key, fn in calls.items():
                progress(f"batch {batch}: {key[1].replace('_', ' ')}, {key[0]}", 0)
                # One untimed call first: the previous subject's worker threads may still be
                # spinning (OpenMP, ONNX Runtime), which would land on this first call.
                fn()
                samples[key] += time_calls(fn, runs)
        for subject in subjects:
            row = subject.result["latency"][-1]
            for mode in ("end_to_end", "compute"):
                got = samples.get((subject.label, mode))
                row[mode] = summarize(got, batch).to_dict() if got else None
        progress(f"batch {batch} done", 1)


def add_ratios(subjects: list[Subject], reference: Subject) -> None:
    """Throughput of each subject over the reference's, per batch size and mode."""
    ref_rows = {row["batch"]: row for row in reference.result["latency"]}
    for subject in subjects:
        for row in subject.result["latency"]:
            for mode in ("end_to_end", "compute"):
                ref = ref_rows[row["batch"]].get(mode)
                row[f"speedup_{mode}"] = (row[mode]["throughput"] / ref["throughput"]
                                          if row[mode] and ref else None)


def run_bench(engines: list[Path], graphs: list[Path], weights: Path | None,
              config: BenchConfig | None = None,
              progress: Progress = lambda what, done, total: None, served: list[str] = (),
              openvino: list[Path] = ()) -> dict:
    """Opens the subjects (the PyTorch baseline first, models served by Triton last), then
    `measure`s them."""
    config = config or BenchConfig()
    protocol = (load_protocol(*config.dataset, config.max_queries)
                if config.dataset is not None else None)
    subjects = open_subjects(engines, graphs, weights, config, served, openvino)
    try:
        return measure(subjects, config, progress, protocol)
    finally:
        for subject in subjects:
            subject.embedder.close()


def measure(subjects: list[Subject], config: BenchConfig,
            progress: Progress = lambda what, done, total: None, protocol=None) -> dict:
    """Times, compares and scores `subjects` (the first is the reference); returns the
    JSON-ready report. `progress` hears of each step: the accuracy of each subject, then each
    batch size."""
    crops, crops_note = bench_crops(config)
    done, total = 0, len(subjects) + len(config.batches)

    def step(what: str, finished: int) -> None:
        nonlocal done
        done += finished
        progress(what, done, total)

    reference = subjects[0]
    step("embedding the parity crops", 0)
    ref_embeddings = reference.embedder.embed(crops)
    for subject in subjects:
        subject.result["parity"] = (None if subject is reference else
                                    parity(ref_embeddings, subject.embedder.embed(crops),
                                           config.topk))
        if protocol is not None:
            step(f"retrieval accuracy: {subject.label}", 0)
            subject.result["retrieval"] = retrieval(subject.embedder, protocol)
        step(f"accuracy done: {subject.label}", 1)
    time_subjects(subjects, crops, config, step)
    add_ratios(subjects, reference)
    if config.clients:
        from reid_trt.bench.load import concurrent_load

        for subject in subjects:
            step(f"{config.clients} concurrent clients: {subject.label}", 0)
            subject.result["concurrent"] = concurrent_load(
                subject.embedder, crops, config.clients, config.client_requests,
                config.client_batch)
    report = {
        "tool": "reid-bench", "reid_trt_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(subjects),
        "settings": {"batches": list(config.batches), "warmup": config.warmup,
                     "runs": config.runs, "rounds": min(config.rounds, config.runs),
                     "crops": crops_note,
                     "topk": config.topk},
        "reference": reference.label,
        "subjects": [_subject_dict(s) for s in subjects],
    }
    if protocol is not None:
        kind, root = config.dataset
        report["settings"]["dataset"] = {"kind": kind, "root": str(root),
                                         "queries": len(protocol[0]), "gallery": len(protocol[2]),
                                         "unreadable": protocol[4]}
    return report


def _subject_dict(s: Subject) -> dict:
    e = s.embedder
    memory = e.backend.device_memory_bytes() if isinstance(e.backend, Profiled) else None
    return {"label": s.label, "role": s.role, "backend": e.backend_name, "device": e.backend.device,
            "cpu_choice": None if e.cpu_choice is None else f"runs on {e.cpu_choice}",
            "path": str(s.path), "precision": e.contract.precision, "variant": e.contract.variant,
            "input_format": e.contract.input_format, "same_weights": s.same_weights,
            "device_memory_mib": None if memory is None else memory / 2**20,
            "parity": s.result.get("parity"), "retrieval": s.result.get("retrieval"),
            "latency": s.result["latency"], "concurrent": s.result.get("concurrent")}
