"""The demo: the full pipeline on generated weights, so a fresh machine needs no user files."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from reid_trt.core.errors import opt


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


def run_demo(output_dir: Path, variant: str, console: Console) -> list[Path]:
    """The whole pipeline, whole or nothing: every file is made in a staging folder inside
    `output_dir` and moved into place together once all steps succeeded; on any failure the
    folder is as it was (and not left behind if the demo made it). Returns the files written."""
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
        _run_steps(stage, output_dir, variant, console)
        replace_together([(stage / name, output_dir / name) for name in demo_outputs(variant)
                          if (stage / name).exists()])
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if made:
            shutil.rmtree(output_dir, ignore_errors=True)
        raise
    shutil.rmtree(stage, ignore_errors=True)
    written = [output_dir / n for n in demo_outputs(variant) if (output_dir / n).exists()]
    console.print(f"[green]wrote[/] {len(written)} files in {output_dir}: "
                  f"{', '.join(p.name for p in written)}")
    return written


def _run_steps(stage: Path, output_dir: Path, variant: str, console: Console) -> None:
    """The demo's steps, writing into `stage`; files are named as they will be in `output_dir`."""
    from reid_trt.core.errors import MissingDependencyError
    from reid_trt.engine.build import engine_from_onnx
    from reid_trt.export.api import ExportConfig, export_onnx

    weights = stage / f"{variant}_generated.pth"
    console.print(f"[bold]1.[/] generating {variant} weights with realistic BN/IN statistics")
    write_generated_checkpoint(weights, variant)
    steps = [("fp32", ExportConfig()), ("fp16", ExportConfig(precision="fp16")),
             ("fp16, uint8-bgr in, L2 out",
              ExportConfig(precision="fp16", input_format="uint8-bgr", normalize=True))]
    results = []
    for i, (label, config) in enumerate(steps, start=2):
        name = f"{variant}.{config.precision}{'.uint8' if config.input_format != 'float' else ''}"
        console.print(f"[bold]{i}.[/] export {label} -> ONNX, verify against PyTorch")
        results.append((label, export_onnx(weights, stage / f"{name}.onnx", config)))
    table = Table(title=f"{variant} in {output_dir}: ONNX Runtime vs PyTorch, person-like crops")
    for col in ("graph", "file", "min cosine", "mean cosine", "max |diff|"):
        table.add_column(col)
    for label, r in results:
        p = r.parity
        table.add_row(label, r.path.name, f"{p.min_cosine:.7f}", f"{p.mean_cosine:.7f}",
                      f"{p.max_abs_diff:.3g}")
    console.print(table)

    step = len(steps) + 2
    fp16 = results[1][1].path
    console.print(f"[bold]{step}.[/] build a strongly typed TensorRT engine from the fp16 graph")
    try:
        built = engine_from_onnx(fp16, fp16.with_suffix(".plan"))
    except MissingDependencyError as e:
        console.print(f"    skipped: {e}")
    else:
        m = built.manifest
        console.print(f"    {built.trt_label}: {m.precision}, batch {m.profile.min}..."
                      f"{m.profile.max}, {m.engine_bytes / 2**20:.1f} MiB in "
                      f"{m.build_seconds:.1f} s -> {output_dir / built.engine.name} (+ manifest)")

    console.print(f"[bold]{step + 1}.[/] Embedder: the same crops through ONNX Runtime "
                  "(fp16, uint8 graph) and PyTorch (the checkpoint)")
    embed_with_both(results[2][1].path, weights, console)

    console.print(f"[bold]{step + 2}.[/] reid-bench: the fp32 graph (and the engine, on a GPU) "
                  "against the PyTorch checkpoint, same run")
    bench_demo(weights, results[0][1].path, fp16.with_suffix(".plan"), stage, console,
               output_dir)


def bench_demo(weights: Path, graph: Path, engine: Path, stage: Path, console: Console,
               output_dir: Path):
    """reid-bench on the demo's files, its report written into `stage`, naming each file where
    it ends up (`output_dir`)."""
    from reid_trt.bench.report import print_tables, write_outputs
    from reid_trt.bench.run import BenchConfig, run_bench
    from reid_trt.core.machine import cuda_present

    engines = [engine] if engine.is_file() and cuda_present() else []
    report = run_bench(engines, [graph], weights, BenchConfig(batches=(1, 8), runs=6, warmup=1,
                                                             rounds=2, num_crops=16),
                       lambda what, done, total: None)
    for subject in report.subjects:
        subject.path = str(output_dir / Path(subject.path).name)
    print_tables(report, console)
    write_outputs(report, stage / "bench.json", stage / "bench.md")
    console.print(f"    bench.json, bench.md: {len(report.subjects)} subjects")
    return report


def embed_with_both(graph: Path, weights: Path, console: Console) -> float:
    from reid_trt.data.synthetic import person_like_crops
    from reid_trt.runtime import Embedder

    crops = person_like_crops(16, 160, 72, seed=7)  # detector-sized boxes, resized by the Embedder
    with Embedder(graph, device="cpu") as fast, Embedder(weights, device="cpu") as reference:
        a, b = fast.embed(crops), reference.embed(crops)
    cosine = float((a * b).sum(axis=1).min())
    console.print(f"    {a.shape[0]} crops -> {a.shape[1]}-d embeddings; min cosine "
                  f"{fast.backend_name} vs {reference.backend_name}: {cosine:.5f}")
    return cosine
