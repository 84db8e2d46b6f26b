"""On an NVIDIA GPU only (never in CI; skipped where no CUDA device answers): PyTorch on the GPU
against the CPU and timed by reid-bench, then real engines run by the Embedder against PyTorch,
CUDA tensors bound in place, and reid-bench with an engine (skipped, with the reason, on a GPU that
the TensorRT at hand does not run on: TensorRT-RTX on Hopper).

A session lent a GPU machine runs them in one go: benchmarks/gpu_check.sh (see ../shared/device).
"""

import numpy as np
import pytest

from reid_trt import Embedder
from reid_trt.bench.run import BenchConfig, run_bench
from reid_trt.calibration.api import CalibrationConfig, calibrate_onnx, source_graph
from reid_trt.core.errors import MissingDependencyError
from reid_trt.core.trt_compat import load_trt
from reid_trt.engine.build import BuildConfig, engine_from_onnx
from reid_trt.export.api import ExportConfig, export_onnx

pytestmark = pytest.mark.gpu
MIN_COSINE = {"fp32": 0.9999, "fp16": 0.999, "int8": 0.98}


@pytest.fixture(scope="module")
def cuda():
    from reid_trt.core.machine import cuda_present

    if not cuda_present():
        pytest.skip("no CUDA device here")


@pytest.fixture(scope="module")
def engines(cuda, real_weights, shared_data, tmp_path_factory):
    """precision -> engine built on this GPU from the real osnet_x0_25 (MSMT17) weights."""
    from reid_trt.core.machine import cuda_compute_capability

    try:
        trt, cc = load_trt(), cuda_compute_capability()
    except MissingDependencyError as e:
        pytest.skip(str(e))
    if not trt.runs_on(cc):
        pytest.skip(f"{trt.label} does not run on this GPU (sm{cc[0]}{cc[1]})")
    folder = tmp_path_factory.mktemp("gpu")
    weights = real_weights["msmt17"]
    graphs = {"fp32": export_onnx(weights, folder / "x025.fp32.onnx").path,
              "fp16": export_onnx(weights, folder / "x025.fp16.onnx",
                                  ExportConfig(precision="fp16")).path}
    source, sha, _ = source_graph(None, weights)
    graphs["int8"] = calibrate_onnx(source, sha, shared_data / "reid" / "mot17-mini",
                                    folder / "x025.int8.onnx",
                                    CalibrationConfig(size=32, method="minmax")).path
    # For the GPU at hand (full TensorRT always builds for it; TensorRT-RTX when told 'current').
    config = BuildConfig(compute_capabilities=("current",) if trt.is_rtx else ())
    return {p: engine_from_onnx(g, g.with_suffix(".plan"), config).engine
            for p, g in graphs.items()}


@pytest.fixture(scope="module")
def crops(market_crops, shared_data):
    from reid_trt.data.mot import mot_crops

    mot, _ = mot_crops(shared_data / "reid" / "mot17-mini" / "train" / "MOT17-04-FRCNN",
                       max_frames=1)
    return market_crops + mot


def test_pytorch_on_the_gpu_matches_the_cpu(cuda, crops, real_weights):
    with Embedder(real_weights["msmt17"], device="cpu") as cpu, \
            Embedder(real_weights["msmt17"], device="cuda:0") as gpu:
        assert gpu.backend_name == "torch" and gpu.backend.device == "cuda:0"
        a, b = gpu.embed(crops), cpu.embed(crops)
    cos = (a * b).sum(axis=1)
    print(f"PyTorch cuda:0 vs cpu on {len(cos)} real crops: min cosine {cos.min():.6f}")
    assert cos.min() >= 0.9999  # TF32 convolutions on the GPU, fp32 on the CPU


def test_bench_times_pytorch_on_the_gpu(cuda, real_weights, shared_data, tmp_path):
    graph = export_onnx(real_weights["msmt17"], tmp_path / "x025.onnx").path
    config = BenchConfig(batches=(1, 32), runs=10, crops_dir=shared_data / "reid" / "mot17-mini",
                         num_crops=32)
    report = run_bench([], [graph], real_weights["msmt17"], config)
    torch_gpu, ort = report.subjects
    assert (torch_gpu.label, torch_gpu.device) == ("pytorch fp32", "cuda:0")
    assert report.machine["gpu"] and ort.device == "cpu"
    assert torch_gpu.device_memory_mib > 0 and ort.parity.min_cosine > 0.9999
    for row in torch_gpu.latency:  # the Profiled call times the model alone
        assert 0 < row.compute.p50_ms <= row.end_to_end.p50_ms
        print(f"batch {row.batch}: PyTorch cuda:0 e2e {row.end_to_end.p50_ms:.2f} ms, compute "
              f"{row.compute.p50_ms:.2f} ms")


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_engine_matches_pytorch(engines, crops, real_weights, precision):
    with Embedder(real_weights["msmt17"], device="cpu") as reference, \
            Embedder(engines[precision]) as engine:
        assert engine.backend_name == "tensorrt" and engine.backend.device == "cuda:0"
        a, b = engine.embed(crops), reference.embed(crops)
        # Batches above the profile maximum and the padded tail give the same rows.
        chunked = Embedder(engines[precision], max_batch=7).embed(crops)
    cos = (a * b).sum(axis=1)
    print(f"{precision}: engine vs PyTorch on {len(cos)} real crops: min {cos.min():.6f} "
          f"mean {cos.mean():.6f}")
    assert cos.min() >= MIN_COSINE[precision]
    np.testing.assert_allclose(chunked, a, atol=2e-3)


def test_cuda_tensor_is_bound_in_place(engines, crops):
    import torch

    with Embedder(engines["fp16"]) as engine:
        x = engine.preprocess(crops[:16])
        on_gpu = engine.embed_tensor(torch.from_numpy(x).cuda())
        np.testing.assert_allclose(on_gpu, engine.embed(crops[:16]), atol=1e-3)


def test_bench_with_an_engine(engines, real_weights, shared_data, tmp_path):
    config = BenchConfig(batches=(1, 8, 64), runs=10, crops_dir=shared_data / "reid" / "mot17-mini",
                         num_crops=32)
    report = run_bench([engines["fp16"]], [], real_weights["msmt17"], config)
    labels = [s.label for s in report.subjects]
    assert labels == ["pytorch fp32", "trt fp16", "ort fp16"]  # the companion graph runs too
    torch_gpu, trt, _ = report.subjects
    assert torch_gpu.device == "cuda:0" and report.machine["gpu"]
    assert trt.device_memory_mib > 0 and trt.parity.min_cosine > 0.999
    for row in trt.latency:
        assert row.compute.p50_ms <= row.end_to_end.p50_ms
        print(f"batch {row.batch}: engine e2e {row.end_to_end.p50_ms:.2f} ms "
              f"({row.speedup_end_to_end:.2f}x PyTorch), compute "
              f"{row.compute.p50_ms:.2f} ms ({row.speedup_compute:.2f}x)")
