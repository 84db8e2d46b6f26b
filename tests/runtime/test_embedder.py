"""Embedder on the CPU: ONNX Runtime and PyTorch backends, preprocessing, batching, threads,
boxes and bad inputs; the TensorRT backend's GPU-free checks on a real TensorRT-RTX engine."""

import json
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from reid_trt import Embedder
from reid_trt.core.batching import Chunk, clip_boxes, plan_batches
from reid_trt.core.errors import ReidTrtError
from reid_trt.core.manifest import manifest_path, read_manifest
from reid_trt.core.preprocess import resize_bgr
from reid_trt.core.trt_compat import load_trt
from reid_trt.data.mot import mot_crops
from reid_trt.engine.build import engine_from_onnx
from reid_trt.export.api import ExportConfig, export_onnx
from reid_trt.runtime.backends.tensorrt import check_engine


@pytest.fixture(scope="module")
def weights(real_weights):
    return real_weights["msmt17"]


@pytest.fixture(scope="module")
def mot(shared_data):
    crops, ids = mot_crops(shared_data / "reid" / "mot17-mini" / "train" / "MOT17-04-FRCNN",
                           max_frames=1)
    assert len(crops) > 20 and len(set(ids)) == len(ids)
    return crops


@pytest.fixture(scope="module")
def graphs(graphs, static4_graph, weights, tmp_path_factory):
    """The session's fp32 and static-batch exports, and a uint8 BGR graph that normalises."""
    u8 = export_onnx(weights, tmp_path_factory.mktemp("runtime") / "u8.onnx",
                     ExportConfig(input_format="uint8-bgr", normalize=True)).path
    return {"fp32": graphs["osnet_x0_25", "fp32"], "u8": u8, "static4": static4_graph}


@pytest.fixture(scope="module")
def torch_embedder(weights):
    return Embedder(weights, device="cpu")


@pytest.fixture(scope="module")
def reference(torch_embedder, market_crops, mot):
    return torch_embedder.embed(market_crops + mot)


def min_cos(a, b):
    return float((a * b).sum(axis=1).min())


def test_onnxruntime_matches_pytorch(graphs, market_crops, mot, reference, torch_embedder):
    with Embedder(graphs["fp32"], device="cpu") as ort:
        assert (ort.backend_name, torch_embedder.backend_name) == ("onnxruntime", "torch")
        got = ort.embed(market_crops + mot)
    assert got.shape == (9 + len(mot), 512) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)
    assert min_cos(got, reference) >= 0.9999


def test_baked_in_preprocessing_and_normalisation(graphs, market_crops, mot, reference):
    embedder = Embedder(graphs["u8"], device="cpu", normalize=False)  # the graph normalises
    assert embedder.contract.input_format == "uint8-bgr" and embedder.contract.normalized
    got = embedder.embed(market_crops + mot)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-4)
    assert min_cos(got, reference) >= 0.9999


def test_raw_embeddings_when_not_normalising(graphs, weights, market_crops):
    raw_ort = Embedder(graphs["fp32"], device="cpu", normalize=False).embed(market_crops)
    raw_torch = Embedder(weights, device="cpu", normalize=False).embed(market_crops)
    assert np.linalg.norm(raw_ort, axis=1).min() > 1.5  # really unnormalised
    np.testing.assert_allclose(raw_ort, raw_torch, atol=1e-3)


def test_batching_past_the_maximum_and_static_graphs(graphs, market_crops, mot, reference):
    crops = market_crops + mot
    small = Embedder(graphs["fp32"], device="cpu", max_batch=4).embed(crops)
    static = Embedder(graphs["static4"], device="cpu").embed(crops)  # padded last chunk
    assert min_cos(small, reference) >= 0.9999 and min_cos(static, reference) >= 0.9999


def test_preprocessing_overlapped_with_compute_gives_the_same_rows(graphs, market_crops, mot):
    """Off-host backends preprocess the next chunk while computing this one; on the CPU it
    stays serial (both cores are the runtime's). Forced on here: same rows, same order, the
    static graph's padded last chunk included."""
    crops = market_crops + mot
    for graph, options in ((graphs["fp32"], {"max_batch": 8}), (graphs["static4"], {})):
        with Embedder(graph, device="cpu", backend="onnxruntime", **options) as embedder:
            assert not embedder.overlap
            serial = embedder.embed(crops)
            embedder.overlap = True
            np.testing.assert_allclose(embedder.embed(crops), serial, atol=1e-6)


