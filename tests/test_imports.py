"""Heavy packages stay optional: the runtime side imports, and every --help runs, without them."""

import pkgutil
import subprocess
import sys

import reid_trt

# Modules that exist to build or run torch models: they may import torch at the top.
TORCH_MODULES = ("reid_trt.models.", "reid_trt.export.fold", "reid_trt.export.graph",
                 "reid_trt.export.onnx_export")
BLOCKED = ("torch", "onnxruntime", "tensorrt", "tensorrt_rtx", "cuda", "pycuda", "onnxslim")

BLOCKER = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {BLOCKED!r}:
            raise ImportError('blocked for this test: ' + name)
sys.meta_path.insert(0, Block())
"""


def all_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(reid_trt.__path__, "reid_trt."))


def run_blocked(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER + code], capture_output=True, text=True)


def test_modules_import_without_optional_packages():
    light = [m for m in all_modules() if not m.startswith(TORCH_MODULES)]
    assert "reid_trt.cli.export" in light and "reid_trt.core.contract" in light
    result = run_blocked("import importlib\n" + "".join(
        f"importlib.import_module({m!r})\n" for m in light))
    assert result.returncode == 0, result.stderr


def test_every_help_runs_without_optional_packages():
    code = """
from typer.testing import CliRunner
from reid_trt.cli.export import app
r = CliRunner()
for args in ([], ["onnx"], ["verify"], ["trt"], ["inspect"], ["demo"]):
    res = r.invoke(app, args + ["--help"])
    assert res.exit_code == 0 and "Usage" in res.output, (args, res.output)
from reid_trt.cli.bench import app as bench
res = r.invoke(bench, ["--help"])
assert res.exit_code == 0 and "--engine" in res.output, res.output
print("ok")
"""
    result = run_blocked(code)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_embedder_runs_an_onnx_graph_without_torch(real_weights, shared_data, tmp_path):
    from reid_trt.export.api import export_onnx

    graph = export_onnx(real_weights["msmt17"], tmp_path / "m.onnx").path
    blocked_torch = BLOCKER.replace(repr(BLOCKED), repr(("torch", "tensorrt", "tensorrt_rtx")))
    code = blocked_torch + f"""
import numpy as np
from reid_trt import Embedder
from reid_trt.data.folder import read_crops
e = Embedder({str(graph)!r}, device="cpu")
v = e.embed(read_crops({str(shared_data / "reid" / "market1501")!r}))
print(e.backend_name, v.shape, round(float(np.linalg.norm(v[0])), 4))
from reid_trt.bench.run import BenchConfig, run_bench
report = run_bench([], [{str(graph)!r}], None, BenchConfig(batches=(2,), runs=1, num_crops=4))
print(report.subjects[0].label, "torch" in sys.modules)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["onnxruntime", "(9,", "512)", "1.0", "ort", "fp32", "False"]
