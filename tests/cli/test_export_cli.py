"""`reid-export` through Typer's runner: output, exit codes, one-line errors, nothing written."""

import json
import os

import onnx
import pytest
import torch
from typer.testing import CliRunner

from reid_trt.cli.export import app
from reid_trt.export.checks import batch_dim
from tests.conftest import SMALL

pytestmark = pytest.mark.slow  # whole commands, the demo included

runner = CliRunner()
SMALL_SIZE = f"{SMALL[0]}x{SMALL[1]}"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    text = result.stderr.strip()
    assert text.startswith("error:") and "\n" not in text, text
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in text, text


def test_onnx_then_verify_real_weights(real_weights, shared_data, tmp_path):
    out = tmp_path / "msmt.onnx"
    crops = shared_data / "reid" / "market1501"
    result = invoke("onnx", "-w", real_weights["msmt17"], "-o", out, "--verify-data", crops)
    assert result.exit_code == 0, result.output
    assert "variant     osnet_x0_25" in result.stdout and "16 stem channels" in result.stdout
    assert "9 crops: min cosine" in result.stdout and f"wrote       {out}" in result.stdout
    assert onnx.load(out).graph.output[0].name == "embeddings"

    result = invoke("verify", "--onnx", out, "-w", real_weights["msmt17"])
    assert result.exit_code == 0 and result.stdout.strip().endswith("ok"), result.output
    # The graph of one checkpoint does not verify against the other's weights.
    result = invoke("verify", "--onnx", out, "-w", real_weights["market1501"])
    one_line_error(result, "disagrees with PyTorch")
    assert "was exported from other weights" in result.stdout


def test_default_output_name(generated_checkpoint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    weights = generated_checkpoint("osnet_x0_25")
    # the trace tests/export's static-batch test makes (the run's cache folder keeps it)
    result = invoke("onnx", "-w", weights, "--precision", "fp16", "--input-size", SMALL_SIZE,
                    "--batch", "4")
    assert result.exit_code == 0, result.output
    assert batch_dim(onnx.load(tmp_path / "osnet_x0_25.fp16.onnx")) == 4
    result = invoke("onnx", "-w", weights, "--input-size", SMALL_SIZE, "--static-batch")
    assert result.exit_code == 0, result.output
    assert batch_dim(onnx.load(tmp_path / "osnet_x0_25.onnx")) == 1
    one_line_error(invoke("onnx", "-w", weights, "--batch", "4", "--dynamic-batch"),
                   "--batch 4 makes the batch static")


def test_bad_inputs_one_line_nothing_written(generated_checkpoint, tmp_path):
    weights = generated_checkpoint("osnet_x0_25")
    out = tmp_path / "out" / "m.onnx"
    (tmp_path / "out").mkdir()

    one_line_error(invoke("onnx", "-w", tmp_path / "missing.pth", "-o", out),
                   "missing.pth: no such file")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(weights.read_bytes()[:5000])
    one_line_error(invoke("onnx", "-w", truncated, "-o", out), "truncated.pth",
                   "not a readable PyTorch checkpoint")
    one_line_error(invoke("onnx", "-w", weights, "-o", out, "--variant", "osnet_x1_0"),
                   "does not fit osnet_x1_0", "looks like osnet_x0_25")
    foreign = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, foreign)
    one_line_error(invoke("onnx", "-w", foreign, "-o", out), "not an OSNet state dict")
    pickled = tmp_path / "pickled.pth"
    torch.save({"state_dict": torch.load(weights)["state_dict"], "cfg": os.environ.__class__},
               pickled)
    one_line_error(invoke("onnx", "-w", pickled, "-o", out), "--trust-checkpoint")
    one_line_error(invoke("onnx", "-w", weights, "-o", tmp_path / "nodir" / "m.onnx"),
                   "nodir does not exist")
    one_line_error(invoke("onnx", "-w", weights, "-o", tmp_path), "must end in .onnx")
    (tmp_path / "d.onnx").mkdir()
    one_line_error(invoke("onnx", "-w", weights, "-o", tmp_path / "d.onnx"), "is a directory")
    one_line_error(invoke("onnx", "-w", weights, "-o", out, "--precision", "int8"),
                   "--precision int8")
    assert list((tmp_path / "out").iterdir()) == []


def test_unwritable_output(generated_checkpoint, tmp_path):
    # /proc refuses new files for everybody, root included (a 0o500 folder would not stop root).
    one_line_error(invoke("onnx", "-w", generated_checkpoint("osnet_x0_25"), "-o",
                          "/proc/m.onnx"), "/proc")


def test_bad_input_size_is_a_usage_error(generated_checkpoint):
    result = invoke("onnx", "-w", generated_checkpoint("osnet_x0_25"), "--input-size", "256")
    assert result.exit_code == 2 and "HEIGHTxWIDTH" in result.output


def test_demo_runs_on_generated_weights(tmp_path):
    result = invoke("demo", "-o", tmp_path, "--variant", "osnet_ain_x0_25")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["bench.json", "bench.md", "osnet_ain_x0_25.fp16.onnx",
                     "osnet_ain_x0_25.fp16.plan", "osnet_ain_x0_25.fp16.plan.json",
                     "osnet_ain_x0_25.fp16.uint8.onnx", "osnet_ain_x0_25.fp32.onnx",
                     "osnet_ain_x0_25_generated.pth"]
    assert "ONNX Runtime vs PyTorch" in result.stdout and "TensorRT-RTX" in result.stdout
    bench = json.loads((tmp_path / "bench.json").read_text())
    assert [s["label"] for s in bench["subjects"]] == ["pytorch fp32", "ort fp32"]
    assert bench["subjects"][1]["parity"]["min_cosine"] > 0.9999


def test_trt_from_weights_then_inspect(real_weights, tmp_path):
    engine = tmp_path / "x025.plan"
    result = invoke("trt", "-w", real_weights["msmt17"], "--precision", "fp16", "-o", engine,
                    "--max-batch", "32", "--opt-batch", "8")
    assert result.exit_code == 0, result.output
    assert "built       TensorRT-RTX" in result.stdout and "batch 1..32 (opt 8)" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x025.onnx", "x025.plan",
                                                          "x025.plan.json"]
    shown = invoke("inspect", engine)
    assert shown.exit_code == 0, shown.output
    assert "precision     fp16" in shown.stdout and "engine sha256" in shown.stdout
    assert "layers        unavailable here" in shown.stdout  # no GPU on CI machines
    assert "manifest      agrees with the engine's own tensors" in shown.stdout
    shown = invoke("inspect", tmp_path / "x025.onnx")
    assert "inputs        images FLOAT [batch, 3, 256, 128]" in shown.stdout


def test_trt_errors(real_weights, tmp_path):
    one_line_error(invoke("trt", "-o", tmp_path / "m.plan"), "exactly one of --onnx")
    one_line_error(invoke("trt", "-w", real_weights["msmt17"], "--precision", "int8",
                          "-o", tmp_path / "m.plan"), "needs calibration: pass --int8")
    one_line_error(invoke("trt", "--onnx", tmp_path / "none.onnx"), "none.onnx: no such file")
    one_line_error(invoke("inspect", tmp_path / "m.txt"), "inspect takes .onnx")
    assert list(tmp_path.iterdir()) == []
