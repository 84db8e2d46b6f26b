"""Replacements that never half-happen (issue 30): every command that replaces files checks first
that everything it will move or delete can be, and on any failure puts back what was there. The
faults are real where the machine allows (immutable files, chattr +i, which binds root too) and
injected otherwise (a rename or a write that fails part-way)."""

import errno
import os
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from reid_trt.cli.export import app
from reid_trt.core import fileio
from reid_trt.core.errors import OutputPathError

runner = CliRunner()


def snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None
            for p in sorted(folder.rglob("*"))}


@pytest.fixture
def immutable():
    """lock(path): chattr +i (undone after the test); skips where the filesystem or user cannot."""
    locked = []

    def lock(path):
        result = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True) \
            if shutil.which("chattr") else None
        if result is None or result.returncode != 0:
            pytest.skip("no chattr +i here (needs root on ext4/xfs)")
        locked.append(path)

    yield lock
    for path in locked:
        subprocess.run(["chattr", "-i", str(path)], check=False)


def one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("command", ["trt", "openvino", "calibrate", "triton", "deepstream"])
def test_an_immutable_old_file_refuses_the_replacement_and_changes_nothing(
        command, graphs, shared_data, immutable, tmp_path):
    graph = str(graphs["osnet_x0_25", "fp32"])
    out = tmp_path / "out"
    out.mkdir()
    if command == "triton":
        assert runner.invoke(app, ["triton", "--onnx", graph, "--repo", str(out / "repo")]
                             ).exit_code == 0
        locked = next(p for p in (out / "repo").rglob("*.onnx"))  # inside the model's folder
        args = ["triton", "--onnx", graph, "--repo", str(out / "repo")]
    else:
        names = {"trt": ("e.plan", "e.plan.json"), "openvino": ("o.xml", "o.bin"),
                 "calibrate": ("m.int8.onnx", "m.int8.calib.json"),
                 "deepstream": ("t.yml",)}[command]
        for name in names:
            (out / name).write_text(f"the old {name}\n")
        locked = out / names[-1]  # the side file where there is one: the main one alone would
        # be replaced
        args = {"trt": ["trt", "--onnx", graph, "-o", str(out / names[0])],
                "openvino": ["openvino", "--onnx", graph, "-o", str(out / names[0])],
                "calibrate": ["calibrate", "--onnx", graph, "--calib-data",
                              str(shared_data / "reid" / "market1501"), "-o",
                              str(out / names[0])],
                "deepstream": ["deepstream", "--onnx", graph, "-o", str(out / names[0])]}[command]
    before = snapshot(tmp_path)
    immutable(locked)
    one_line_error(runner.invoke(app, args), str(locked.name))
    assert snapshot(tmp_path) == before  # nothing changed, nothing left beside it


def test_a_rename_that_fails_part_way_puts_the_old_set_back(tmp_path, monkeypatch):
    """A kill or a full disk between two renames: the second fails, the first is undone."""
    engine, manifest = tmp_path / "m.plan", tmp_path / "m.plan.json"
    engine.write_text("old engine")
    manifest.write_text("old manifest")
    real = os.rename
    calls = []

    def rename(src, dst):
        calls.append((src, dst))
        if len(calls) == 4:  # both old files moved aside, the first new one placed
            raise OSError(errno.ENOSPC, "No space left on device", str(src))
        return real(src, dst)

    monkeypatch.setattr(fileio.os, "rename", rename)
    with pytest.raises(OutputPathError, match="cannot be replaced .*nothing was changed") as e, \
            fileio.atomic_paths(engine, manifest) as (new_engine, new_manifest):
        new_engine.write_text("new engine")
        new_manifest.write_text("new manifest")
    assert "\n" not in str(e.value)
    assert engine.read_text() == "old engine" and manifest.read_text() == "old manifest"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.plan", "m.plan.json"]


def test_a_write_that_fails_leaves_nothing(tmp_path):
    (tmp_path / "m.int8.onnx").write_text("old graph")
    paths = [tmp_path / n for n in ("m.int8.onnx", "m.int8.abc.calib", "m.int8.calib.json")]
    with pytest.raises(OSError, match="No space"), fileio.atomic_paths(*paths) as staged:
        staged[0].write_text("new graph")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.int8.onnx"]
    assert (tmp_path / "m.int8.onnx").read_text() == "old graph"


def test_the_demo_refuses_an_old_file_it_cannot_replace_before_any_work(tmp_path, immutable):
    """The demo writes eight files: an old one it cannot replace is refused before any work."""
    out = tmp_path / "demo"
    out.mkdir()
    (out / "bench.md").write_text("an old report\n")
    (out / "notes.txt").write_text("the user's\n")
    before = snapshot(tmp_path)
    immutable(out / "bench.md")
    one_line_error(runner.invoke(app, ["demo", "-o", str(out), "--variant", "osnet_x0_25"]),
                   "bench.md")
    assert snapshot(tmp_path) == before


def test_the_demo_is_whole_or_nothing(tmp_path, monkeypatch):
    """A step that fails part-way leaves the folder as it was, with no staging folder left (no
    root or chattr needed: the fault is injected)."""
    import reid_trt.export.api

    out = tmp_path / "demo"
    out.mkdir()
    (out / "bench.md").write_text("an old report\n")
    (out / "notes.txt").write_text("the user's\n")
    before = snapshot(tmp_path)

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(reid_trt.export.api, "export_onnx", no_space)  # after the weights
    result = runner.invoke(app, ["demo", "-o", str(out), "--variant", "osnet_x0_25"])
    assert result.exit_code != 0
    assert snapshot(tmp_path) == before  # the weights it had generated went with the stage
    result = runner.invoke(app, ["demo", "-o", str(tmp_path / "new"), "--variant", "osnet_x0_25"])
    assert result.exit_code != 0 and not (tmp_path / "new").exists()  # a folder it made goes too


@pytest.mark.parametrize("command", ["onnx", "trt", "openvino", "calibrate", "triton",
                                     "deepstream"])
def test_a_folder_that_takes_no_new_files_is_refused_up_front(
        command, graphs, real_weights, shared_data, immutable, tmp_path):
    """An immutable output folder (a read-only mount behaves alike; root ignores mode bits):
    refused in one line before any work, nothing written anywhere."""
    graph = str(graphs["osnet_x0_25", "fp32"])
    out = tmp_path / "out"
    out.mkdir()
    args = {"onnx": ["onnx", "-w", str(real_weights["msmt17"]), "-o", str(out / "x.onnx")],
            "trt": ["trt", "--onnx", graph, "-o", str(out / "e.plan")],
            "openvino": ["openvino", "--onnx", graph, "-o", str(out / "o.xml")],
            "calibrate": ["calibrate", "--onnx", graph, "--calib-data",
                          str(shared_data / "reid" / "market1501"), "-o", str(out / "q.onnx")],
            "triton": ["triton", "--onnx", graph, "--repo", str(out / "repo")],
            "deepstream": ["deepstream", "--onnx", graph, "-o", str(out / "t.yml")]}[command]
    before = snapshot(tmp_path)
    immutable(out)
    one_line_error(runner.invoke(app, args), "out", "Operation not permitted")
    assert snapshot(tmp_path) == before
