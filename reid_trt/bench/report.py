"""The benchmark report as terminal tables, Markdown, JSON and a PNG plot."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

from reid_trt.bench.results import BenchReport
from reid_trt.core.errors import MissingDependencyError, opt
from reid_trt.core.fileio import write_bytes_atomic

MODES = ("end_to_end", "compute")


def _num(value, digits: int = 2, missing: str = "-") -> str:
    return missing if value is None else f"{value:.{digits}f}"


def accuracy_rows(report: BenchReport) -> tuple[list[str], list[list[str]]]:
    k = report.settings.topk
    header = ["subject", "file", "device", "min cos", "mean cos", f"top-{k}", "mAP", "R-1", "R-5",
              "MiB"]
    rows = []
    for s in report.subjects:
        p, r = s.parity, s.retrieval
        reference = "ref" if s.label == report.reference else "-"
        rows.append([s.label, s.path.name, s.device,
                     _num(p and p.min_cosine, 5, reference), _num(p and p.mean_cosine, 5, reference),
                     _num(p and p.topk_agreement, 3, reference),
                     _num(r.mAP * 100 if r else None, 1), _num(r.rank1 * 100 if r else None, 1),
                     _num(r.cmc.get(5) * 100 if r and 5 in r.cmc else None, 1),
                     _num(s.device_memory_mib, 0)])
    return header, rows


def latency_rows(report: BenchReport) -> tuple[list[str], list[list[str]]]:
    header = ["subject", "batch", "e2e p50 ms", "p99 ms", "img/s", "x ref", "compute p50 ms",
              "img/s", "x ref"]
    rows = []
    for s in report.subjects:
        for row in s.latency:
            e2e, compute = row.end_to_end, row.compute
            rows.append([s.label, str(row.batch), _num(e2e.p50_ms), _num(e2e.p99_ms),
                         _num(e2e.throughput, 1), _num(row.speedup_end_to_end),
                         _num(compute and compute.p50_ms), _num(compute and compute.throughput, 1),
                         _num(row.speedup_compute)])
    return header, rows


def concurrent_rows(report: BenchReport) -> tuple[list[str], list[list[str]]]:
    header = ["subject", "clients", "crops/call", "calls", "p50 ms", "p99 ms", "calls/s",
              "img/s", "x ref"]
    rows = []
    loads = {s.label: s.concurrent for s in report.subjects}
    ref = loads.get(report.reference)
    for label, c in loads.items():
        if c:
            rows.append([label, str(c.clients), str(c.crops_per_request), str(c.requests),
                         _num(c.p50_ms), _num(c.p99_ms), _num(c.requests_per_s, 1),
                         _num(c.throughput, 1), _num(c.throughput / ref.throughput if ref else None)])
    return header, rows


def tables(report: BenchReport) -> list[tuple[str, tuple[list[str], list[list[str]]]]]:
    found = [("accuracy against the reference (mAP, R-1, R-5 in %; MiB: device memory)",
              accuracy_rows(report)),
             ("latency and throughput (e2e: preprocessing + copies + compute)",
              latency_rows(report))]
    header, rows = concurrent_rows(report)
    if rows:
        found.append(("concurrent clients (each call waits for its own answer)", (header, rows)))
    return found


def describe(report: BenchReport) -> str:
    m, st = report.machine, report.settings
    cpu = m.get("machine") or f"{m['cpu']} ({m['cpu_count']} logical CPUs)"  # older reports
    device = f"{m['gpu']} on {cpu}" if m.get("gpu") else cpu
    alone = "each subject in a process of its own, " if st.isolated else ""
    text = (f"{device}; {st.runs} timed runs per point after {st.warmup} warm-up, {alone}in "
            f"{st.rounds} interleaved rounds; ratios against {report.reference}; parity and "
            f"timing on {st.crops}")
    if st.crop_sizes is not None:
        text += f" ({st.crop_sizes})"
    if st.resize_ms:
        text += ("; torchreid's resize of them, inside every e2e figure: " + ", ".join(
            f"{ms:.2f} ms at batch {b}" for b, ms in st.resize_ms.items()))
    if st.dataset is not None:
        d = st.dataset
        text += (f"; retrieval on {d.kind} ({d.queries} queries, {d.gallery} gallery; "
                 f"{d.protocol or 'query vs gallery'})")
    return text


def print_tables(report: BenchReport, console, name_of: Callable[[str], str] = str) -> None:
    """The tables and notes on `console`; `name_of` writes the options notes name (the CLI: as
    flags)."""
    from rich import box
    from rich.table import Table

    for title, (header, rows) in tables(report):
        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        for i, name in enumerate(header):
            table.add_column(name, justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    console.print(describe(report))
    for line in notes(report, name_of):
        console.print(line, highlight=False)


def notes(report: BenchReport, name_of: Callable[[str], str] = str) -> list[str]:
    """What a reader of the tables needs to know about single subjects."""
    lines = []
    for s in report.subjects:
        if s.cpu_choice:
            lines.append(f"{s.label}: {s.cpu_choice}")
        if s.same_weights is False:
            lines.append(f"note: {s.path} was not exported from the {name_of('weights')} file "
                         "(sha256 differs): its parity compares two different models")
    lines += int8_slower(report)
    return lines


def int8_slower(report: BenchReport) -> list[str]:
    """INT8 subjects that ran slower than an FP32 one on the same device: INT8 pays only where
    its kernels are fast (TensorRT on a GPU; on CPUs, VNNI or AMX instructions); elsewhere the
    quantize/dequantize work can cost more than the integer convolutions save."""
    from reid_trt.core.machine import cpu_int8_flags

    flags = cpu_int8_flags()
    cpu = f"this CPU has {', '.join(flags)}" if flags else "this CPU has no VNNI or AMX"
    lines = []
    for q in (s for s in report.subjects if s.precision == "int8"):
        for f in (s for s in report.subjects if s.precision == "fp32" and s.device == q.device
                  and s.role == "subject"):
            slower = [(qr.batch, qt.p50_ms, ft.p50_ms) for qr, fr in zip(q.latency, f.latency,
                                                                          strict=False)
                      for qt, ft in [(qr.timing("end_to_end"), fr.timing("end_to_end"))]
                      if qt and ft and qr.batch == fr.batch and qt.throughput < ft.throughput]
            if slower:
                where = ", ".join(f"batch {b}: {a:.1f} against {c:.1f} ms" for b, a, c in slower)
                note = "" if q.device.startswith("cuda") else f"; {cpu}"
                lines.append(f"note: {q.label} is slower than {f.label} on this machine "
                             f"({where}, end to end p50): serve the FP32 graph here{note}")
    return lines


def markdown(report: BenchReport, name_of: Callable[[str], str] = str) -> str:
    parts = [f"reid-bench {report.created}: {describe(report)}.", ""]
    if report.command:
        parts[:0] = [f"Command: `{report.command}`", ""]
    for _, (header, rows) in tables(report):
        parts.append("| " + " | ".join(header) + " |")
        parts.append("|" + " --- |" * len(header))
        parts += ["| " + " | ".join(row) + " |" for row in rows]
        parts.append("")
    parts += [f"- {line}" for line in notes(report, name_of)]
    return "\n".join(parts)


def pyplot():
    """matplotlib's pyplot without a display (checked before a long run that needs it)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingDependencyError("matplotlib", "bench", opt("plot")) from None
    return plt


