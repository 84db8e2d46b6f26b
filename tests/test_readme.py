"""Every Python example in the README runs as written, on the shared data.

The examples name files as a user would have them (`osnet.pth`, `osnet.onnx`, `osnet.plan`,
`crops/`); the test puts real ones under those names in one folder and runs the blocks there, in
the README's order, paths as strings, as written. Two things are given rather than written: the
variables an example takes from the reader's own program (`frame`, `dets`, `boxes_xyxy`,
`crops`: a real MOT17-04 frame, its ground-truth boxes and their crops), and, on a machine with
no GPU, the engine an example runs is swapped for the graph its own comment names
(`"osnet.plan"` -> `"osnet.onnx"`; reid-bench's engine -> that graph): an engine runs only on a
GPU. The Triton example's addresses are the test server's free ports. A README example this
test does not know fails it.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from reid_trt.core.machine import cuda_present
from reid_trt.data.mot import crop_box, frames, mot_crops, pedestrian_boxes, read_gt

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


README_CROPS = 256 + 8  # crops/: the README's calibration size, and crops to judge INT8 by


def check_boxmot(ns):
    tracks = ns["tracks"]
    assert tracks.ndim == 2 and len(tracks) > 0  # the first frame's boxes start tracks


def check_triton(ns):
    assert ns["embeddings"].shape == (len(ns["crops"]), 512)
    assert ns["rows"].shape == (len(ns["boxes_xyxy"]), 512)
    assert np.allclose(np.linalg.norm(ns["embeddings"], axis=1), 1, atol=1e-3)


def check_embedder(ns):
    assert ns["emb"].shape == (len(ns["boxes_xyxy"]), 512)
    assert np.allclose(np.linalg.norm(ns["emb"], axis=1), 1, atol=1e-3)


def check_bench(ns):
    report = ns["report"]
    assert report.subjects and report.subjects[0].latency[0].end_to_end.p50_ms > 0
    assert report.to_dict()["subjects"]


def check_build(ns):
    assert ns["result"].variant == "osnet_x0_25" and ns["result"].parity.min_cosine > 0.999
    from reid_trt.core.manifest import read_manifest

    assert read_manifest(Path("osnet.plan")).precision == "fp16"  # built from the FP16 export
    assert read_manifest(Path("osnet.int8.plan")).precision == "int8"  # from the calibrated one
    assert 0.5 < ns["report"].int8_work.int8_mac_share <= 1 and ns["report"].budget_held
    sets = ns["report"].calibration_set, ns["report"].evaluation_set
    assert (sets[0].images, sets[1].images) == (256, README_CROPS - 256)


def check_contract(ns):
    assert ns["contract"].precision == "fp16" and ns["contract"].variant == "osnet_x0_25"


# The first line of each README example -> what it must have done.
EXAMPLES = {
    "from boxmot import BotSort": check_boxmot,
    "from reid_trt.serving import TritonEmbedder": check_triton,
    "import cv2": check_embedder,
    "from reid_trt.bench.run import BenchConfig, run_bench": check_bench,
    "from reid_trt.export.api import ExportConfig, export_onnx, verify_onnx": check_build,
    "import onnx": check_contract,
}


def test_every_example_is_run():
    assert sorted(block.splitlines()[0] for block in BLOCKS) == sorted(EXAMPLES)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, real_weights, graphs, shared_data):
    """The files the examples name, real ones, in one folder the examples run in."""
    from reid_trt.engine.build import BuildConfig, engine_from_onnx

    root = tmp_path_factory.mktemp("readme")
    (root / "osnet_x0_25_msmt17.pth").symlink_to(real_weights["msmt17"])
    (root / "osnet.pth").symlink_to(real_weights["msmt17"])
    shutil.copy(graphs["osnet_x0_25", "fp32"], root / "osnet.onnx")
    if cuda_present():  # without one, every example that runs it takes osnet.onnx (see above)
        engine_from_onnx(root / "osnet.onnx", root / "osnet.plan", BuildConfig(max_batch=32))
    # a folder of crops as a user has one: real MOT17 boxes and CUHK03 crops, plainly named;
    # the smallest that runs the calibration example as written (CalibrationConfig(size=256)):
    # 256 to calibrate on and 8 left to judge by (each judged crop costs every scoring of the
    # search)
    (root / "crops").mkdir()
    mot = [c for s in sorted((shared_data / "reid" / "mot17-mini" / "train").iterdir())
           for c in mot_crops(s)[0]]
    for i, crop in enumerate(mot):
        cv2.imwrite(str(root / "crops" / f"{i:04d}.jpg"), crop)
    cuhk03 = sorted((shared_data / "reid" / "cuhk03-detected").glob("*.jpg"))
    for i, path in enumerate(cuhk03[:README_CROPS - len(mot)]):
        shutil.copy(path, root / "crops" / f"{len(mot) + i:04d}.jpg")
    market = sorted((shared_data / "reid" / "market1501").glob("*.jpg"))
    for i, name in enumerate(("person1.jpg", "person2.jpg")):
        shutil.copy(market[i], root / name)
    return root


@pytest.fixture(scope="module")
def given(shared_data):
    """What an example takes from the reader's program: a frame, its detections, their crops."""
    sequence = shared_data / "reid" / "mot17-mini" / "train" / "MOT17-04-FRCNN"
    number, path = frames(sequence)[0]
    frame = cv2.imread(str(path))
    boxes = np.array([box for _, box in pedestrian_boxes(read_gt(sequence), number)], np.float32)
    dets = np.hstack([boxes, np.full((len(boxes), 1), 0.9, np.float32),
                      np.zeros((len(boxes), 1), np.float32)])
    crops = [crop_box(frame, tuple(int(v) for v in box)) for box in boxes[:8]]
    return {"frame": frame, "boxes_xyxy": boxes, "dets": dets, "crops": crops}


@pytest.fixture(scope="module")
def server(folder):
    from reid_trt.serving.config import ServeOptions
    from reid_trt.serving.repository import write_repository
    from reid_trt.serving.server import TritonServer

    repo = folder.parent / "repo"
    write_repository(repo, folder / "osnet.onnx", ServeOptions(name="osnet", kind="python"))
    with TritonServer(repo, http_port=0, grpc_port=0, metrics_port=0) as running:
        yield running


def _as_run_here(block: str, server) -> str:
    if not cuda_present():
        block = block.replace('Embedder("osnet.plan")', 'Embedder("osnet.onnx")')
        block = block.replace('BoxMOTReID("osnet.plan")', 'BoxMOTReID("osnet.onnx")')
        block = block.replace('engines=["osnet.plan"], graphs=[]', 'engines=[], graphs=["osnet.onnx"]')
    if server is not None:
        block = block.replace("localhost:8001", server.grpc_url)
        block = block.replace("localhost:8000", server.http_url)
    return block


@pytest.mark.slow
@pytest.mark.parametrize("first", list(EXAMPLES), ids=lambda s: s.split()[-1])
def test_readme_example(first, folder, given, request, monkeypatch):
    block = next((b for b in BLOCKS if b.splitlines()[0] == first), None)
    assert block is not None, f"the README no longer has the example starting {first!r}"
    server = request.getfixturevalue("server") if "TritonEmbedder" in block else None
    monkeypatch.chdir(folder)
    namespace = dict(given)
    exec(compile(_as_run_here(block, server), f"README.md: {first}", "exec"), namespace)
    EXAMPLES[first](namespace)
