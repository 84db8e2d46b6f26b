"""What every command shares: the console, option types declared once, one-line errors."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from reid_trt.errors import ReidTrtError

# soft_wrap: long paths stay on one line (copyable, greppable) instead of wrapping at 80 columns.
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def fails_cleanly(fn):
    """Turns a ReidTrtError into one line on stderr and exit code 1 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ReidTrtError as e:
            err_console.print(f"[bold red]error:[/] {e}")
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err_console.print("[bold red]interrupted[/]: nothing was written")
            raise typer.Exit(130) from None

    return wrapper


def parse_size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"'{text}' is not HEIGHTxWIDTH, e.g. 256x128") from None
    return height, width


Weights = Annotated[Path, typer.Option("--weights", "-w", help="torchreid checkpoint (.pth/.pt).",
                                       show_default=False)]
Variant = Annotated[str, typer.Option(help="OSNet variant, or 'auto' to detect from the weights.")]
TrustCheckpoint = Annotated[bool, typer.Option(
    "--trust-checkpoint", help="Allow pickled Python objects in the checkpoint (runs code from "
    "the file: only for files you trust).")]
VerifyData = Annotated[Path | None, typer.Option(
    help="Folder of real crops for verification (default: generated person-like crops).")]
