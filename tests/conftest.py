"""Shared fixtures: the real test data in ../shared/data, generated checkpoints, torchreid."""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
import sys
import tarfile
import types
from collections.abc import Callable
from pathlib import Path

import pytest

from reid_trt.core import defaults

# Ultralytics pip-installs what it judges missing while it runs (BoxMOT too: see
# tests/integrations/conftest.py): tests use the environment as installed.
os.environ.setdefault("YOLO_AUTOINSTALL", "false")
# Embedder runs an .onnx on the CPU on whichever runtime measures faster here (OpenVINO on Intel
# CPUs): the suite pins ONNX Runtime so its figures do not depend on the CI machine's CPU;
# tests/runtime/test_cpu_choice.py unpins it and tests the choice itself.
os.environ.setdefault("REID_TRT_CPU_BACKEND", "onnxruntime")
# make test's processes share the cores: each runtime in each worker (and in the processes it
# starts) gets its share, not a thread per core in every worker, which left the workers' threads
# waiting on each other (README, "Set-up: two commands").
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _SHARE = str(max(1, len(os.sched_getaffinity(0)) // _WORKERS))
    os.environ.setdefault("OMP_NUM_THREADS", _SHARE)  # PyTorch's
    os.environ.setdefault("REID_TRT_THREADS", _SHARE)  # ONNX Runtime's and OpenVINO's

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# torchreid's own model files, as the reference for faithfulness (fetched by `make test`).
TORCHREID_SDIST = Path(os.environ.get("REID_TRT_TORCHREID_SDIST",
                                      ROOT / ".cache" / "torchreid-0.2.5.tar.gz"))
SMALL = (128, 64)  # input size for quick exports: the same graph, a quarter of the compute


def need(path: Path, what: str) -> Path:
    """`path` if it exists; else skip locally, but fail in CI, where it must be there."""
    if path.exists():
        return path
    message = f"{what} not found at {path}"
    if IN_CI:
        pytest.fail(f"{message} (CI must have it)")
    pytest.skip(message)


def pil_resize(crops, size=(256, 128)):
    """torchreid's resize: torchvision's Resize((h, w)) on a PIL RGB image is PIL bilinear."""
    import numpy as np
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(c[..., ::-1]))
                                .resize(size[::-1], Image.BILINEAR))[..., ::-1] for c in crops])


def torchreid_embed(model, crops):
    """torchreid's test pipeline on BGR crops: PIL resize, ToTensor, Normalize, the network,
    L2-normalised (the reference the resize and retrieval tests hold reid-trt to)."""
    import torch

    from reid_trt.core.preprocess import normalize_nhwc_bgr

    with torch.no_grad():
        v = model(torch.from_numpy(normalize_nhwc_bgr(pil_resize(crops))))
    return torch.nn.functional.normalize(v, dim=1).numpy()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    default = ROOT.parent / "shared" / "data"
    return need(Path(os.environ.get(defaults.DATA_ENV, default)), "shared test data")


@pytest.fixture(scope="session")
def real_weights(shared_data) -> dict[str, Path]:
    return {name: need(shared_data / "weights" / f"osnet_x0_25_{name}.pth", "real weights")
            for name in ("msmt17", "market1501")}


@pytest.fixture(scope="session")
def market_crops(shared_data):
    from reid_trt.data.folder import read_crops

    return read_crops(need(shared_data / "reid" / "market1501", "Market-1501 crops"))


@pytest.fixture(scope="session")
def torchreid() -> types.SimpleNamespace:
    """torchreid's osnet.py and osnet_ain.py, imported straight from its PyPI sdist."""
    need(TORCHREID_SDIST, "torchreid sdist (make test downloads it)")
    modules = {}
    with tarfile.open(TORCHREID_SDIST) as tar:
        for name in ("osnet", "osnet_ain"):
            member = tar.getmember(f"torchreid-0.2.5/torchreid/reid/models/{name}.py")
            source = tar.extractfile(member).read().decode()
            spec = importlib.util.spec_from_loader(f"torchreid_ref_{name}", loader=None)
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            exec(compile(source, member.name, "exec"), module.__dict__)
            modules[name] = module
    return types.SimpleNamespace(**modules)


