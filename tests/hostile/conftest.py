"""A workspace of real artifacts for hostile inputs, and the checks every case makes.

Every case runs in a fresh folder holding copies of a real osnet_x0_25 checkpoint, its exported
graph, a TensorRT-RTX engine built from it, a few real crops and assorted broken files; after the
case the folder must hold exactly what it held before (names, sizes, modes, contents, hidden
files included).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import made_once


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory, real_weights, shared_data) -> dict[str, Path]:
    from reid_trt.engine.build import BuildConfig, engine_from_onnx
    from reid_trt.export.api import export_onnx

    def make(folder: Path) -> None:
        graph = export_onnx(real_weights["msmt17"], folder / "m.onnx").path
        engine_from_onnx(graph, folder / "m.plan", BuildConfig(max_batch=8))

    folder = made_once(tmp_path_factory, "hostile_artifacts", make)
    return {"weights": real_weights["msmt17"], "graph": folder / "m.onnx",
            "engine": folder / "m.plan",
            "crops": shared_data / "reid" / "market1501",
            "mot": shared_data / "reid" / "mot17-mini"}


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry below root (hidden ones too): kind, size, mode and content hash."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            stat = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
            state[str(path.relative_to(root))] = (path.is_dir(), stat.st_size if digest else 0,
                                                  stat.st_mode, digest)
    return state


@dataclass
class Workspace:
    root: Path

    def __truediv__(self, name: str) -> Path:
        return self.root / name

    def write(self, name: str, data: bytes | str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path


@pytest.fixture
def ws(tmp_path, artifacts, monkeypatch) -> Workspace:
    """Copies of the artifacts plus broken files, in the current directory."""
    root = tmp_path / "ws"
    root.mkdir()
    shutil.copy(artifacts["weights"], root / "w.pth")
    shutil.copy(artifacts["graph"], root / "m.onnx")
    shutil.copy(artifacts["engine"], root / "m.plan")
    shutil.copy(artifacts["engine"].with_name("m.plan.json"), root / "m.plan.json")
    shutil.copytree(artifacts["crops"], root / "crops")
    w = Workspace(root)
    w.write("notes.txt", "not a model\n")
    w.write(".hidden", "kept\n")
    w.write("text.pth", "hello")
    w.write("truncated.onnx", (root / "m.onnx").read_bytes()[:4096])
    (root / "empty").mkdir()
    monkeypatch.chdir(root)
    return w


def one_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{text}"
    assert "Traceback" not in text
    return lines[0]


runner = CliRunner()


def run_cli(app, ws: Workspace, args: list, code: int, *fragments: str) -> str:
    """Runs a command on a workspace; checks the exit code, the one-line message (for exit 1)
    or Click's usage error (exit 2) naming the fragments, and that nothing changed on disk."""
    before = snapshot(ws.root)
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, (args, result.output, result.exception)
    if code == 1:
        message = one_line(result.stderr)
        assert message.startswith("error:"), message
    else:
        message = result.stderr
        assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert snapshot(ws.root) == before, f"{args} changed the workspace"
    return message


def edit_manifest(ws: Workspace, change) -> None:
    path = ws / "m.plan.json"
    data = json.loads(path.read_text())
    path.write_text(json.dumps(change(data)))
