"""The demo: the full pipeline on generated weights, so a fresh machine needs no user files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from reid_trt.core.errors import opt

if TYPE_CHECKING:
    from reid_trt.bench.results import BenchReport
    from reid_trt.engine.build import BuildResult
    from reid_trt.export.api import ExportResult


def write_generated_checkpoint(path: Path, variant: str, seed: int = 0) -> Path:
    """A torchreid-style training checkpoint with generated weights (see models.init)."""
    import torch

    from reid_trt.core.fileio import atomic_path
    from reid_trt.models.init import generate_weights

    checkpoint = {"state_dict": generate_weights(variant, seed=seed), "epoch": 0, "rank1": 0.0}
    # Saved through a file object: torch names the archive inside after a path it is given (the
    # temporary one here), which made every generated file differ; this way the same variant and
    # seed give the same bytes, so the same sha256 (and the export's kept trace serves them all).
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(checkpoint, f)
    return path


def demo_outputs(variant: str) -> list[str]:
    """The files the demo writes, by name: all are checked before any work and put in place
    together at the end."""
    return [f"{variant}_generated.pth", f"{variant}.fp32.onnx", f"{variant}.fp16.onnx",
            f"{variant}.fp16.uint8.onnx", f"{variant}.fp16.plan", f"{variant}.fp16.plan.json",
            "bench.json", "bench.md"]


@dataclass
class Agreement:
    """The same crops through two Embedders: the fast graph and the checkpoint."""

    crops: int
    dim: int
    backends: tuple[str, str]
    min_cosine: float


@dataclass
class DemoResult:
    """What the demo made, each file named where it ends up (in `output_dir`)."""

    output_dir: Path
    exports: list[tuple[str, ExportResult]]  # (what the graph is, its export)
    engine: BuildResult | None  # None: no TensorRT here (`engine_skipped` says why)
    engine_skipped: str | None
    agreement: Agreement
    bench: BenchReport
    written: list[Path]


def run_demo(output_dir: Path, variant: str, progress: Callable[[str], None] = lambda _: None
             ) -> DemoResult:
    """The whole pipeline, whole or nothing: every file is made in a staging folder inside
    `output_dir` and moved into place together once all steps succeeded; on any failure the
    folder is as it was (and not left behind if the demo made it). `progress` hears each step
    as it starts."""
    import shutil
    import tempfile

    from reid_trt.core.errors import MissingDependencyError, OutputPathError
    from reid_trt.core.fileio import check_output, replace_together
    from reid_trt.models import get_variant

    get_variant(variant)
    try:  # before any folder is made: the demo generates weights and exports them with torch
        import torch  # noqa: F401
    except ModuleNotFoundError:
        raise MissingDependencyError("torch", "export", "the demo (it generates a checkpoint "
                                     "and exports it)") from None
    if output_dir.exists() and not output_dir.is_dir():
        raise OutputPathError(f"{opt('output_dir')} {output_dir} is a file; pass a directory (it is "
                              "created if missing)")
    made = not output_dir.exists()
    if not made:  # what is there must be replaceable
        for name in demo_outputs(variant):
            check_output(output_dir / name, opt("output_dir"))
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".demo.", dir=output_dir))
    except OSError as e:
        raise OutputPathError(f"{opt('output_dir')} {output_dir} cannot be written ({e.strerror}); "
                              "pass another directory") from None
    try:
        result = _run_steps(stage, output_dir, variant, progress)
        replace_together([(stage / name, output_dir / name) for name in demo_outputs(variant)
                          if (stage / name).exists()])
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if made:
            shutil.rmtree(output_dir, ignore_errors=True)
        raise
    shutil.rmtree(stage, ignore_errors=True)
    result.written = [output_dir / n for n in demo_outputs(variant) if (output_dir / n).exists()]
    return result


def _run_steps(stage: Path, output_dir: Path, variant: str, progress: Callable[[str], None]
               ) -> DemoResult:
    """The demo's steps, writing into `stage`; the result names files as they will be in
    `output_dir`."""
    from reid_trt.core.errors import MissingDependencyError
    from reid_trt.engine.build import engine_from_onnx
    from reid_trt.export.api import ExportConfig, export_onnx

    def moved(path: Path) -> Path:
        return output_dir / path.name

    weights = stage / f"{variant}_generated.pth"
    progress(f"generating {variant} weights with realistic BN/IN statistics")
    write_generated_checkpoint(weights, variant)
    steps = [("fp32", ExportConfig()), ("fp16", ExportConfig(precision="fp16")),
             ("fp16, uint8-bgr in, L2 out",
              ExportConfig(precision="fp16", input_format="uint8-bgr", normalize=True))]
    exports = []
    for label, config in steps:
        name = f"{variant}.{config.precision}{'.uint8' if config.input_format != 'float' else ''}"
        progress(f"export {label} -> ONNX, verify against PyTorch")
        exports.append((label, export_onnx(weights, stage / f"{name}.onnx", config)))
    fp16 = exports[1][1].path
    progress("build a strongly typed TensorRT engine from the fp16 graph")
    built, skipped = None, None
    try:
        built = engine_from_onnx(fp16, fp16.with_suffix(".plan"))
    except MissingDependencyError as e:
        skipped = str(e)
    progress("Embedder: the same crops through the fp16 uint8 graph (on the CPU runtime it "
             "chooses) and through PyTorch (the checkpoint)")
    agreement = embed_with_both(exports[2][1].path, weights)
    progress("reid-bench: the fp32 graph (and the engine, on a GPU) against the PyTorch "
             "checkpoint, same run")
    bench = bench_demo(weights, exports[0][1].path, fp16.with_suffix(".plan"), stage, output_dir)
    return DemoResult(
        output_dir, [(label, replace(r, path=moved(r.path))) for label, r in exports],
        None if built is None else replace(built, engine=moved(built.engine)), skipped,
        agreement, bench, [])


def bench_demo(weights: Path, graph: Path, engine: Path, stage: Path, output_dir: Path
               ) -> BenchReport:
    """reid-bench on the demo's files, its report written into `stage`, naming each file where
    it ends up (`output_dir`)."""
    from reid_trt.bench.report import write_outputs
    from reid_trt.bench.run import BenchConfig, run_bench
    from reid_trt.core.machine import cuda_present

    engines = [engine] if engine.is_file() and cuda_present() else []
    report = run_bench(engines, [graph], weights, BenchConfig(batches=(1, 8), runs=6, warmup=1,
                                                             rounds=2, num_crops=16),
                       lambda what, done, total: None)
    report = replace(report, subjects=[replace(s, path=output_dir / s.path.name)
                                       for s in report.subjects])
    write_outputs(report, stage / "bench.json", stage / "bench.md")
    return report


def embed_with_both(graph: Path, weights: Path) -> Agreement:
    from reid_trt.data.synthetic import person_like_crops
    from reid_trt.runtime import Embedder

    crops = person_like_crops(16, 160, 72, seed=7)  # detector-sized boxes, resized by the Embedder
    with Embedder(graph, device="cpu") as fast, Embedder(weights, device="cpu") as reference:
        a, b = fast.embed(crops), reference.embed(crops)
        backends = (fast.backend_name, reference.backend_name)
    return Agreement(a.shape[0], a.shape[1], backends, float((a * b).sum(axis=1).min()))
