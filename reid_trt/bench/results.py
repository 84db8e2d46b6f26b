"""What one reid-bench run found, as objects: the tables, the plot and the CLI read these; JSON
only at the file (`BenchReport.to_dict`, the layout `reid-bench --json` writes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from reid_trt.core.metrics import RetrievalScores
from reid_trt.core.records import fields_jsonable

# The --json layout: 2 added "schema" and typed every part (the keys stayed); 3 added the
# retrieval protocol's name to settings.dataset; 4 the timed crops' sizes, their resize cost
# and whether each subject was timed in a process of its own.
BENCH_SCHEMA = 4


@dataclass(frozen=True)
class Latency:
    """Wall-clock latency of one call over `runs` calls, and the throughput it implies."""

    batch: int
    runs: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float

    @property
    def throughput(self) -> float:
        """Images per second: batch / mean latency (total images over total time)."""
        return self.batch / (self.mean_ms / 1000.0)

    def to_dict(self) -> dict:
        return {**fields_jsonable(self), "throughput": self.throughput}


@dataclass
class LatencyRow:
    """One batch size of one subject: end to end and compute only (None where it could not
    run as is: `note` says why), and the throughput over the reference's."""

    batch: int
    note: str | None = None
    end_to_end: Latency | None = None
    compute: Latency | None = None
    speedup_end_to_end: float | None = None
    speedup_compute: float | None = None

    def timing(self, mode: str) -> Latency | None:
        return getattr(self, mode)


@dataclass(frozen=True)
class Parity:
    """A subject's embeddings against the reference's on the same crops."""

    crops: int
    min_cosine: float
    mean_cosine: float
    topk_agreement: float | None  # None with a single crop
    k: int


@dataclass(frozen=True)
class Load:
    """Concurrent clients calling back to back: a call's latency and all calls' throughput."""

    clients: int
    requests: int
    crops_per_request: int
    p50_ms: float
    p99_ms: float
    seconds: float
    requests_per_s: float
    throughput: float


@dataclass
class SubjectReport:
    label: str
    role: str  # "baseline" (PyTorch eager, from --weights) or "subject"
    backend: str
    device: str
    cpu_choice: str | None
    path: Path  # the model file (a Triton subject: its target, as given)
    precision: str
    variant: str
    input_format: str
    same_weights: bool | None
    device_memory_mib: float | None
    parity: Parity | None
    retrieval: RetrievalScores | None
    latency: list[LatencyRow]
    concurrent: Load | None


@dataclass(frozen=True)
class DatasetInfo:
    kind: str
    root: str
    queries: int
    gallery: int
    unreadable: int
    protocol: str = ""  # how queries meet the gallery (bench/accuracy.py)


@dataclass(frozen=True)
class CropSizes:
    """The sizes of the crops a run embedded and timed: what the resize inside every end-to-end
    figure had to do (a tracker's boxes may be smaller or larger)."""

    count: int
    height: tuple[int, int, int]  # min, median, max pixels
    width: tuple[int, int, int]

    def __str__(self) -> str:
        h, w = self.height, self.width
        return (f"{self.count} crops, {h[0]}-{h[2]} px tall (median {h[1]}), {w[0]}-{w[2]} px "
                f"wide (median {w[1]})")


@dataclass
class BenchSettings:
    batches: list[int]
    warmup: int
    runs: int
    rounds: int
    crops: str  # where the parity and timing crops came from
    topk: int
    dataset: DatasetInfo | None = None
    crop_sizes: CropSizes | None = None
    # batch -> p50 ms of torchreid's resize of that batch's crops, timed with the subjects: the
    # part of every end-to-end figure that is the same on every backend
    resize_ms: dict[int, float] = field(default_factory=dict)
    isolated: bool = False  # each subject from a file timed in a process of its own


@dataclass
class BenchReport:
    tool: str
    reid_trt_version: str
    created: str
    machine: dict  # machine.py: CPU, GPU, library versions (keys vary by machine)
    settings: BenchSettings
    reference: str
    subjects: list[SubjectReport]
    command: str | None = None  # the command that produced it, where a script sets one
    extra: dict = field(default_factory=dict)  # a script's own figures, kept in its JSON

    def subject(self, label: str) -> SubjectReport:
        return next(s for s in self.subjects if s.label == label)

    def to_dict(self) -> dict:
        data = fields_jsonable(self)
        settings = data["settings"]
        if settings["dataset"] is None:
            del settings["dataset"]
        if data["command"] is None:
            del data["command"]
        return {"schema": BENCH_SCHEMA, **data, **data.pop("extra")}
