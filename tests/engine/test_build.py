"""Real TensorRT-RTX builds on the CPU: engines, manifests, and every refusal."""

import hashlib
import json
import subprocess
import sys

import onnx
import onnx.numpy_helper
import pytest

from reid_trt.core.contract import contract_of
from reid_trt.core.errors import ReidTrtError
from reid_trt.core.machine import cuda_present
from reid_trt.core.manifest import IOTensor, Profile, manifest_path, read_manifest
from reid_trt.core.trt_compat import load_trt
from reid_trt.engine.build import BuildConfig, engine_from_onnx, resolve_profile

pytestmark = pytest.mark.slow  # TensorRT-RTX engine builds

def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("variant", ["osnet_x0_25", "osnet_ain_x1_0"])
def test_fp32_and_fp16_engines_with_manifests(graphs, variant, tmp_path):
    built = {}
    for precision in ("fp32", "fp16"):
        graph = graphs[variant, precision]
        result = engine_from_onnx(graph, tmp_path / f"{precision}.plan")
        m = read_manifest(result.engine)
        assert (m.trt_flavour, m.trt_version) == ("rtx", load_trt("rtx").version)
        assert m.precision == precision
        assert m.profile == Profile(min=1, opt=16, max=64)
        assert m.io == [IOTensor("images", "input", "FLOAT", [-1, 3, 256, 128]),
                        IOTensor("embeddings", "output", "FLOAT", [-1, 512])]
        assert m.preprocessing == contract_of(onnx.load(graph))
        assert m.onnx_sha256 == sha256(graph) and m.engine_sha256 == sha256(result.engine)
        assert m.engine_bytes == result.engine.stat().st_size > 100_000
        assert m.instancenorm == ("native" if variant == "osnet_ain_x1_0" else "none")
        assert "Ampere" in m.targets
        built[precision] = m.engine_bytes
    # Strong typing honoured the graph: FP16 weights save about 2 bytes per weight.
    weights = sum(onnx.numpy_helper.to_array(t).size
                  for t in onnx.load(graphs[variant, "fp32"]).graph.initializer)
    assert built["fp32"] - built["fp16"] > 0.8 * 2 * weights


def test_int8_engine_from_qdq_graph(qdq_graph, tmp_path):
    result = engine_from_onnx(qdq_graph, tmp_path / "int8.plan")
    assert result.manifest.precision == "int8"
    assert read_manifest(result.engine).engine_sha256 == sha256(result.engine)
    with pytest.raises(ReidTrtError, match="is an int8 graph but precision fp16"):
        engine_from_onnx(qdq_graph, tmp_path / "x.plan", BuildConfig(precision="fp16"))


def test_uint8_normalised_static_graph(real_weights, tmp_path):
    from reid_trt.export.api import ExportConfig, export_onnx

    graph = export_onnx(real_weights["market1501"], tmp_path / "u8.onnx",
                        ExportConfig(precision="fp16", input_format="uint8-bgr", normalize=True,
                                     batch=8)).path
    result = engine_from_onnx(graph, tmp_path / "u8.plan",
                              BuildConfig(compute_capabilities=("sm75", "sm86")))
    m = result.manifest
    assert m.profile == Profile(min=8, opt=8, max=8)
    assert m.io[0] == IOTensor("images", "input", "UINT8", [8, 256, 128, 3])
    assert m.targets == "sm75, sm86"
    assert m.preprocessing.normalized and m.preprocessing.layout == "NHWC"
    with pytest.raises(ReidTrtError, match="static batch of 8"):
        engine_from_onnx(graph, tmp_path / "x.plan", BuildConfig(max_batch=16))


@pytest.mark.parametrize("options, message", [
    ({"precision": "fp16"}, "is an fp32 graph but precision fp16 was given"),
    ({"min_batch": 8, "opt_batch": 4, "max_batch": 16}, "the batch profile needs min <= opt"),
    ({"dla_core": 0}, "has no DLA"),
    ({"instancenorm": "plugin"}, "no InstanceNormalization plugin"),
    ({"instancenorm": "fast"}, "instancenorm='fast': choose one of native, plugin"),
    ({"opt_level": 9}, "opt_level=9: must be between 0 and 5"),
    ({"compute_capabilities": ("sm90",)}, "compute_capabilities='sm90': TensorRT-RTX"),
    pytest.param({"compute_capabilities": ("current",)}, "'current': needs a GPU at build time",
                 marks=pytest.mark.skipif(cuda_present(), reason="a GPU answers here")),
    ({"hardware_compatibility": "ampere_plus"}, "is for full TensorRT"),
    ({"trt": "tensorrt"}, "pip install tensorrt"),
    ({"trt": "onnxruntime"}, "trt='onnxruntime': choose one of auto, tensorrt, rtx"),
    ({"workspace_mib": -5}, "workspace_mib=-5: must be between 1"),
])
def test_refusals_write_nothing(graphs, tmp_path, options, message):
    out = tmp_path / "m.plan"
    with pytest.raises(ReidTrtError, match=message):
        engine_from_onnx(graphs["osnet_x0_25", "fp32"], out, BuildConfig(**options))
    assert list(tmp_path.iterdir()) == []