def made_once(tmp_path_factory, name: str, make: Callable[[Path], object]) -> Path:
    """A folder that `make` fills once per test run, in whichever test process needs it first:
    `make test` runs two (pytest-xdist), and the others wait for it and read the same files
    (the same generated weights, the same exports) instead of making their own."""
    base = run_folder(tmp_path_factory)
    folder = base / name
    with open(base / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / ".done").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            make(folder)
            (folder / ".done").touch()
    return folder


def run_folder(tmp_path_factory) -> Path:
    """This test run's temporary folder, the same in every test process of the run."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if "PYTEST_XDIST_WORKER" in os.environ else base


@pytest.fixture(scope="session", autouse=True)
def run_cache(tmp_path_factory) -> Path:
    """reid-trt's cache folder (traces, CPU backend records) for this run, shared by its
    processes and those they start: nothing read from or left in the user's ~/.cache."""
    folder = run_folder(tmp_path_factory) / "reid-trt-cache"
    os.environ[defaults.CACHE_ENV] = str(folder)
    return folder


@pytest.fixture(scope="session")
def generated_checkpoint(tmp_path_factory):
    """factory(variant) -> path of a torchreid-style checkpoint with generated weights."""
    from reid_trt.demo import write_generated_checkpoint

    def make(variant: str) -> Path:
        folder = made_once(tmp_path_factory, f"generated-{variant}",
                           lambda f: write_generated_checkpoint(f / f"{variant}.pth", variant))
        return folder / f"{variant}.pth"

    return make


class MadeOnFirstUse(dict):
    """key -> path, `make(key)` called the first time a key is asked for."""

    def __init__(self, make: Callable[[tuple], Path]):
        super().__init__()
        self.make = make

    def __missing__(self, key):
        self[key] = self.make(key)
        return self[key]


@pytest.fixture(scope="session")
def graphs(tmp_path_factory, real_weights, generated_checkpoint) -> dict[tuple, Path]:
    """(variant, precision) -> exported ONNX path: the real osnet_x0_25 (MSMT17) and a generated
    osnet_ain_x1_0, fp32 and fp16, each variant exported once per test run when first asked
    for (so a quick run that needs one does not export the other)."""
    from reid_trt.export.api import ExportConfig, export_onnx

    sources = {"osnet_x0_25": lambda: real_weights["msmt17"],
               "osnet_ain_x1_0": lambda: generated_checkpoint("osnet_ain_x1_0")}

    def path(key: tuple) -> Path:
        variant, precision = key

        def make(folder: Path) -> None:
            for p in ("fp32", "fp16"):  # fp16 reuses the fp32 trace
                export_onnx(sources[variant](), folder / f"{variant}.{p}.onnx",
                            ExportConfig(precision=p))

        return made_once(tmp_path_factory, f"graphs-{variant}", make) / f"{variant}.{precision}.onnx"

    return MadeOnFirstUse(path)


@pytest.fixture(scope="session")
def static4_graph(tmp_path_factory, real_weights) -> Path:
    """The real osnet_x0_25 (MSMT17) exported with a static batch of 4, once per test run."""
    from reid_trt.export.api import ExportConfig, export_onnx

    name = "osnet.static4.onnx"
    folder = made_once(tmp_path_factory, "graph-static4", lambda f: export_onnx(
        real_weights["msmt17"], f / name, ExportConfig(batch=4)))
    return folder / name


@pytest.fixture(scope="session")
def market_like(shared_data, tmp_path_factory) -> Path:
    """A labelled Market-1501-style tree (train/query/gallery) built from the MOT17 boxes:
    identities are track ids, frames 1-2 train, frame 3 query (camera 1), the rest gallery
    (camera 2)."""
    import cv2

    from reid_trt.data.datasets import load_dataset, read_samples

    dataset = load_dataset(shared_data / "reid" / "mot17-mini")
    root = tmp_path_factory.mktemp("market_like")
    for sample in dataset.train:
        frame = int(sample.path.stem)
        split, cam = ("bounding_box_train", 1) if frame <= 2 else (
            ("query", 1) if frame == 3 else ("bounding_box_test", 2))
        crop = read_samples([sample])[0][0]
        name = f"{sample.pid % 100_000 + 1000 * sample.camid:04d}_c{cam}s1_{frame:06d}_00.jpg"
        (root / split).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / split / name), crop)
    return root