def test_threads_give_the_same_results(graphs, torch_embedder, market_crops, mot):
    crops = market_crops + mot
    rotations = [crops[i:] + crops[:i] for i in range(4)]
    for embedder in (Embedder(graphs["fp32"], device="cpu", max_batch=8), torch_embedder):
        want = embedder.embed(crops)
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(embedder.embed, rotations))
        for i, got in enumerate(results):
            np.testing.assert_allclose(got, np.roll(want, -i, axis=0), atol=1e-5)


def test_matches_torchreid_pil_preprocessing(torch_embedder, mot, market_crops):
    """Embedder's resize (torchreid's PIL bilinear, core/preprocess.resize_like_pil) against
    Pillow's own on real crops: the same embeddings (tests/runtime/test_resize.py holds the
    pixels and every aspect)."""
    from PIL import Image

    crops = market_crops + mot
    pil = np.stack([np.asarray(Image.fromarray(c[..., ::-1]).resize((128, 256), Image.BILINEAR))
                    [..., ::-1] for c in crops])
    cos = (torch_embedder.embed(list(pil)) * torch_embedder.embed(crops)).sum(axis=1)
    assert cos.mean() >= 0.99999 and cos.min() >= 0.99999


def test_gray_and_bgra_crops(torch_embedder, market_crops):
    crop = market_crops[0]
    gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    bgra = cv2.cvtColor(crop, cv2.COLOR_BGR2BGRA)
    got = torch_embedder.embed([gray, gray[:, :, None], bgra])
    want = torch_embedder.embed([cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)] * 2 + [crop])
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_stacked_array_and_empty_input(torch_embedder, market_crops):
    stacked = resize_bgr(market_crops, (256, 128))
    np.testing.assert_allclose(torch_embedder.embed(stacked), torch_embedder.embed(market_crops),
                               atol=1e-6)
    assert torch_embedder.embed([]).shape == (0, 512)


def test_torch_tensor_input(graphs, market_crops):
    import torch

    embedder = Embedder(graphs["u8"], device="cpu")
    tensor = torch.from_numpy(resize_bgr(market_crops, (256, 128)))
    np.testing.assert_allclose(embedder.embed(tensor), embedder.embed(market_crops), atol=1e-6)
    with pytest.raises(ReidTrtError, match=r"this model takes \(9, 256, 128, 3\)"):
        embedder.embed(tensor.permute(0, 3, 1, 2))


def test_embed_boxes_clips_and_zeroes_degenerate_boxes(torch_embedder, shared_data):
    frame = cv2.imread(str(shared_data / "reid/mot17-mini/train/MOT17-04-FRCNN/img1/000001.jpg"))
    h, w = frame.shape[:2]
    boxes = [[1363, 569, 1466, 810],        # a pedestrian from gt.txt
             [w - 40, h - 90, w + 60, h + 10],  # partly outside: clipped
             [-50, -50, -10, -10],          # entirely outside
             [100, 100, 100, 180],          # zero width
             [300, 300, 200, 200],          # inverted
             [np.nan, 0, 10, 10]]           # NaN
    got = torch_embedder.embed_boxes(frame, boxes)
    assert got.shape == (6, 512)
    want = torch_embedder.embed([frame[569:810, 1363:1466], frame[h - 90:h, w - 40:w]])
    np.testing.assert_allclose(got[:2], want, atol=1e-6)
    assert not got[2:].any()
    assert torch_embedder.embed_boxes(frame, np.zeros((0, 4))).shape == (0, 512)


def test_clip_boxes_rounds_outwards():
    boxes, valid = clip_boxes([[0.4, 0.6, 0.5, 0.7], [5.2, 5.0, 9.1, 8.0]], (10, 8))
    assert boxes.tolist() == [[0, 0, 1, 1], [5, 5, 8, 8]] and valid.tolist() == [True, True]
    # Detections with a score column are refused, not silently reshaped into other boxes.
    with pytest.raises(ReidTrtError, match=r"shape \(2, 5\).*boxes\[:, :4\]"):
        clip_boxes(np.zeros((2, 5)), (10, 8))