def test_timing_cache_refused_by_rtx(graphs, tmp_path):
    with pytest.raises(ReidTrtError, match="does not use a timing cache"):
        engine_from_onnx(graphs["osnet_x0_25", "fp32"], tmp_path / "m.plan",
                         BuildConfig(timing_cache=tmp_path / "t.cache"))
    assert list(tmp_path.iterdir()) == []


def test_parse_errors_name_the_failing_node(graphs, tmp_path):
    model = onnx.load(graphs["osnet_x0_25", "fp32"])
    relu = next(n for n in model.graph.node if n.op_type == "Relu")
    relu.op_type, relu.domain, relu.name = "FancyActivation", "com.example", "my_fancy_node"
    model.opset_import.append(onnx.helper.make_opsetid("com.example", 1))
    broken = tmp_path / "broken.onnx"
    onnx.save(model, broken)
    with pytest.raises(ReidTrtError, match="cannot parse .*'my_fancy_node' \\(FancyActivation\\)"):
        engine_from_onnx(broken, tmp_path / "m.plan")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.onnx"]


def test_graph_without_reid_metadata(graphs, tmp_path):
    model = onnx.load(graphs["osnet_x0_25", "fp32"])
    del model.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(model, bare)
    with pytest.raises(ReidTrtError, match="no reid-trt metadata"):
        engine_from_onnx(bare, tmp_path / "m.plan")


def test_missing_graph(tmp_path):
    with pytest.raises(ReidTrtError, match="no such file"):
        engine_from_onnx(tmp_path / "none.onnx")


def test_profile_resolution():
    assert resolve_profile(BuildConfig(), None) == (1, 16, 64)
    assert resolve_profile(BuildConfig(opt_batch=128), None) == (1, 128, 128)
    assert resolve_profile(BuildConfig(min_batch=4, opt_batch=4, max_batch=4), None) == (4, 4, 4)
    assert resolve_profile(BuildConfig(), 2) == (2, 2, 2)
    # A bound given alone moves the default optimum (and the other bound) with it.
    assert resolve_profile(BuildConfig(max_batch=8), None) == (1, 8, 8)
    assert resolve_profile(BuildConfig(min_batch=32), None) == (32, 32, 64)
    assert resolve_profile(BuildConfig(min_batch=128), None) == (128, 128, 128)
    with pytest.raises(ReidTrtError, match="min_batch=0: must be between 1 and 4096"):
        BuildConfig(min_batch=0)
    with pytest.raises(ReidTrtError, match="the batch profile needs min <= opt <= max"):
        BuildConfig(min_batch=8, max_batch=4)


def test_corrupt_or_missing_manifest(graphs, tmp_path):
    result = engine_from_onnx(graphs["osnet_x0_25", "fp16"], tmp_path / "m.plan")
    path = manifest_path(result.engine)
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "format": "other/9"}))
    with pytest.raises(ReidTrtError, match="not a valid reid-trt manifest.*rebuild it"):
        read_manifest(result.engine)
    path.write_text("{ truncated")
    with pytest.raises(ReidTrtError, match="not a valid reid-trt manifest"):
        read_manifest(result.engine)
    path.unlink()
    with pytest.raises(ReidTrtError, match="no manifest beside the engine"):
        read_manifest(result.engine)


def test_no_tensorrt_installed_names_the_package():
    code = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('tensorrt', 'tensorrt_rtx'):
            raise ImportError(name)
sys.meta_path.insert(0, Block())
from reid_trt.core.trt_compat import load_trt
try:
    load_trt('auto')
except Exception as e:
    print(e)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "no TensorRT found" in out and "tensorrt-rtx-cu13" in out
