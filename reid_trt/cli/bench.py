"""`reid-bench`: latency, throughput, parity and retrieval accuracy, with PyTorch in the same run."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from reid_trt.bench.subjects import BenchConfig
from reid_trt.cli.common import TrustCheckpoint, Variant, console, fails_cleanly, flag_namer
from reid_trt.cli.groups import Group, takes
from reid_trt.core.errors import ReidTrtError

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)


def parse_batches(text: str) -> tuple[int, ...]:
    try:
        batches = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"'{text}' is not a list of batch sizes, e.g. 1,8,32,64") from None
    return batches


BENCH_FLAGS = {"dataset": "--dataset"}  # calibration's dataset option is --calib-dataset
flag_of = flag_namer(BENCH_FLAGS)


# The options of BenchConfig that map one to one (groups.py); the rest are parsed here.
BENCH = Group("config", BenchConfig, ("runs", "warmup", "rounds", "device", "num_crops", "topk",
                                      "max_queries", "client_requests", "client_batch",
                                      "companion_onnx", "isolate", "spin"), text=("spin",))


@app.command()
@fails_cleanly(flags=BENCH_FLAGS)
@takes(BENCH, flag_of=flag_of)
def bench(
    engine: Annotated[list[Path] | None, typer.Option(
        help="TensorRT engine (.plan with its manifest); repeatable.")] = None,
    onnx: Annotated[list[Path] | None, typer.Option(
        help="ONNX graph, run with ONNX Runtime; repeatable.")] = None,
    embedder: Annotated[list[Path] | None, typer.Option(
        help="Any model file run as Embedder(path) runs it by default (an .onnx on a CPU: on "
        "the faster of ONNX Runtime and OpenVINO here, its row marked auto); repeatable.")] = None,
    weights: Annotated[Path | None, typer.Option(
        "--weights", "-w", help="torchreid checkpoint: the PyTorch eager baseline.")] = None,
    openvino: Annotated[list[Path] | None, typer.Option(
        help="OpenVINO subject: an IR .xml from reid-export openvino, or an .onnx; "
        "repeatable.")] = None,
    triton: Annotated[list[str] | None, typer.Option(
        help="A model served by Triton: HOST:PORT/MODEL (gRPC) or http://HOST:PORT/MODEL; "
        "repeatable.")] = None,
    clients: Annotated[int | None, typer.Option(
        help="Concurrent clients per subject, each calling back to back [16 with --triton, "
        "else none].", show_default=False)] = None,
    batch: Annotated[str, typer.Option(help="Batch sizes, comma-separated.")] = "1,8,32,64",
    crops: Annotated[Path | None, typer.Option(
        help="Real crops for parity and timing: a folder of crops or a MOT17 tree (its "
        "ground-truth boxes) [generated person-like crops].")] = None,
    dataset: Annotated[tuple[str, Path] | None, typer.Option(
        metavar="KIND PATH", help="Labelled re-ID set for mAP/Rank-1: market1501|dukemtmc|msmt17|"
        "cuhk03|auto and its root.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON.")] = None,
    markdown_path: Annotated[Path | None, typer.Option("--markdown", help="Write Markdown tables.")]
        = None,
    plot_path: Annotated[Path | None, typer.Option("--plot", help="Write a PNG of latency and "
                                                   "throughput against batch size.")] = None,
    variant: Variant = "auto",
    trust_checkpoint: TrustCheckpoint = False,
    *,
    config: BenchConfig,  # the options of BENCH, built by @takes
):
    """Benchmark engines, ONNX graphs, checkpoints and models served by Triton side by side:
    latency, throughput (also under concurrent clients), parity with PyTorch and, given a
    labelled dataset, mAP and Rank-1.

    The reference for ratios and parity is the PyTorch checkpoint (--weights); without one, the
    first subject."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from reid_trt.bench.report import print_tables, pyplot, write_outputs
    from reid_trt.bench.run import run_bench
    from reid_trt.core.fileio import check_output

    inputs = [*(engine or []), *(onnx or []), *(openvino or []), *(embedder or []), weights, crops]
    inputs += [p.with_name(p.name + ".json") for p in engine or []]  # manifests
    outputs = [(json_path, "--json", (".json",)), (markdown_path, "--markdown", (".md", ".markdown")),
               (plot_path, "--plot", (".png",))]
    given = [p for p, _, _ in outputs if p is not None]
    if len({p.resolve() for p in given}) < len(given):
        raise ReidTrtError("--json, --markdown and --plot name the same file; give each its own")
    for path, option, suffixes in outputs:
        if path is not None:
            check_output(path, option, suffixes, inputs=inputs)
    if plot_path is not None:
        pyplot()  # fail now, not after the run, if matplotlib is missing
    if dataset is not None and not Path(dataset[1]).is_dir():
        raise ReidTrtError(f"--dataset {dataset[0]} {dataset[1]}: no such directory")
    config = replace(config, batches=parse_batches(batch), crops_dir=crops,
                     dataset=(dataset[0], Path(dataset[1])) if dataset else None,
                     variant=variant, trust_checkpoint=trust_checkpoint,
                     clients=(16 if triton else 0) if clients is None else clients)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("opening the subjects", total=None)
        report = run_bench(engine or [], onnx or [], weights, config,
                           lambda what, done, total: progress.update(task, description=what,
                                                                      completed=done, total=total),
                           served=triton or [], openvino=openvino or [],
                           automatic=embedder or [])
    print_tables(report, console, flag_of)
    for path in write_outputs(report, json_path, markdown_path, plot_path, flag_of):
        console.print(f"[green]wrote[/] {path}")


def main() -> None:
    app()
