"""The light install (issue 30): with `pip install 'reid-trt[ort,headless]'` there is no torch.
Every command that needs it says which extra to install in one line, exit code 1, and writes
nothing; Embedder runs graphs without it. Simulated in a fresh interpreter where importing torch
fails as it does when torch is not installed."""

import subprocess
import sys

import pytest

NO_TORCH = """
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision"):
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
sys.meta_path.insert(0, NoTorch())
"""


def run(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NO_TORCH + code, *args], capture_output=True,
                          text=True, timeout=300)


def reid_export(*args: str) -> subprocess.CompletedProcess:
    return run("from reid_trt.cli.export import main\nsys.argv[0] = 'reid-export'\nmain()", *args)


@pytest.mark.parametrize("command", [
    lambda w, g, out: ["onnx", "-w", str(w), "-o", str(out / "m.onnx")],
    lambda w, g, out: ["demo", "--output-dir", str(out / "demo")],
    lambda w, g, out: ["verify", "--onnx", str(g), "-w", str(w)],
    lambda w, g, out: ["calibrate", "-w", str(w), "--calib-data", str(out)],
])
def test_commands_that_need_torch_name_the_extra(real_weights, graphs, tmp_path, command):
    out = tmp_path / "out"
    out.mkdir()
    result = reid_export(*command(real_weights["msmt17"], graphs["osnet_x0_25", "fp32"], out))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr[-2000:]
    assert "needs the Python package 'torch'" in lines[0]
    assert "pip install 'reid-trt[export]'" in lines[0]
    assert list(out.iterdir()) == []


def test_embedder_runs_graphs_without_torch(graphs, market_crops):
    code = ("import numpy as np\nfrom reid_trt import Embedder\n"
            "e = Embedder(sys.argv[1], device='cpu', backend='onnxruntime')\n"
            "v = e.embed([np.full((200, 80, 3), 90, np.uint8)])\n"
            "assert 'torch' not in sys.modules\nprint(v.shape)")
    result = run(code, str(graphs["osnet_x0_25", "fp32"]))
    assert result.returncode == 0 and result.stdout.strip() == "(1, 512)", result.stderr[-2000:]
