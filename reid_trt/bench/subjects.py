"""What one reid-bench run measures: its settings and its subjects (engines, graphs, checkpoints
and served models, each behind an Embedder)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from reid_trt.bench.isolated import SubjectSpec
from reid_trt.bench.results import LatencyRow, Load, Parity
from reid_trt.core.errors import ReidTrtError, opt
from reid_trt.core.metrics import RetrievalScores
from reid_trt.core.options import (
    ConfigError,
    Spin,
    batch_size,
    bounded,
    coerce_choices,
    described,
    parse_device,
)
from reid_trt.runtime.embedder import Embedder

MAX_CROPS = 10_000  # parity crops are held in memory, decoded
MAX_RUNS = 10_000
MAX_CLIENTS = 256  # threads in this process


@dataclass(frozen=True)
class BenchConfig:
    """Settings of one reid-bench run, checked on construction."""

    batches: tuple[int, ...] = (1, 8, 32, 64)
    # untimed calls per subject and batch size (allocation, autotuning)
    warmup: int = described(3, "Untimed calls first.")
    runs: int = described(30, "Timed calls per subject, batch size and mode.")
    rounds: int = described(3, "Interleaved rounds the runs are split into.")
    device: str | None = described(None, "cpu, cuda or cuda:N [cuda:0 when present].")
    crops_dir: Path | None = None  # real crops for parity and timing (default: generated ones)
    num_crops: int = described(64, "How many crops (parity, and cycled for timing).")
    topk: int = described(5, "k of the top-k neighbour agreement.")
    dataset: tuple[str, Path] | None = None  # (kind, root) of a labelled re-ID dataset
    max_queries: int | None = described(
        None, "Score this many queries (stratified) against the whole gallery [all].")
    variant: str = "auto"
    trust_checkpoint: bool = False
    companion_onnx: bool = described(
        True, "Also run an engine's source .onnx when it lies beside the engine.")
    clients: int = 0  # concurrent clients per subject (0: no concurrent load)
    client_requests: int = described(20, "Calls per concurrent client.")
    client_batch: int = described(4, "Crops per concurrent call (the boxes of a frame).")
    isolate: bool = described(
        True, "Time each subject in a process of its own, as trtexec does (in one process their "
        "runtimes' threads and allocators meet: measured up to 2x off).")
    spin: Spin | None = described(
        None, "When ONNX Runtime's CPU threads busy-wait, for the subjects it runs: call (spin "
        "while a call runs; Embedder's default), always (also between calls, ONNX Runtime's "
        "default) or never.")

    def __post_init__(self):
        coerce_choices(self, ("spin",), spin=Spin)
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
    spec: SubjectSpec | None = None  # how to open it again in a process of its own (files only)
    device_memory: int | None = None  # as the process that timed it reports it
    # What the run measured (run.py, timing.py).
    parity: Parity | None = None
    retrieval: RetrievalScores | None = None
    latency: list[LatencyRow] = field(default_factory=list)
    concurrent: Load | None = None


def companion_onnx(engine: Path) -> Path | None:
    """The .onnx an engine was built from, if it lies beside it (matched by sha256)."""
    from reid_trt.core.fileio import sha256_file
    from reid_trt.core.manifest import read_manifest

    wanted = read_manifest(engine).onnx_sha256
    candidates = sorted(engine.parent.glob(f"{engine.stem.split('.')[0]}*.onnx"))
    return next((p for p in candidates if sha256_file(p) == wanted), None)


def open_subjects(engines: list[Path], graphs: list[Path], weights: Path | None,
                  config: BenchConfig, served: list[str] = (),
                  openvino: list[Path] = (), automatic: list[Path] = ()) -> list[Subject]:
    """The subjects, each opened as its option says: `engines` on TensorRT, `graphs` on ONNX
    Runtime, `openvino` on OpenVINO, `automatic` as `Embedder(path)` opens it by default (for a
    .onnx on a CPU: the faster runtime measured here), `served` through Triton. Paths may be
    strings. A model asked for twice on the same runtime is run once."""
    from reid_trt.core.fileio import sha256_file

    if not (engines or graphs or weights or served or openvino or automatic):
        raise ReidTrtError(f"nothing to benchmark: pass {opt('engine')} PLAN, {opt('onnx')} MODEL, "
                           f"{opt('openvino')} MODEL, {opt('triton')} HOST:PORT/MODEL and/or "
                           f"{opt('weights')} CHECKPOINT")
    for graph in map(Path, graphs):
        if graph.suffix.lower() != ".onnx":
            raise ReidTrtError(f"{opt('onnx')} {graph}: ONNX Runtime runs .onnx graphs; pass an "
                               f"engine with {opt('engine')}, an IR with {opt('openvino')}, a "
                               f"checkpoint with {opt('weights')}")
    runs = [(Path(p), None) for p in engines] + [(Path(p), "onnxruntime") for p in graphs]
    if config.companion_onnx:
        for engine in map(Path, engines):
            source = companion_onnx(engine) if engine.is_file() else None
            if source is not None and (source, "onnxruntime") not in runs:
                runs.append((source, "onnxruntime"))
    runs += [(Path(p), "openvino") for p in openvino] + [(Path(p), None) for p in automatic]
    weights = Path(weights) if weights is not None else None
    weights_sha = sha256_file(weights) if weights and weights.is_file() else None
    subjects = []
    if weights is not None:
        embedder = Embedder(weights, device=config.device, variant=config.variant,
                            trust_checkpoint=config.trust_checkpoint)
        spec = SubjectSpec(str(weights), "torch", config.device, None, config.variant,
                           config.trust_checkpoint)
        subjects.append(Subject("pytorch fp32", "baseline", weights, embedder, True, spec))
    seen = set()
    for path, backend in runs:
        # OpenVINO runs on the CPU unless told: --device names CUDA devices, not Intel ones.
        # --spin reaches the graphs ONNX Runtime may run, the one runtime with that setting.
        onnx_runtime = backend == "onnxruntime" or (backend is None and path.suffix == ".onnx")
        device = None if backend == "openvino" else config.device
        spin = config.spin if onnx_runtime else None
        embedder = Embedder(path, device=device, backend=backend, spin=spin)
        run = (embedder.backend_name, str(embedder.backend.device), path.resolve())
        if run in seen:  # e.g. --embedder m.onnx where the choice is --openvino m.onnx
            embedder.close()
            continue
        seen.add(run)
        precision = embedder.contract.precision
        source = embedder.contract.weights_sha256
        same = None if not (weights_sha and source) else source == weights_sha
        label = {"onnxruntime": "ort", "tensorrt": "trt", "openvino": "openvino"}.get(
            embedder.backend_name, embedder.backend_name)
        # u8-in: the file takes uint8 (not a backend compiling the normalisation in)
        label += f" {precision}" + (" u8-in" if embedder.model_contract.uint8_input else "")
        label += " (auto)" if embedder.cpu_choice is not None else ""
        spin = spin if embedder.backend_name == "onnxruntime" else None  # as the choice applied it
        spec = SubjectSpec(str(path), embedder.backend_name, device, spin)
        subjects.append(Subject(label, "subject", path, embedder, same, spec))
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
