"""Runs NVIDIA Triton Inference Server on a model repository: the `tritonserver` binary that the
nvidia-pytriton wheel carries (reid-trt[serve]), or one on PATH (NVIDIA's container).

The server binds to loopback unless told otherwise, is ready (every model loaded) before
`start` returns, and always stops: on `stop`, on leaving the `with` block, and at interpreter
exit; it runs in its own process group, so the Python backend's stub processes go with it.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

from reid_trt.core.errors import MissingDependencyError, ReidTrtError, opt
from reid_trt.core.options import ConfigError, bounded, described

LOG_TAIL = 12  # server log lines quoted when it fails to start
SHM = Path("/dev/shm")
# Lines of Triton's log that say a model failed: the server may stay up (or take its whole
# timeout to give up), so `start` stops at the first of them instead of waiting.
# (A Python model whose model.py is missing stays "loading" for ever after the stub's line.)
MODEL_FAILED = re.compile(r"failed to load '([^']+)'|Poll failed for model directory '([^']+)'"
                          r"|failed to load all models|Failed to preinitialize Python stub"
                          r"|Stub process '[^']*' is not healthy")


@dataclass(frozen=True)
class Installation:
    binary: Path
    backends: Path  # the folder with python/libtriton_python.so
    libraries: Path | None  # shared libraries the binary needs (LD_LIBRARY_PATH)
    stub: Path | None  # the Python backend stub for this interpreter's version


def find_tritonserver() -> Installation:
    spec = importlib.util.find_spec("pytriton")  # located, not imported (that is slow)
    if spec is not None and spec.submodule_search_locations:
        root = Path(next(iter(spec.submodule_search_locations)))
        server = root / "tritonserver"
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        stub = server / "python_backend_stubs" / version / "triton_python_backend_stub"
        if (server / "bin" / "tritonserver").is_file():
            return Installation(server / "bin" / "tritonserver", server / "backends",
                                root.parent / "nvidia_pytriton.libs", stub if stub.is_file()
                                else None)
    binary = shutil.which("tritonserver")
    if binary is not None:  # NVIDIA's container: backends beside the server, stub included
        return Installation(Path(binary), Path(binary).resolve().parent.parent / "backends",
                            None, None)
    raise MissingDependencyError("nvidia-pytriton", "serve", "running Triton Inference Server",
                                 "; or run NVIDIA's Triton container (see the README)")


def backend_folder(install: Installation, into: Path) -> Path:
    """Triton's Python backend wants its stub beside libtriton_python.so; the wheel keeps one
    stub per Python version apart. Links in a folder of our own leave the wheel untouched."""
    if install.stub is None:
        return install.backends
    python = into / "python"
    python.mkdir(parents=True)
    for item in (install.backends / "python").iterdir():
        (python / item.name).symlink_to(item)
    (python / install.stub.name).symlink_to(install.stub)
    return into


BACKENDS = {"tensorrt_plan": "tensorrt", "onnxruntime_onnx": "onnxruntime"}


def check_backends(configs: dict, install: Installation) -> None:
    """Every model's backend is installed: a missing one is named before the server starts."""
    for name, config in configs.items():
        backend = config.backend or BACKENDS.get(config.platform, config.platform)
        if backend and not (install.backends / backend).is_dir():
            have = ", ".join(sorted(p.name for p in install.backends.iterdir() if p.is_dir()))
            raise ReidTrtError(
                f"model '{name}' needs Triton's {backend} backend, which the server at "
                f"{install.binary} lacks (it has: {have or 'none'}); serve the repository in "
                "NVIDIA's Triton container (see the README), or write the model with "
                "'reid-export triton --kind python'")


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def check_port(host: str, port: int, field: str) -> int:
    """`port`, free on `host` (0: any free one); a taken one is an error naming it."""
    bounded(port, field, 0, 65535)
    if port == 0:
        return free_port(host)
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise ConfigError(field, port, f"{host}:{port} is not free ({e.strerror}): another "
                              "server is listening there; pass another port") from None
    return port


def check_host(host: str) -> str:
    """`host`, if this machine can listen on it (checked by binding a port there, so an address
    of another machine fails here, naming the host, not later as a port or a traceback)."""
    hint = "use 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)"
    try:
        socket.getaddrinfo(host, None)
        with socket.socket() as s:
            s.bind((host, 0))
    except (socket.gaierror, UnicodeError) as e:
        raise ConfigError("host", host, f"not an address ({e}); {hint}") from None
    except OSError as e:
        raise ConfigError("host", host, f"not an address of this machine ({e.strerror}); "
                          f"{hint}") from None
    return host


