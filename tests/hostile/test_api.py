"""Hostile calls of the Python API: each raises the narrow exception type with a one-line message
naming the argument or file, and leaves the folder exactly as it was."""

from __future__ import annotations

import numpy as np
import pytest

from reid_trt import Embedder
from reid_trt.core.errors import CheckpointError, OutputPathError, ReidTrtError
from reid_trt.core.options import ConfigError
from tests.hostile.conftest import edit_manifest, one_line, snapshot


def raises(ws, kind: type[Exception], fragments: tuple[str, ...], call):
    before = snapshot(ws.root)
    with pytest.raises(kind) as caught:
        call()
    message = one_line(str(caught.value))
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert snapshot(ws.root) == before
    return caught.value


@pytest.fixture(scope="module")
def ort(artifacts):
    with Embedder(artifacts["graph"], device="cpu") as embedder:
        yield embedder


CROP = np.full((120, 50, 3), 128, np.uint8)


def _export(ws, **options):
    from reid_trt.export.api import ExportConfig, export_onnx

    return lambda: export_onnx(ws / "w.pth", ws / "x.onnx", ExportConfig(**options))


def _build(**options):
    from reid_trt.engine.build import BuildConfig

    return lambda: BuildConfig(**options)


def _bench(**options):
    from reid_trt.bench.run import BenchConfig

    return lambda: BenchConfig(**options)


def _calibration(**options):
    from reid_trt.calibration.api import CalibrationConfig

    return lambda: CalibrationConfig(**options)


CASES = [
    ("embedder-missing-file", ReidTrtError, ("nope.onnx: no such file",),
     lambda ws, e: Embedder(ws / "nope.onnx")),
    ("embedder-directory", ReidTrtError, ("empty is a directory",),
     lambda ws, e: Embedder(ws / "empty")),
    ("embedder-unknown-suffix", ReidTrtError, ("unknown model type '.txt'",),
     lambda ws, e: Embedder(ws / "notes.txt")),
    ("embedder-device-gpu", ConfigError, ("device='gpu'", "'cuda:N'"),
     lambda ws, e: Embedder(ws / "m.onnx", device="gpu")),
    ("embedder-device-bad-index", ConfigError, ("device='cuda:x'",),
     lambda ws, e: Embedder(ws / "m.onnx", device="cuda:x")),
    ("embedder-cuda-without-provider", ReidTrtError, ("device 'cuda:0'", "onnxruntime-gpu"),
     lambda ws, e: Embedder(ws / "m.onnx", device="cuda:0")),
    ("embedder-max-batch-zero", ConfigError, ("max_batch=0",),
     lambda ws, e: Embedder(ws / "m.onnx", max_batch=0)),
    ("embedder-max-batch-huge", ConfigError, ("max_batch=100000", "4096"),
     lambda ws, e: Embedder(ws / "m.onnx", max_batch=100_000)),
    ("embedder-engine-on-cpu", ReidTrtError, ("m.plan is a TensorRT engine", ".onnx"),
     lambda ws, e: Embedder(ws / "m.plan", device="cpu")),
    ("embedder-truncated-graph", ReidTrtError, ("truncated.onnx is not a readable ONNX model",),
     lambda ws, e: Embedder(ws / "truncated.onnx")),
    ("embedder-text-checkpoint", CheckpointError, ("text.pth", "not a readable PyTorch checkpoint"),
     lambda ws, e: Embedder(ws / "text.pth")),
    ("embed-a-string", ReidTrtError, ("crops is a str",), lambda ws, e: e.embed("crop.jpg")),
    ("embed-one-image", ReidTrtError, ("one image of shape",), lambda ws, e: e.embed(CROP)),
    ("embed-float-crop", ReidTrtError, ("crop 0 has dtype float32",),
     lambda ws, e: e.embed([CROP.astype(np.float32)])),
    ("embed-none-among-crops", ReidTrtError, ("crop 1 is a NoneType",),
     lambda ws, e: e.embed([CROP, None])),
    ("embed-empty-crop", ReidTrtError, ("crop 0 is empty",),
     lambda ws, e: e.embed([np.zeros((0, 5, 3), np.uint8)])),
    ("embed-five-channels", ReidTrtError, ("crop 0 has shape (8, 8, 5)",),
     lambda ws, e: e.embed([np.zeros((8, 8, 5), np.uint8)])),
    ("embed-boxes-with-scores", ReidTrtError, ("boxes have shape (1, 5)", "boxes[:, :4]"),
     lambda ws, e: e.embed_boxes(CROP, [[0, 0, 10, 10, 0.9]])),
    ("embed-boxes-as-strings", ReidTrtError, ("boxes_xyxy holds strings, not numbers",),
     lambda ws, e: e.embed_boxes(CROP, [["0", "0", "10", "10"]])),
    ("embed-boxes-as-text", ReidTrtError, ("boxes_xyxy holds strings, not numbers",),
     lambda ws, e: e.embed_boxes(CROP, ["0,0,10,10"])),
    ("embed-boxes-ragged", ReidTrtError, ("boxes_xyxy holds list, not numbers",),
     lambda ws, e: e.embed_boxes(CROP, [[0, 0, 10, 10], [1, 2]])),
    ("embed-boxes-no-frame", ReidTrtError, ("frame is a NoneType",),
     lambda ws, e: e.embed_boxes(None, [[0, 0, 10, 10]])),
    ("export-onto-weights", OutputPathError, ("w.pth: the file name must end in .onnx",),
     lambda ws, e: __import__("reid_trt.export.api", fromlist=["x"]).export_onnx(
         ws / "w.pth", ws / "w.pth")),
    ("export-onto-weights-named-onnx", OutputPathError, ("would overwrite the input",),
     lambda ws, e: __import__("reid_trt.export.api", fromlist=["x"]).export_onnx(
         ws / "m.onnx", ws / "m.onnx")),
    ("export-precision-unknown", ConfigError, ("precision='fp64'", "fp32, fp16, int8"),
     lambda ws, e: _export(ws, precision="fp64")()),
    ("export-batch-bool", ConfigError, ("batch=True", "whole number"),
     lambda ws, e: _export(ws, batch=True)()),
    ("export-inf-weights", CheckpointError, ("NaN or Inf",), lambda ws, e: _inf_export(ws)),
    ("build-workspace-negative", ConfigError, ("workspace_mib=-1",),
     lambda ws, e: _build(workspace_mib=-1)()),
    ("build-inverted-profile", ReidTrtError, ("min_batch 8", "max_batch 4", "min <= opt <= max"),
     lambda ws, e: _build(min_batch=8, max_batch=4)()),
    ("build-timing-cache-dir", ConfigError, ("timing_cache=", "is a directory"),
     lambda ws, e: _build(timing_cache=ws / "empty")()),
    ("bench-num-crops-zero", ConfigError, ("num_crops=0",), lambda ws, e: _bench(num_crops=0)()),
    ("bench-no-batches", ConfigError, ("batches=()",), lambda ws, e: _bench(batches=())()),
    ("bench-device-gpu", ConfigError, ("device='gpu'",), lambda ws, e: _bench(device="gpu")()),
    ("calibration-size-zero", ConfigError, ("size=0",), lambda ws, e: _calibration(size=0)()),
    ("calibration-method-unknown", ConfigError, ("method='magic'", "minmax"),
     lambda ws, e: _calibration(method="magic")()),
    ("contract-bad-input-format", ReidTrtError, ("input_format='rgb'",),
     lambda ws, e: __import__("reid_trt.core.contract", fromlist=["x"]).Contract(
         "osnet_x0_25", input_format="rgb")),
    ("contract-from-non-mapping", ReidTrtError, ("not a mapping",),
     lambda ws, e: __import__("reid_trt.core.contract", fromlist=["x"]).Contract.from_dict(
         [1, 2], "x.json")),
    ("calibrate-tiny-images", ReidTrtError, ("32x8 px",), lambda ws, e: _tiny_calibration(ws)),
]


