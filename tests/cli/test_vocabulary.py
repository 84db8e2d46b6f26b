"""One vocabulary: the library names options by their config fields (`opt("calib_data")`), the
CLI writes each as its flag through one table; no command-line flag is written below cli/."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import reid_trt
from reid_trt.cli import bench, export, serve
from reid_trt.cli.common import FLAGS
from reid_trt.core.errors import ReidTrtError, opt

PACKAGE = Path(reid_trt.__file__).parent
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
# A shell command quoted as advice ('reid-export onnx --precision fp32') is a command to run, not
# an option of the call that failed; another program's argv ("--model-repository=...") is not ours.
COMMAND = re.compile(r"(reid-export|reid-bench|reid-serve|trtexec|tritonserver)[^'`\"]*")


def strings_of(path: Path):
    """(line, text) of each string literal that is not a docstring; an f-string's literal parts
    joined with its holes as {}."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                       ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    parts = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
    for node in ast.walk(tree):
        if id(node) in parts:
            continue
        if isinstance(node, ast.JoinedStr):
            yield node.lineno, "".join(v.value if isinstance(v, ast.Constant) else "{}"
                                       for v in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in docstrings:
            yield node.lineno, node.value


def flags_below_cli() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent.name == "cli":
            continue
        for line, text in strings_of(path):
            if text.startswith("--") and "=" in text:
                continue
            for flag in FLAG.findall(COMMAND.sub("", text)):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {flag}")
    return found


def test_no_command_line_flag_below_cli():
    assert flags_below_cli() == []


def test_the_check_finds_a_flag_and_spares_commands(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('"""Docstring naming --onnx."""\n'
                      'def f(x):\n    raise ValueError(f"--calib-data {x}: empty; run '
                      '\'reid-export onnx --precision fp32\'")\n')
    assert [FLAG.findall(COMMAND.sub("", t)) for _, t in strings_of(sample)] == [["--calib-data"]]


def cli_flags() -> set[str]:
    flags = set()
    for app in (export.app, bench.app, serve.app):
        command = typer.main.get_command(app)
        commands = command.commands.values() if hasattr(command, "commands") else [command]
        for cmd in commands:
            flags |= {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
    return flags


def test_every_option_the_library_names_is_a_flag_of_some_command():
    named = set()
    for path in PACKAGE.rglob("*.py"):
        named |= set(re.findall(r"""opt\(["']([a-z_0-9]+)["']\)""", path.read_text()))
    flags = cli_flags()
    unknown = {f: FLAGS.get(f, "--" + f.replace("_", "-")) for f in sorted(named)}
    assert {f: flag for f, flag in unknown.items() if flag not in flags} == {}
    assert len(named) > 30


def test_python_callers_read_fields_and_the_command_line_reads_flags(tmp_path):
    from reid_trt.engine.build import BuildConfig
    from reid_trt.engine.pipeline import build_engine

    with pytest.raises(ReidTrtError) as caught:
        build_engine(tmp_path / "x.plan", BuildConfig())
    assert str(caught.value) == ("pass exactly one of onnx (an exported graph) or weights (a "
                                 "torchreid checkpoint)")
    result = CliRunner().invoke(export.app, ["trt", "-o", str(tmp_path / "x.plan")])
    assert result.exit_code == 1
    assert "pass exactly one of --onnx (an exported graph) or --weights (a torchreid checkpoint)" \
        in " ".join(result.output.split())
    assert not list(tmp_path.iterdir())


def test_a_field_is_worded_by_the_command_that_ran():
    error = ReidTrtError(f"{opt('dataset')} market1501 /x: no query/gallery split")
    assert str(error).startswith("dataset market1501")
    assert error.worded(lambda f: {"dataset": "--dataset"}[f]).startswith("--dataset market1501")


def _options(app, name: str) -> dict[str, object]:
    command = typer.main.get_command(app)
    command = command.commands[name] if hasattr(command, "commands") else command
    return {o: p for p in command.params for o in p.opts}


def test_an_option_group_is_one_declaration_shared_by_its_commands():
    """trt and calibrate take the calibration options from CalibrationConfig's fields: the same
    flags, help and defaults in both, as the config declares them."""
    import dataclasses

    from reid_trt.calibration.api import CalibrationConfig
    from reid_trt.cli.common import flag_namer

    flag_of = flag_namer()
    trt, calibrate = _options(export.app, "trt"), _options(export.app, "calibrate")
    declared = {f.name: f for f in dataclasses.fields(CalibrationConfig) if f.metadata.get("help")}
    assert {"dataset", "size", "method", "augment", "equalize"} <= set(declared)
    for name, field in declared.items():
        flag = flag_of(name)
        if name == "unquantized":  # one flag for two fields: trt shows the build's (None: the
            continue  # graph's record), calibrate the calibration's (fp16)
        assert trt[flag].help == calibrate[flag].help == field.metadata["help"], flag
        assert trt[flag].default == calibrate[flag].default, flag
    assert trt["--max-map-drop"].default == calibrate["--max-map-drop"].default == 0.5