def _die_with_parent() -> None:
    """In the child: SIGTERM when the process that started the server dies, even by SIGKILL
    (where neither `stop` nor atexit runs). Linux only; elsewhere `stop` and atexit must do.
    The signal follows the starting *thread*, so it is set only when that is the main thread."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass(frozen=True)
class ServerConfig:
    """Where the server listens and how long it may take to start (`reid-serve`'s options),
    checked on construction; whether this machine can listen there is checked by TritonServer."""

    host: str = described("127.0.0.1", "Address to bind (0.0.0.0: every interface).")
    http_port: int = described(8000, "HTTP port (0: any free one).")
    grpc_port: int = described(8001, "gRPC port (0: any free one).")
    metrics_port: int = described(8002, "Prometheus metrics port.")
    timeout: float = described(120.0, "Seconds to wait for the models to load.")

    def __post_init__(self):
        if not isinstance(self.timeout, (int, float)) or not 0 < self.timeout <= 3600:
            raise ConfigError("timeout", self.timeout, "give seconds between 0 and 3600")
        for name, port in self.ports.items():
            bounded(port, name, 0, 65535)
        given = [p for p in self.ports.values() if p]
        if len(set(given)) < len(given):
            raise ConfigError("http_port", self.http_port, "the HTTP, gRPC and metrics ports "
                              "must differ")

    @property
    def ports(self) -> dict[str, int]:
        return {"http_port": self.http_port, "grpc_port": self.grpc_port,
                "metrics_port": self.metrics_port}


class TritonServer:
    """A Triton server process over `repo` (a model repository, see `write_repository`),
    listening as `config` says; keyword arguments override its fields (`http_port=0`: any free
    port). Every endpoint binds to loopback unless told otherwise."""

    def __init__(self, repo: Path, config: ServerConfig | None = None, **options):
        self.repo = Path(repo).resolve()
        self.config = replace(config or ServerConfig(), **options)
        self.host = check_host(self.config.host)
        self.ports = {k: check_port(self.host, v, k) for k, v in self.config.ports.items()}
        self.process: subprocess.Popen | None = None
        self._scratch: Path | None = None
        self.shm_prefix = f"reid_serve_{os.getpid()}_{secrets.token_hex(4)}_"

    @property
    def http_url(self) -> str:
        return f"{self._client_host}:{self.ports['http_port']}"

    @property
    def grpc_url(self) -> str:
        return f"{self._client_host}:{self.ports['grpc_port']}"

    @property
    def _client_host(self) -> str:
        return "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host

    @property
    def log(self) -> Path | None:
        return self._scratch / "tritonserver.log" if self._scratch else None

    def command(self, install: Installation, backends: Path) -> list[str]:
        return [str(install.binary), f"--model-repository={self.repo}",
                f"--backend-directory={backends}", "--exit-timeout-secs=10",
                # Python models share memory with the server through /dev/shm regions; a prefix
                # of our own lets `stop` remove this server's, even after a SIGKILL.
                f"--backend-config=python,shm-region-prefix-name={self.shm_prefix}",
                f"--http-address={self.host}", f"--http-port={self.ports['http_port']}",
                f"--grpc-address={self.host}", f"--grpc-port={self.ports['grpc_port']}",
                f"--metrics-address={self.host}", f"--metrics-port={self.ports['metrics_port']}"]

    def start(self) -> TritonServer:
        from reid_trt.serving.repository import read_repository

        configs = read_repository(self.repo)  # a bad config fails here, in one line
        self.models = list(configs)
        install = find_tritonserver()
        check_backends(configs, install)
        self._scratch = Path(tempfile.mkdtemp(prefix="reid-serve-"))
        env = dict(os.environ)
        if install.libraries is not None:
            env["LD_LIBRARY_PATH"] = os.pathsep.join(
                p for p in (str(install.libraries), env.get("LD_LIBRARY_PATH")) if p)
        command = self.command(install, backend_folder(install, self._scratch / "backends"))
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=env,
                                            start_new_session=True, preexec_fn=_die_with_parent
                                            if threading.current_thread() is
                                            threading.main_thread() else None)
        atexit.register(self.stop)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _get(self, path: str) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.http_url}{path}", timeout=2) as reply:
                return reply.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.config.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ReidTrtError(f"Triton exited with code {self.process.returncode} while "
                                   f"starting: {self.log_tail()}")
            if self.model_failures():
                raise ReidTrtError(f"Triton could not load the model: {self.log_tail()}")
            if self._get("/v2/health/ready") and all(
                    self._get(f"/v2/models/{name}/ready") for name in self.models):
                return
            time.sleep(0.2)
        # reid-trt's own option and fix first: Triton's last words follow, for whoever reads on
        raise ReidTrtError(f"{opt('timeout')} {self.config.timeout:g}: Triton was not ready "
                           "within it (loading a model takes seconds to a minute); raise it. "
                           f"Triton said: {self.log_tail()}")

    def _log_lines(self) -> list[str]:
        try:
            return self.log.read_text(errors="replace").splitlines()
        except (OSError, AttributeError):
            return []

    def model_failures(self) -> list[str]:
        """Log lines in which Triton says a model failed to load."""
        return [line for line in self._log_lines() if MODEL_FAILED.search(line)]

    def log_tail(self) -> str:
        """Triton's reason, for a one-line message: the error lines that name a served model
        (or say a model failed), else the last error lines, else the last lines. Lines about
        the GPU (absent on a CPU machine, and never the reason here) come last."""
        lines = self._log_lines()
        if not lines:
            return "no log"
        errors = [line for line in lines if line.startswith(("E", "error"))]
        models = getattr(self, "models", [])
        named = [line for line in errors + lines if MODEL_FAILED.search(line) or any(
            f"'{name}'" in line or f"/{name}/" in line for name in models)]
        chosen = list(dict.fromkeys(named)) or errors or lines
        chosen.sort(key=lambda line: "cuda" in line.lower())
        text = " | ".join(line.strip() for line in chosen[:LOG_TAIL])
        return "".join(ch if ch.isprintable() else "?" for ch in text)[:2000]

    def wait(self) -> int:
        """Blocks until the server exits; its exit code."""
        return self.process.wait()

    def stop(self) -> None:
        """Stops the server and everything it started (idempotent)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
                try:
                    os.killpg(process.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    process.wait(grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if process is not None:
            try:  # the stubs of the Python backend, should any outlive the server
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        atexit.unregister(self.stop)
        for region in SHM.glob(f"{self.shm_prefix}*") if SHM.is_dir() else []:
            region.unlink(missing_ok=True)  # what a killed Python backend left behind
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def __enter__(self) -> TritonServer:
        return self.start() if self.process is None else self

    def __exit__(self, *exc) -> None:
        self.stop()
