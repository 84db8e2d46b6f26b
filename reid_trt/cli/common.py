"""What every command shares: the console, option types declared once, one-line errors."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from reid_trt.core.errors import ReidTrtError, missing_module

# soft_wrap: long paths stay on one line (copyable, greppable) instead of wrapping at 80 columns.
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

# Library configs name their fields; users know the flags.
FLAGS = {
    "precision": "--precision", "io_dtype": "--io-dtype", "input_format": "--input",
    "batch": "--batch", "batches": "--batch", "opset": "--opset", "input_size": "--input-size",
    "variant": "--variant", "min_batch": "--min-batch", "opt_batch": "--opt-batch",
    "max_batch": "--max-batch", "workspace_mib": "--workspace", "opt_level": "--opt-level",
    "dla_core": "--dla-core", "trt": "--trt", "instancenorm": "--instancenorm",
    "compute_capabilities": "--compute-capability", "timing_cache": "--timing-cache",
    "hardware_compatibility": "--hardware-compatibility", "dataset": "--calib-dataset",
    "size": "--calib-size", "method": "--calib-method", "unquantized": "--unquantized",
    "max_map_drop": "--max-map-drop", "calib_data": "--calib-data", "runs": "--runs",
    "warmup": "--warmup", "rounds": "--rounds", "num_crops": "--num-crops", "topk": "--topk",
    "max_queries": "--max-queries", "device": "--device", "augment": "--calib-augment",
    "name": "--name", "kind": "--kind", "instances": "--instances",
    "max_queue_delay_us": "--max-queue-delay-us", "http_port": "--http-port",
    "grpc_port": "--grpc-port", "metrics_port": "--metrics-port", "clients": "--clients",
    "client_requests": "--client-requests", "client_batch": "--client-batch", "host": "--host",
    "timeout": "--timeout", "consumer": "--for", "output": "-o", "spin": "--spin",
}


def flag_namer(flags: dict[str, str] | None = None):
    """field -> its flag, by FLAGS (`flags` overriding it for one command), else the field
    spelt as a flag; an environment variable (REID_TRT_THREADS) keeps its name."""
    names = {**FLAGS, **(flags or {})}
    return lambda field: field if field.isupper() else names.get(
        field, "--" + field.replace("_", "-"))


def fails_cleanly(fn=None, *, flags: dict[str, str] | None = None):
    """Turns a ReidTrtError into one line on stderr and exit code 1 (no traceback), every option
    it names written as this command's flag. `flags` overrides FLAGS for one command."""
    flag_of = flag_namer(flags)

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except ReidTrtError as e:
                fail(e.worded(flag_of))
            except ModuleNotFoundError as e:  # an optional package this install lacks
                missing = missing_module(e, _command_line_name(fn))
                if missing is None:
                    raise
                fail(missing.worded(flag_of))
            except KeyboardInterrupt:
                err_console.print("[bold red]interrupted[/]: nothing was written")
                raise typer.Exit(130) from None

        return wrapper

    return decorate(fn) if fn is not None else decorate


def _command_line_name(fn) -> str:
    """'reid-export onnx' for export's onnx_cmd, 'reid-bench' for a one-command program."""
    program = Path(sys.argv[0]).name
    command = fn.__name__.removesuffix("_cmd")
    return f"'{program}'" if program.endswith(command) else f"'{program} {command}'"


def printable(text: str) -> str:
    """`text` for a terminal: control characters (escape sequences a file or name may carry)
    written as \\xNN, so what is echoed cannot move the cursor, recolour or hide the rest."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def fail(message: str, code: int = 1):
    # One line: a message that quotes a file's content must not break the "one line" promise.
    text = printable(" ".join(str(message).split()))
    err_console.print(f"[bold red]error:[/] {escape(text)}")
    raise typer.Exit(code)


def parse_size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"'{text}' is not HEIGHTxWIDTH, e.g. 256x128") from None
    return height, width


def output_option(what: str):
    """The -o/--output option of a command that writes a file: `what` says which, and its
    default name."""
    return Annotated[Path | None, typer.Option("--output", "-o", help=what)]


def graph_option(what: str):
    """An optional --onnx input: `what` says which graph the command takes."""
    return Annotated[Path | None, typer.Option("--onnx", help=what)]


def weights_option(what: str):
    """An optional -w/--weights input: `what` says what the command does with the checkpoint."""
    return Annotated[Path | None, typer.Option("--weights", "-w", help=what)]


Weights = Annotated[Path, typer.Option("--weights", "-w", help="torchreid checkpoint (.pth/.pt).",
                                       show_default=False)]
Variant = Annotated[str, typer.Option(help="OSNet variant, or 'auto' to detect from the weights.")]
TrustCheckpoint = Annotated[bool, typer.Option(
    "--trust-checkpoint", help="Allow pickled Python objects in the checkpoint (runs code from "
    "the file: only for files you trust).")]
VerifyData = Annotated[Path | None, typer.Option(
    help="Folder of real crops for verification (default: generated person-like crops).")]


def read_verify_crops(folder: Path | None):
    from reid_trt.data.folder import read_crops

    return read_crops(folder, limit=64) if folder else None
