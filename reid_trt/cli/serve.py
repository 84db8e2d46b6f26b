"""`reid-serve`: Triton Inference Server on a repository written by `reid-export triton`."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from reid_trt.cli.common import console, fails_cleanly, printable
from reid_trt.cli.groups import Group, takes
from reid_trt.serving.server import ServerConfig, TritonServer

SERVER = Group("config", ServerConfig, ("host", "http_port", "grpc_port", "metrics_port", "timeout"))
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)


@app.command()
@fails_cleanly
@takes(SERVER)
def serve(
    repo: Annotated[Path, typer.Option("--repo", help="Model repository from reid-export "
                                       "triton.", show_default=False)],
    *,
    config: ServerConfig,  # the options of SERVER, built by @takes
):
    """Serve a model repository with NVIDIA Triton Inference Server until Ctrl-C."""
    server = TritonServer(repo, config)
    # SIGTERM (docker stop, systemd) ends it as Ctrl-C does: the server is stopped, not orphaned.
    # SIGINT too, even when started with it ignored (background jobs of scripts inherit that).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.default_int_handler)
    with console.status(f"starting Triton on {repo}"):
        server.start()
    try:
        for name in server.models:
            console.print(f"serving [bold]{escape(printable(name))}[/]: grpc {server.grpc_url}, http "
                          f"{server.http_url}, metrics {server.host}:"
                          f"{server.ports['metrics_port']}/metrics")
        console.print("Ctrl-C stops it")
        code = server.wait()
    except KeyboardInterrupt:
        console.print("stopping")
        code = 0
    finally:
        server.stop()
    if code:
        raise typer.Exit(code)


def main() -> None:
    app()
