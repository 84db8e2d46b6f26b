"""`reid-export`: checkpoint -> verified ONNX (and, as later stages land, engines)."""

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
    dynamic_batch: Annotated[bool, typer.Option("--dynamic-batch/--static-batch",
                                                help="Dynamic batch axis, or --batch N.")] = True,
    batch: Annotated[int, typer.Option(help="Batch size of a --static-batch graph.")] = 1,
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
    config = ExportConfig(variant=variant, precision=precision, io_dtype=io_dtype,
                          input_format=input_format, normalize=normalize,
                          batch=None if dynamic_batch else batch, opset=opset, height=height,
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

    report = verify_onnx(onnx_path, weights, trust_checkpoint, _crops(verify_data))
    console.print(f"verified    {report.summary()}")
    require_parity(report, str(onnx_path))
    console.print("[green]ok[/]")


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
