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
    int8: Annotated[bool, typer.Option("--int8", help="Calibrate first (needs --calib-data), "
                                       "then build the INT8 graph.")] = False,
    calib_data: CalibData = None,
    calib_dataset: CalibDataset = "auto",
    calib_size: CalibSize = 256,
    calib_method: CalibMethod = "auto",
    max_map_drop: MaxMapDrop = 0.5,
    unquantized: Unquantized = "fp16",
    verify_data: VerifyData = None,
    trust_checkpoint: TrustCheckpoint = False,
):
    """Build a strongly typed TensorRT engine and its manifest (model.plan + model.plan.json)."""
    if int8:
        if precision not in (None, "int8"):
            raise ReidTrtError(f"--int8 contradicts --precision {precision}")
        source = onnx_path or weights
        engine = output or Path((source.stem if source else "model") + ".int8.plan")
        calibrated = _calibrate(onnx_path, weights, calib_data, engine.with_suffix(".onnx"),
                                calib_dataset, calib_size, calib_method, max_map_drop,
                                unquantized, trust_checkpoint)
        onnx_path, weights, output, precision = calibrated.path, None, engine, "int8"
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


CalibData = Annotated[Path | None, typer.Option(help="Dataset root or folder of crops to calibrate "
                                                 "INT8 on.")]
CalibDataset = Annotated[str, typer.Option(
    help="auto|market1501|dukemtmc|msmt17|cuhk03|mot17|folder.")]
CalibSize = Annotated[int, typer.Option(help="Calibration images, stratified over identities "
                                        "and cameras.")]
CalibMethod = Annotated[str, typer.Option(help="auto|minmax|entropy|percentile (auto: best by "
                                          "retrieval agreement).")]
MaxMapDrop = Annotated[float, typer.Option(help="With a labelled dataset: mAP points INT8 may "
                                           "lose.")]
Unquantized = Annotated[str, typer.Option(help="Precision of the layers left unquantized: fp16 "
                                          "(faster in TensorRT) or fp32.")]


def _calibrate(onnx_path, weights, calib_data, output, calib_dataset, calib_size, calib_method,
               max_map_drop, unquantized, trust_checkpoint):
    from reid_trt.calibration.api import CalibrationConfig, calibrate_onnx, source_graph
    from reid_trt.calibration.quantize import Budget

    if calib_data is None:
        raise ReidTrtError("INT8 needs --calib-data DIR (a re-ID dataset or a folder of crops)")
    config = CalibrationConfig(dataset=calib_dataset, size=calib_size, method=calib_method,
                               budget=Budget(max_map_drop=max_map_drop), unquantized=unquantized)
    source, sha, _ = source_graph(onnx_path, weights, trust_checkpoint)
    with console.status("calibrating") as status:
        result = calibrate_onnx(source, sha, calib_data, output, config,
                                progress=lambda text: status.update(text))
    r = result.report
    a = r["int8_vs_fp32"]
    cal = r["calibration_set"]
    console.print(f"calibrated  {cal['images']} {cal['dataset']} images ({cal['unreadable_skipped']} "
                  f"unreadable skipped), method {r['method']}, {r['seconds']} s")
    console.print(f"INT8/FP32   on {r['evaluation_set']['images']} images: mean cosine "
                  f"{a['mean_cosine']:.5f}, min {a['min_cosine']:.5f}, top-5 neighbour agreement "
                  f"{a['topk_agreement']:.3f}"
                  + (f", mAP drop {a['map_drop']:.2f} points" if a["map_drop"] is not None else ""))
    console.print(f"float       {r['unquantized_layers']}: {', '.join(r['unquantized_parts']) or 'none'}")
    console.print(f"[green]wrote[/]       {result.path}, {result.cache.name}, {result.report_path.name}")
    return result


@app.command("calibrate")
@fails_cleanly
def calibrate_cmd(
    calib_data: CalibData = None,
    onnx_path: Annotated[Path | None, typer.Option("--onnx", help="An fp32 graph from "
                                                   "reid-export onnx.")] = None,
    weights: Annotated[Path | None, typer.Option("--weights", "-w", help="Or a checkpoint "
                                                 "(exported and verified first).")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="INT8 graph "
                                                "(default: <stem>.int8.onnx).")] = None,
    calib_dataset: CalibDataset = "auto",
    calib_size: CalibSize = 256,
    calib_method: CalibMethod = "auto",
    max_map_drop: MaxMapDrop = 0.5,
    unquantized: Unquantized = "fp16",
    trust_checkpoint: TrustCheckpoint = False,
):
    """Quantize to an INT8 Q/DQ graph calibrated on re-ID data; unquantized parts chosen by
    accuracy. Writes the graph, a TensorRT calibration cache and a JSON report."""
    source = onnx_path or weights
    default = Path((source.stem if source else "model") + ".int8.onnx")
    _calibrate(onnx_path, weights, calib_data, output or default, calib_dataset, calib_size,
               calib_method, max_map_drop, unquantized, trust_checkpoint)


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