def test_plan_batches():
    assert plan_batches(10, 4) == [Chunk(0, 4, 4), Chunk(4, 8, 4), Chunk(8, 10, 2)]
    assert plan_batches(10, 4, min_batch=3) == [Chunk(0, 4, 4), Chunk(4, 8, 4), Chunk(8, 10, 3)]
    assert plan_batches(5, None) == [Chunk(0, 5, 5)]
    assert plan_batches(5, 64, static_batch=4) == [Chunk(0, 4, 4), Chunk(4, 5, 4)]
    assert plan_batches(0, 8) == []


@pytest.mark.parametrize("crop,message", [
    (np.zeros((64, 32, 3), np.float32), "dtype float32"),
    (np.zeros((64, 32, 2), np.uint8), "shape (64, 32, 2)"),
    (np.zeros((0, 32, 3), np.uint8), "empty"),
    ("image.jpg", "is a str"),
])
def test_bad_crops(torch_embedder, crop, message):
    with pytest.raises(ReidTrtError, match=message.replace("(", r"\(").replace(")", r"\)")):
        torch_embedder.embed([crop])


def test_bad_model_files(tmp_path, torch_embedder, market_crops):
    with pytest.raises(ReidTrtError, match="no such file"):
        Embedder(tmp_path / "model.onnx")
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(ReidTrtError, match="unknown model type '.bin'"):
        Embedder(tmp_path / "model.bin")
    with pytest.raises(ReidTrtError, match="pass a list of crops"):
        torch_embedder.embed(market_crops[0])


@pytest.fixture(scope="module")
def engine(graphs, tmp_path_factory):
    return engine_from_onnx(graphs["fp32"],
                            tmp_path_factory.mktemp("engine") / "x025.plan").engine


def test_engine_on_cpu_points_to_the_onnx(engine):
    with pytest.raises(ReidTrtError, match="runs on a GPU.*use the .onnx"):
        Embedder(engine, device="cpu")


def test_engine_without_a_gpu_says_so(engine):
    from reid_trt.core.machine import cuda_present

    if cuda_present():
        pytest.skip("this machine has a GPU")  # CI machines never do
    with pytest.raises(ReidTrtError, match="no usable CUDA device here.*use the .onnx"):
        Embedder(engine, device="cuda:0")


def test_engine_checks_before_any_gpu_work(engine, tmp_path):
    trt = load_trt("rtx")
    manifest = read_manifest(engine)
    check_engine(engine, manifest, trt, (8, 6))  # a real, intact engine passes

    other = type(manifest)(**{**manifest.__dict__, "trt_version": "1.0.0.21"})
    with pytest.raises(ReidTrtError, match="built by TensorRT 1.0.0.21.*rebuild it"):
        check_engine(engine, other, trt)
    other = type(manifest)(**{**manifest.__dict__, "trt_flavour": "tensorrt"})
    with pytest.raises(ReidTrtError, match="built by tensorrt.*runs TensorRT-RTX"):
        check_engine(engine, other, trt)
    other = type(manifest)(**{**manifest.__dict__, "targets": "sm75"})
    with pytest.raises(ReidTrtError, match="targets sm75, but this GPU is sm89"):
        check_engine(engine, other, trt, (8, 9))
    # TensorRT-RTX does not run on Hopper at all (an H200 refused even an engine built on it).
    with pytest.raises(ReidTrtError, match=r"TensorRT-RTX \S+ does not run on this GPU \(sm90\); "
                       r"it runs on sm75, .*, sm121 and later GPUs.*full TensorRT 10\+"):
        check_engine(engine, manifest, trt, (9, 0))

    tampered = tmp_path / "x025.plan"
    tampered.write_bytes(engine.read_bytes()[:-10])
    manifest_path(tampered).write_text(manifest_path(engine).read_text())
    with pytest.raises(ReidTrtError, match="does not match its manifest"):
        check_engine(tampered, read_manifest(tampered), trt)
    data = json.loads(manifest_path(engine).read_text())
    manifest_path(tampered).write_text(json.dumps({**data, "contract": {"bogus": 1}}))
    with pytest.raises(ReidTrtError, match="not a valid reid-trt manifest"):
        Embedder(tampered, device="cuda:0")
