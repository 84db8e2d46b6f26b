"""`reid-export`: checkpoint -> verified ONNX -> TensorRT engine, and inspection of both."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reid_trt import defaults
from reid_trt.cli.common import (
    TrustCheckpoint,
    Variant,
    VerifyData,
    Weights,
    console,
    fails_cleanly,
    parse_size,
)
from reid_trt.errors import ReidTrtError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Export torchreid OSNet checkpoints to verified ONNX graphs.")


def _crops(folder: Path | None):
    from reid_trt.data.folder import read_crops

    return read_crops(folder, limit=64) if folder else None


def _print_export(result) -> None:
    c = result.contract
    console.print(f"variant     {result.variant}  ({'; '.join(result.evidence)})")
    console.print(f"graph       {c.precision}, input {c.input_format} {c.layout} "
                  f"{c.height}x{c.width} {c.colour_order}, "
                  f"{'L2-normalised' if c.normalized else 'raw'} {c.embedding_dim}-d output")
    console.print(f"verified    {result.parity.summary()}")
    console.print(f"[green]wrote[/]       {result.path}")


@app.command("onnx")
@fails_cleanly
def onnx_cmd(
    weights: Weights,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Output .onnx path "
                                                "(default: <weights stem>[.fp16].onnx).")] = None,
    variant: Variant = "auto",
    opset: Annotated[int, typer.Option(help="ONNX opset.")] = defaults.ONNX_OPSET,
    dynamic_batch: Annotated[bool | None, typer.Option(
        "--dynamic-batch/--static-batch", help="Batch axis [dynamic]; --static-batch means 1.",
        show_default=False)] = None,
    batch: Annotated[int | None, typer.Option(help="A static batch of N.")] = None,
    precision: Annotated[str, typer.Option(help="fp32 or fp16 (InstanceNorm stays fp32).")] = "fp32",
    io_dtype: Annotated[str, typer.Option(help="Float I/O dtype of an fp16 graph.")] = "fp32",
    input_format: Annotated[str, typer.Option(
        "--input", help="float: N,3,H,W normalised RGB; uint8-bgr: N,H,W,3 raw OpenCV crops, "
        "preprocessing inside the graph.")] = "float",
    normalize: Annotated[bool, typer.Option("--normalize/--no-normalize",
                                            help="L2-normalise embeddings in the graph.")] = False,
    input_size: Annotated[str, typer.Option(help="HEIGHTxWIDTH of the model input.")] = "256x128",
    verify_data: VerifyData = None,
    trust_checkpoint: TrustCheckpoint = False,
):
    """Export a checkpoint to ONNX, verified against PyTorch before it is written."""
    from reid_trt.export.api import ExportConfig, export_onnx

    height, width = parse_size(input_size)
    if batch is not None and dynamic_batch:
        raise ReidTrtError(f"--batch {batch} makes the batch static; drop --dynamic-batch")
    if batch is None and dynamic_batch is False:
        batch = 1
    config = ExportConfig(variant=variant, precision=precision, io_dtype=io_dtype,
                          input_format=input_format, normalize=normalize,
                          batch=batch, opset=opset, height=height,
                          width=width, trust_checkpoint=trust_checkpoint)
    _print_export(export_onnx(weights, output, config, _crops(verify_data)))


@app.command("verify")
@fails_cleanly
def verify_cmd(
    onnx_path: Annotated[Path, typer.Option("--onnx", help="Graph exported by reid-export.")],
    weights: Weights,
    verify_data: VerifyData = None,
    trust_checkpoint: TrustCheckpoint = False,
):
    """Compare an exported graph with PyTorch on the same crops; exit 1 beyond tolerance."""
    from reid_trt.export.api import verify_onnx
    from reid_trt.export.verify import require_parity

    report, same_weights = verify_onnx(onnx_path, weights, trust_checkpoint, _crops(verify_data))
    if not same_weights:
        console.print(f"note        {onnx_path} was exported from other weights than {weights} "
                      "(sha256 differs)")
    console.print(f"verified    {report.summary()}")
    require_parity(report, str(onnx_path))
    console.print("[green]ok[/]")


@app.command("trt")
@fails_cleanly
def trt_cmd(
    onnx_path: Annotated[Path | None, typer.Option("--onnx", help="Graph from reid-export "
                                                   "onnx/calibrate; its precision is kept.")] = None,
    weights: Annotated[Path | None, typer.Option("--weights", "-w", help="Or a torchreid "
                                                 "checkpoint: exported (and verified) first.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Engine path "
                                                "(default: <onnx stem>.plan).")] = None,
    precision: Annotated[str | None, typer.Option(
        help="fp32|fp16|int8. With --onnx: must match the graph (default: the graph's).")] = None,
    min_batch: Annotated[int | None, typer.Option(help="Profile minimum batch [1].")] = None,
    opt_batch: Annotated[int | None, typer.Option(help="Profile optimum batch [16].")] = None,
    max_batch: Annotated[int | None, typer.Option(help="Profile maximum batch [64].")] = None,
    timing_cache: Annotated[Path | None, typer.Option(help="Loaded if present, saved after.")] = None,
    workspace: Annotated[int | None, typer.Option(help="Workspace limit in MiB.")] = None,
    opt_level: Annotated[int | None, typer.Option(help="Builder optimisation level 0-5.")] = None,
    dla_core: Annotated[int | None, typer.Option(help="Jetson DLA core (GPU fallback on).")] = None,
    trt: Annotated[str, typer.Option("--trt", help="auto|tensorrt|rtx.")] = "auto",
    instancenorm: Annotated[str, typer.Option(help="native|plugin InstanceNorm.")] = "native",
    compute_capability: Annotated[list[str] | None, typer.Option(
        help="TensorRT-RTX target, repeatable (e.g. sm75 for Turing).")] = None,
    hardware_compatibility: Annotated[str | None, typer.Option(
        help="Full TensorRT: ampere_plus for one engine across Ampere and later.")] = None,
    verify_data: VerifyData = None,
    trust_checkpoint: TrustCheckpoint = False,
):
    """Build a strongly typed TensorRT engine and its manifest (model.plan + model.plan.json)."""
    from reid_trt.engine.api import build_from_onnx_or_weights
    from reid_trt.engine.build import BuildConfig

    config = BuildConfig(precision=precision, min_batch=min_batch, opt_batch=opt_batch,
                         max_batch=max_batch, workspace_mib=workspace, opt_level=opt_level,
                         timing_cache=timing_cache, dla_core=dla_core, trt=trt,
                         instancenorm=instancenorm,
                         compute_capabilities=tuple(compute_capability or ()),
                         hardware_compatibility=hardware_compatibility)
    with console.status("building engine"):
        exported, result = build_from_onnx_or_weights(onnx_path, weights, output, config,
                                                      _crops(verify_data), trust_checkpoint)
    if exported is not None:
        _print_export(exported)
    m = result.manifest
    console.print(f"built       {result.trt_label}: {m.precision}, batch {m.profile['min']}.."
                  f"{m.profile['max']} (opt {m.profile['opt']}), InstanceNorm {m.instancenorm}, "
                  f"{m.engine_bytes / 2**20:.1f} MiB in {m.build_seconds:.1f} s")
    console.print(f"targets     {m.targets}")
    for note in result.notes:
        console.print(f"note        {note}")
    console.print(f"[green]wrote[/]       {result.engine} (+ {result.engine.name}.json)")


@app.command("inspect")
@fails_cleanly
def inspect_cmd(path: Annotated[Path, typer.Argument(help=".onnx, or .plan/.engine with its "
                                                      "manifest.")]):
    """Show I/O, precision and the preprocessing contract of a graph or an engine."""
    from reid_trt.engine.inspect import describe

    for key, value in describe(path).items():
        console.print(f"{key:<14}{value}", markup=False)


@app.command("demo")
@fails_cleanly
def demo_cmd(
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o", help="Where to write.")] = Path(
        "out/demo"),
    variant: Annotated[str, typer.Option(help="Variant to generate weights for.")] =
        "osnet_ain_x1_0",
):
    """Run the whole pipeline on generated weights: needs no files of yours."""
    from reid_trt.demo import run_demo

    run_demo(output_dir, variant, console)


def main() -> None:
    app()
