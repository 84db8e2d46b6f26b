"""`reid-export`: checkpoint -> verified ONNX -> TensorRT engine, and inspection of both."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reid_trt.calibration.api import CalibrationConfig
from reid_trt.cli.common import (
    TrustCheckpoint,
    Variant,
    VerifyData,
    Weights,
    console,
    err_console,
    fail,
    fails_cleanly,
    flag_namer,
    graph_option,
    output_option,
    parse_size,
    read_verify_crops,
    weights_option,
)
from reid_trt.cli.groups import Group, takes
from reid_trt.core.errors import ReidTrtError
from reid_trt.core.fileio import check_output
from reid_trt.core.manifest import rebuild_advice
from reid_trt.core.options import InputFormat
from reid_trt.engine.build import BuildConfig
from reid_trt.export.api import ExportConfig
from reid_trt.serving.config import ServeOptions

if TYPE_CHECKING:
    from reid_trt.calibration.report import CalibrationResult

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  help="Export torchreid OSNet checkpoints to verified ONNX graphs.")

# Option groups (groups.py): each config's fields, offered once and shared by the commands.
EXPORT = Group("config", ExportConfig, (
    "batch", "precision", "io_dtype", "input_format", "consumer", "normalize", "opset"))
BUILD = Group("config", BuildConfig, (
    "precision", "min_batch", "opt_batch", "max_batch", "timing_cache", "workspace_mib",
    "opt_level", "dla_core", "trt", "instancenorm", "compute_capabilities",
    "hardware_compatibility", "unquantized"))
CALIBRATION = Group("calibration", CalibrationConfig, (
    "dataset", "size", "method", "augment", "equalize", "budget.max_map_drop", "unquantized",
    "eval_data"))
SERVE = Group("options", ServeOptions, (
    "name", "kind", "max_batch", "instances", "max_queue_delay_us"), text=("kind",))
CalibData = Annotated[Path | None, typer.Option(help="Dataset root or folder of crops to calibrate "
                                                 "INT8 on.")]


def _print_export(result) -> None:
    c = result.contract
    console.print(f"variant     {result.variant}  ({'; '.join(result.evidence)})")
    console.print(f"graph       {c.precision}, input {c.summary()} output")
    console.print(f"verified    {result.parity.summary()}")
    console.print(f"[green]wrote[/]       {result.path}")


@app.command("onnx")
@fails_cleanly
@takes(EXPORT)
def onnx_cmd(
    weights: Weights,
    output: output_option("Output .onnx path (default: <weights stem>[.fp16].onnx).") = None,
    variant: Variant = "auto",
    dynamic_batch: Annotated[bool | None, typer.Option(
        "--dynamic-batch/--static-batch", help="Batch axis [dynamic]; --static-batch means 1.",
        show_default=False)] = None,
    input_size: Annotated[str, typer.Option(help="HEIGHTxWIDTH of the model input.")] = "256x128",
    verify_data: VerifyData = None,
    trust_checkpoint: TrustCheckpoint = False,
    *,
    config: ExportConfig,  # the options of EXPORT, built by @takes
):
    """Export a checkpoint to ONNX, verified against PyTorch before it is written."""
    from reid_trt.export.api import check_export_output, export_onnx

    height, width = parse_size(input_size)
    if config.batch is not None and dynamic_batch:
        raise ReidTrtError(f"--batch {config.batch} makes the batch static; drop --dynamic-batch")
    config = replace(config, variant=variant, height=height, width=width,
                     trust_checkpoint=trust_checkpoint,
                     batch=1 if config.batch is None and dynamic_batch is False else config.batch)
    check_export_output(weights, output, config)  # before the crops are read
    _print_export(export_onnx(weights, output, config, read_verify_crops(verify_data)))


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

    crops = read_verify_crops(verify_data)
    report, same_weights = verify_onnx(onnx_path, weights, trust_checkpoint, crops)
    if not same_weights:
        console.print(f"note        {onnx_path} was exported from other weights than {weights} "
                      "(sha256 differs)")
    console.print(f"verified    {report.summary()}")
    require_parity(report, str(onnx_path))
    console.print("[green]ok[/]")


def _print_calibration(result: CalibrationResult) -> None:
    r = result.report
    a, cal, pr, w = r.int8_vs_fp32, r.calibration_set, r.protocol, r.int8_work
    for warning in pr.warnings:
        err_console.print(f"[bold yellow]warning:[/] {warning}")
    for note in r.notes:
        if note not in pr.warnings:
            console.print(f"note        {note}")
    console.print(f"calibrated  {cal.images} {cal.dataset} images (+{cal.augmented_copies_per_image}"
                  f" shifted copies each; {cal.unreadable_skipped} unreadable or too small), "
                  f"ranges {r.method}, {r.seconds} s")
    held = ", ".join(f"camera {c}" for c in pr.held_out_cameras) or "none"
    console.print(f"judged on   {r.evaluation_set.images} images ({pr.split}; cameras "
                  f"never calibrated on: {held}) and {len(pr.shifts)} shifted copies of each")
    console.print(f"INT8/FP32   mean cosine {a.mean_cosine:.5f}, min {a.min_cosine:.5f}, "
                  f"worst domain {a.worst_domain} (mean {a.worst_mean_cosine:.5f}), top-5 "
                  f"neighbour agreement {a.topk_agreement:.3f}"
                  + (f", mAP drop {a.map_drop:.2f} points" if a.map_drop is not None else "")
                  + (f", Rank-1 drop {a.rank1_drop:.2f}" if a.rank1_drop is not None else ""))
    if r.fp32_retrieval is not None:
        f = r.fp32_retrieval
        console.print(f"retrieval   FP32 mAP {100 * f.mAP:.1f}, Rank-1 {100 * f.rank1:.1f} on "
                      f"{r.evaluation_set.queries} queries ({pr.split})")
    console.print(f"INT8 work   {100 * w.int8_mac_share:.1f}% of conv MACs ({w.int8_layers} "
                  f"layers; float: {', '.join(r.unquantized_parts) or 'none'}; "
                  f"{w.gemv_layers_float} gate/embedding GEMV layers float by design)")
    console.print(f"[green]wrote[/]       {result.path}, {result.cache.name}, {result.report_path.name}")


@app.command("trt")
@fails_cleanly
@takes(BUILD, CALIBRATION)
def trt_cmd(
    onnx_path: graph_option("Graph from reid-export onnx/calibrate; its precision is kept.") = None,
    weights: weights_option("Or a torchreid checkpoint: exported (and verified) first.") = None,
    output: output_option("Engine path (default: <source stem>[.precision].plan).") = None,
    int8: Annotated[bool, typer.Option("--int8", help="Calibrate first (needs --calib-data), "
                                       "then build the INT8 graph.")] = False,
    calib_data: CalibData = None,
    verify_data: VerifyData = None,
    trust_checkpoint: TrustCheckpoint = False,
    *,
    config: BuildConfig,  # the options of BUILD and CALIBRATION, built by @takes
    calibration: CalibrationConfig,
):
    """Build a strongly typed TensorRT engine and its manifest (model.plan + model.plan.json)."""
    from reid_trt.engine.pipeline import build_engine

    if not int8 and calib_data is not None:
        fail("--calib-data is for INT8: add --int8, or drop --calib-data", 2)
    if not int8:  # a calibration option that would do nothing is refused, not ignored
        for path in CALIBRATION.fields:
            given, default = calibration, CalibrationConfig()
            for part in path.split("."):
                given, default = getattr(given, part), getattr(default, part)
            if given != default:
                flag = flag_namer()(path.rsplit(".", 1)[-1])
                fail(f"{flag} is for INT8 calibration: add --int8, or drop {flag}", 2)
    with console.status("building engine") as status:
        result = build_engine(output, config, onnx_path=onnx_path, weights=weights,
                              calibration=calibration if int8 else None, calib_data=calib_data,
                              verify_crops=read_verify_crops(verify_data),
                              trust_checkpoint=trust_checkpoint, progress=status.update)
    if result.exported is not None:
        _print_export(result.exported)
    if result.calibrated is not None:
        _print_calibration(result.calibrated)
    m = result.build.manifest
    console.print(f"built       {result.build.trt_label}: {m.precision}, batch {m.profile.min}.."
                  f"{m.profile.max} (opt {m.profile.opt}), InstanceNorm {m.instancenorm}, "
                  f"{m.engine_bytes / 2**20:.1f} MiB in {m.build_seconds:.1f} s")
    console.print(f"targets     {m.targets}")
    for note in result.build.notes:
        console.print(f"note        {note}")
    console.print(f"[green]wrote[/]       {result.build.engine} (+ {result.build.engine.name}.json)")


@app.command("calibrate")
@fails_cleanly
@takes(CALIBRATION)
def calibrate_cmd(
    calib_data: CalibData = None,
    onnx_path: graph_option("An fp32 graph from reid-export onnx.") = None,
    weights: weights_option("Or a checkpoint (exported and verified first).") = None,
    output: output_option("INT8 graph (default: <stem>.int8.onnx).") = None,
    trust_checkpoint: TrustCheckpoint = False,
    *,
    calibration: CalibrationConfig,  # built by @takes
):
    """Quantize to an INT8 Q/DQ graph calibrated on re-ID data; unquantized parts chosen by
    accuracy. Writes the graph, a TensorRT calibration cache and a JSON report."""
    from reid_trt.engine.pipeline import calibrate

    with console.status("calibrating") as status:
        result = calibrate(calib_data, output, calibration, onnx_path=onnx_path, weights=weights,
                           trust_checkpoint=trust_checkpoint, progress=status.update)
    _print_calibration(result)


def _three(text: str | None, option: str) -> tuple[float, float, float] | None:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        fail(f"{option} {text}: give three numbers, R,G,B (0-1 units, e.g. 0.485,0.456,0.406)", 2)
    if option == "--std" and min(values) <= 0:
        fail(f"{option} {text}: a standard deviation divides, so each must be above 0 (0-1 "
             "units, e.g. 0.229,0.224,0.225)", 2)
    return values


@app.command("adopt")
@fails_cleanly
def adopt_cmd(
    graph: Annotated[Path, typer.Argument(help="An OSNet .onnx from another exporter (BoxMOT, "
                                          "torchreid, a tracking repo).", show_default=False)],
    output: output_option("reid-trt graph (default: <stem>.reid.onnx beside it).") = None,
    input_format: Annotated[InputFormat | None, typer.Option(
        "--input", help="How the graph takes images [recognised: float for N,3,H,W, uint8-bgr "
        "for N,H,W,3].", show_default=False)] = None,
    mean: Annotated[str | None, typer.Option(help="R,G,B mean the graph expects subtracted "
                                             "[ImageNet's].", show_default=False)] = None,
    std: Annotated[str | None, typer.Option(help="R,G,B std [ImageNet's].",
                                            show_default=False)] = None,
    input_size: Annotated[str | None, typer.Option(help="HEIGHTxWIDTH, for graphs with dynamic "
                                                   "spatial axes [the graph's, else 256x128].",
                                                   show_default=False)] = None,
    weights: weights_option("The checkpoint it was exported from: verify against PyTorch.") = None,
    verify_data: VerifyData = None,
    trust_checkpoint: TrustCheckpoint = False,
):
    """Make another exporter's OSNet graph a reid-trt graph: structure checked, opset raised for
    TensorRT, cleaned, the preprocessing contract written in, proven to compute what it did (or
    verified against PyTorch with --weights)."""
    from reid_trt.export.adopt import write_adopted

    path, adoption = write_adopted(
        graph, output, input_format=input_format, mean=_three(mean, "--mean"),
        std=_three(std, "--std"), size=parse_size(input_size) if input_size else None,
        weights=weights, trust_checkpoint=trust_checkpoint,
        crops=read_verify_crops(verify_data))
    for line in adoption.evidence:
        console.print(f"evidence    {line}")
    console.print(f"contract    {adoption.contract.summary()}")
    against = "PyTorch" if weights else "the original graph"
    console.print(f"verified    against {against}: {adoption.parity.summary()}")
    console.print(f"[green]wrote[/]       {path}")


# The graph a converting command reads (fp16, openvino).
GraphIn = Annotated[Path, typer.Option("--onnx", help="Graph from reid-export onnx (fp16: an "
                                       "fp32 one) or calibrate (openvino).", show_default=False)]


@app.command("fp16")
@fails_cleanly
def fp16_cmd(
    onnx_path: GraphIn,
    output: output_option("FP16 graph (default: <stem>.fp16.onnx beside it).") = None,
    verify_data: VerifyData = None,
):
    """Convert an fp32 graph to fp16 (InstanceNorm, L2 normalisation and reductions kept fp32,
    fp32 I/O), verified against the fp32 graph before it is written."""
    from reid_trt.export.convert import write_fp16

    path, conversion = write_fp16(onnx_path, output, read_verify_crops(verify_data))
    console.print(f"verified    against the fp32 graph: {conversion.parity.summary()}")
    console.print(f"[green]wrote[/]       {path}")


@app.command("openvino")
@fails_cleanly
def openvino_cmd(
    onnx_path: GraphIn,
    output: output_option("IR topology .xml (the .bin is written beside it; default: beside the "
                          "graph).") = None,
):
    """Convert a graph to OpenVINO IR (.xml + .bin) carrying the preprocessing contract,
    verified against ONNX Runtime before it is written."""
    from reid_trt.export.openvino import export_openvino

    result = export_openvino(onnx_path, output)
    console.print(f"verified    {result.parity.summary()}")
    console.print(f"[green]wrote[/]       {result.xml} and {result.weights.name}")


@app.command("deepstream")
@fails_cleanly
def deepstream_cmd(
    output: Annotated[Path, typer.Option("--output", "-o", help="Tracker config to write (.yml), "
                                         "or with --check the one to check.",
                                         show_default=False)],
    engine: Annotated[Path | None, typer.Option("--engine", help="Engine (.plan/.engine with its "
                                                "manifest) built from a --for deepstream graph."
                                                )] = None,
    onnx_path: graph_option("Or the graph itself (DeepStream builds and caches the engine).") = None,
    tracker: Annotated[str, typer.Option(help="nvdcf (reidType 2: re-association) or deepsort "
                                         "(reidType 1).")] = "nvdcf",
    batch: Annotated[int | None, typer.Option(help="batchSize [the engine profile's maximum; "
                                              "100 for a graph].", show_default=False)] = None,
    gpu_id: Annotated[int, typer.Option(help="GPU in the cached engine's name.")] = 0,
    check: Annotated[bool, typer.Option("--check", help="Check the ReID section of an existing "
                                        "config against the model instead of writing one.")]
        = False,
):
    """Write the ReID section of a DeepStream nvtracker config (NvDCF / NvDeepSORT) with every
    number taken from the model, or check an existing one."""
    from reid_trt.integrations import deepstream

    if check:
        deepstream.check_reid_config(output, engine, onnx_path)
        console.print(f"[green]ok[/]          {output}: its ReID section matches the model")
        return
    check_output(output, "-o", (".yml", ".yaml"), inputs=[engine, onnx_path])
    section = deepstream.reid_section(output, engine=engine, onnx_path=onnx_path,
                                      tracker=tracker, batch=batch, gpu=gpu_id)
    deepstream.write_reid_config(output, section)
    console.print(f"ReID        networkMode {section['networkMode']}, batchSize "
                  f"{section['batchSize']}, inferDims {section['inferDims']}, offsets 0, "
                  "netScaleFactor 1 (normalisation inside the graph)")
    console.print(f"[green]wrote[/]       {output}")


@app.command("triton")
@fails_cleanly
@takes(SERVE)
def triton_cmd(
    repo: Annotated[Path, typer.Option("--repo", help="Model repository folder (created if "
                                       "missing; its parent must exist).", show_default=False)],
    engine: Annotated[Path | None, typer.Option("--engine", help="Engine (.plan with its "
                                                "manifest) to serve.")] = None,
    onnx_path: graph_option("Or a graph from reid-export onnx/calibrate.") = None,
    *,
    options: ServeOptions,  # the options of SERVE, built by @takes
):
    """Write a Triton Inference Server model repository for an engine or a graph: config.pbtxt
    (checked with Triton's schema against the model) and the model file, written whole or not at
    all. Serve it with reid-serve, or unchanged in NVIDIA's Triton container."""
    from reid_trt.serving.config import parse_config
    from reid_trt.serving.repository import write_repository

    if (engine is None) == (onnx_path is None):
        raise ReidTrtError("pass one of --engine MODEL.plan or --onnx MODEL.onnx")
    model = engine or onnx_path
    folder = write_repository(repo, model, options)
    config = parse_config((folder / "config.pbtxt").read_text())
    console.print(f"[green]wrote[/] {folder}/config.pbtxt: {config.platform or config.backend}, "
                  f"max_batch_size {config.max_batch_size}, from {model}")
    console.print(f"serve it: reid-serve --repo {repo}")


@app.command("inspect")
@fails_cleanly
def inspect_cmd(path: Annotated[Path, typer.Argument(help=".onnx, or .plan/.engine with its "
                                                      "manifest.")]):
    """Show I/O, precision and the preprocessing contract of a graph or an engine."""
    from reid_trt.engine.inspect import describe

    facts, problems = describe(path)
    for key, value in facts.items():
        console.print(f"{key:<14}{value}", markup=False)
    if problems:
        raise ReidTrtError(f"{path}: its manifest does not describe it: {problems[0]}; "
                           f"{rebuild_advice(path)}")


@app.command("demo")
@fails_cleanly(flags={"variant": "--variant"})
def demo_cmd(
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o", help="Where to write.")] = Path(
        "out/demo"),
    variant: Annotated[str, typer.Option(help="Variant to generate weights for.")] =
        "osnet_ain_x1_0",
):
    """Run the whole pipeline on generated weights: needs no files of yours."""
    from reid_trt.cli.demo import numbered_steps, show_demo
    from reid_trt.demo import run_demo

    show_demo(run_demo(output_dir, variant, numbered_steps(console)), console)


def main() -> None:
    app()
