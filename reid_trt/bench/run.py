"""One benchmark run: subjects (engines, graphs, checkpoints) timed, compared and scored together.

Every subject is an `Embedder`, so all of them use the same preprocessing and batching; the
PyTorch checkpoint is the baseline. Subjects are timed in interleaved rounds (a few runs of each
in turn, repeated) so that a machine slowing down mid-run hits all of them alike and the ratios
stay meaningful on noisy machines.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path

from reid_trt.bench.accuracy import RetrievalProtocol, load_protocol, parity, retrieval
from reid_trt.bench.crops import bench_crops, crop_sizes
from reid_trt.bench.machine import machine_info
from reid_trt.bench.results import BenchReport, BenchSettings, DatasetInfo, SubjectReport
from reid_trt.bench.subjects import BenchConfig, Subject, companion_onnx, open_subjects
from reid_trt.bench.timing import add_ratios, time_subjects
from reid_trt.core.version import __version__
from reid_trt.runtime.backends.base import Profiled

# The names callers import from here: one run's entry points and what they take.
__all__ = ["BenchConfig", "BenchReport", "Progress", "RetrievalProtocol", "Subject",
           "bench_crops", "companion_onnx", "measure", "open_subjects", "run_bench"]

Progress = Callable[[str, int, int], None]  # (what is running, steps done, steps in all)


def run_bench(engines: list[Path], graphs: list[Path], weights: Path | None,
              config: BenchConfig | None = None,
              progress: Progress = lambda what, done, total: None, served: list[str] = (),
              openvino: list[Path] = (), automatic: list[Path] = ()) -> BenchReport:
    """Opens the subjects (the PyTorch baseline first, models served by Triton last; see
    `open_subjects` for which runtime each list runs on), then `measure`s them."""
    config = config or BenchConfig()
    protocol = (load_protocol(*config.dataset, config.max_queries)
                if config.dataset is not None else None)
    subjects = open_subjects(engines, graphs, weights, config, served, openvino, automatic)
    try:
        return measure(subjects, config, progress, protocol)
    finally:
        for subject in subjects:
            subject.embedder.close()


def measure(subjects: list[Subject], config: BenchConfig,
            progress: Progress = lambda what, done, total: None,
            protocol: RetrievalProtocol | None = None) -> BenchReport:
    """Times, compares and scores `subjects` (the first is the reference); returns the
    report. `progress` hears of each step: the accuracy of each subject, then each
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
        subject.parity = (None if subject is reference else
                          parity(ref_embeddings, subject.embedder.embed(crops), config.topk))
        if protocol is not None:
            step(f"retrieval accuracy: {subject.label}", 0)
            subject.retrieval = retrieval(subject.embedder, protocol)
        step(f"accuracy done: {subject.label}", 1)
    resize_ms = time_subjects(subjects, crops, config, step)
    add_ratios(subjects, reference)
    if config.clients:
        from reid_trt.bench.load import concurrent_load

        for subject in subjects:
            step(f"{config.clients} concurrent clients: {subject.label}", 0)
            subject.concurrent = concurrent_load(
                subject.embedder, crops, config.clients, config.client_requests,
                config.client_batch)
    dataset = None
    if protocol is not None:
        kind, root = config.dataset
        dataset = DatasetInfo(kind, str(root), len(protocol.query), len(protocol.gallery),
                              protocol.unreadable, protocol.name)
    return BenchReport(
        tool="reid-bench", reid_trt_version=__version__,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        machine=machine_info(subjects),
        settings=BenchSettings(list(config.batches), config.warmup, config.runs,
                               min(config.rounds, config.runs), crops_note, config.topk, dataset,
                               crop_sizes(crops), resize_ms,
                               config.isolate and any(s.spec for s in subjects)),
        reference=reference.label, subjects=[_subject_report(s) for s in subjects])


def _subject_report(s: Subject) -> SubjectReport:
    e = s.embedder
    memory = s.device_memory if s.device_memory is not None else (
        e.backend.device_memory_bytes() if isinstance(e.backend, Profiled) else None)
    return SubjectReport(
        label=s.label, role=s.role, backend=e.backend_name, device=str(e.backend.device),
        cpu_choice=None if e.cpu_choice is None else f"runs on {e.cpu_choice}",
        path=s.path, precision=str(e.contract.precision), variant=e.contract.variant,
        input_format=str(e.contract.input_format), same_weights=s.same_weights,
        device_memory_mib=None if memory is None else memory / 2**20, parity=s.parity,
        retrieval=s.retrieval, latency=s.latency, concurrent=s.concurrent)
