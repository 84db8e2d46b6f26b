"""`reid-export demo` on the console: each step as it starts, then what it made."""

from __future__ import annotations

from collections.abc import Callable
from itertools import count

from rich.console import Console
from rich.table import Table

from reid_trt.demo import DemoResult


def numbered_steps(console: Console) -> Callable[[str], None]:
    """A progress callback that prints each step with its number."""
    numbers = count(1)
    return lambda step: console.print(f"[bold]{next(numbers)}.[/] {step}")


def show_demo(result: DemoResult, console: Console) -> None:
    from reid_trt.bench.report import print_tables

    table = Table(title=f"ONNX Runtime vs PyTorch, person-like crops, in {result.output_dir}")
    for col in ("graph", "file", "min cosine", "mean cosine", "max |diff|"):
        table.add_column(col)
    for label, r in result.exports:
        p = r.parity
        table.add_row(label, r.path.name, f"{p.min_cosine:.7f}", f"{p.mean_cosine:.7f}",
                      f"{p.max_abs_diff:.3g}")
    console.print(table)
    if result.engine is None:
        console.print(f"engine: skipped: {result.engine_skipped}")
    else:
        m = result.engine.manifest
        console.print(f"engine: {result.engine.trt_label}: {m.precision}, batch {m.profile.min}..."
                      f"{m.profile.max}, {m.engine_bytes / 2**20:.1f} MiB in "
                      f"{m.build_seconds:.1f} s -> {result.engine.engine} (+ manifest)")
    a = result.agreement
    console.print(f"Embedder: {a.crops} crops -> {a.dim}-d embeddings; min cosine "
                  f"{a.backends[0]} vs {a.backends[1]}: {a.min_cosine:.5f}")
    print_tables(result.bench, console)
    console.print(f"[green]wrote[/] {len(result.written)} files in {result.output_dir}: "
                  f"{', '.join(p.name for p in result.written)}")