def plot_png(report: BenchReport) -> bytes:
    """Latency (p50) and throughput against batch size: solid end to end, dashed compute only."""
    plt = pyplot()
    legend_inches = 0.2 * len(report.subjects) + 0.35  # two columns: one row per subject
    height = 3.8 + legend_inches
    fig, (lat, thr) = plt.subplots(1, 2, figsize=(11, height))
    for i, s in enumerate(report.subjects):
        colour = f"C{i}"
        for mode, style in zip(MODES, ("-", "--"), strict=True):
            points = [(row.batch, row.timing(mode)) for row in s.latency if row.timing(mode)]
            if not points:
                continue
            batches = [b for b, _ in points]
            label = f"{s.label} ({mode.replace('_', ' ')})"
            lat.plot(batches, [v.p50_ms for _, v in points], style, color=colour, marker="o",
                     label=label)
            thr.plot(batches, [v.throughput for _, v in points], style, color=colour, marker="o")
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    batches = report.settings.batches
    for ax, name in ((lat, "p50 latency per call (ms)"), (thr, "throughput (images/s)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("batch size")
        ax.set_ylabel(name)
        ax.grid(True, which="both", alpha=0.3)
    lat.set_yscale("log")
    lat.yaxis.set_major_formatter(ScalarFormatter())
    m = report.machine
    fig.legend(loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.suptitle(f"reid-bench on {m.get('gpu') or m['cpu']}: solid end to end, dashed compute only",
                 fontsize=9)
    fig.tight_layout(rect=(0, legend_inches / height, 1, 0.95))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return buffer.getvalue()


def write_outputs(report: BenchReport, json_path: Path | None = None, markdown_path: Path | None = None,
                  plot_path: Path | None = None, name_of: Callable[[str], str] = str) -> list[Path]:
    """Writes the outputs asked for (each atomically); returns their paths."""
    contents = {json_path: lambda: (json.dumps(report.to_dict(), indent=2) + "\n").encode(),
                markdown_path: lambda: markdown(report, name_of).encode(),
                plot_path: lambda: plot_png(report)}
    written = []
    for path, content in contents.items():
        if path is not None:
            write_bytes_atomic(path, content())
            written.append(path)
    return written