def _inf_export(ws):
    import torch

    from reid_trt.export.api import export_onnx

    state = torch.load(ws / "w.pth", weights_only=True)
    state["fc.0.weight"][0, 0] = float("inf")
    torch.save(state, ws / "inf.pth")
    snapshot_before = snapshot(ws.root)
    try:
        export_onnx(ws / "inf.pth", ws / "inf.onnx")
    finally:
        assert snapshot(ws.root) == snapshot_before
        (ws / "inf.pth").unlink()


def _tiny_calibration(ws):
    import cv2

    from reid_trt.calibration.api import CalibrationConfig
    from reid_trt.engine.pipeline import calibrate

    (ws / "tiny").mkdir()
    for i in range(3):
        cv2.imwrite(str(ws / "tiny" / f"000{i}_c1s1_0000{i}_00.png"), np.zeros((2, 2, 3), np.uint8))
    before = snapshot(ws.root)
    try:
        calibrate(ws / "tiny", ws / "t.int8.onnx", CalibrationConfig(size=3),
                  onnx_path=ws / "m.onnx")
    finally:
        assert snapshot(ws.root) == before
        import shutil

        shutil.rmtree(ws / "tiny")


@pytest.mark.parametrize("kind, fragments, call", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_api(ws, ort, kind, fragments, call):
    raises(ws, kind, fragments, lambda: call(ws, ort))


@pytest.mark.parametrize("edit, fragment", [
    (lambda d: {**d, "precision": "int8"}, "says precision int8, but the engine holds no INT8"),
    (lambda d: {**d, "io": [{**t, "dtype": "HALF"} for t in d["io"]]},
     "says input 'images' HALF [3, 256, 128], but the engine's is FLOAT [3, 256, 128]"),
    # full TensorRT's engines are not read (their table is partial): the layer record still is
    (lambda d: {**d, "trt_flavour": "tensorrt", "precision": "int8"},
     "says precision int8, but its own record of the built layers has no INT8 convolution"),
], ids=["precision", "io-type", "record"])
def test_embedder_refuses_an_edited_manifest(ws, edit, fragment):
    """The manifest is checked against the engine's own tensors before anything runs."""
    edit_manifest(ws, edit)
    raises(ws, ReidTrtError, ("m.plan: its manifest m.plan.json", fragment, "rebuild"),
           lambda: Embedder(ws / "m.plan"))


def test_embedder_memory_is_bounded_by_the_chunk(ort):
    """Preprocessing runs chunk by chunk: the backend never sees more than `chunk` crops."""
    seen = []
    run = ort.backend.run
    ort.backend.run = lambda batch: (seen.append(len(batch)), run(batch))[1]
    try:
        out = ort.embed([CROP] * (2 * ort.chunk + 3))
    finally:
        ort.backend.run = run
    assert out.shape == (2 * ort.chunk + 3, 512)
    assert seen == [ort.chunk, ort.chunk, 3]
