"""The environment `make test` builds: one OpenCV distribution, a torchvision that imports and
runs (Ultralytics cannot be imported without one), and reid-trt's own paths and the trackers'
re-ID paths free of it (Jetson users often have no working torchvision)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from importlib import metadata

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # the trackers imported in a subprocess

OPENCV = {"opencv-python", "opencv-python-headless", "opencv-contrib-python",
          "opencv-contrib-python-headless"}


def test_one_opencv_distribution_owns_cv2():
    found = sorted(d.metadata["Name"].lower() for d in metadata.distributions()
                   if d.metadata["Name"] and d.metadata["Name"].lower() in OPENCV)
    assert len(found) == 1, f"{found}: two distributions overwrite each other's cv2"
    import cv2

    version = metadata.version(found[0])
    assert cv2.__version__ == ".".join(version.split(".")[:3])  # the files are that one's
    assert cv2.resize(np.full((4, 4, 3), 7, np.uint8), (2, 2)).tolist() == [[[7] * 3] * 2] * 2


# The modules reid-trt's tests and its tracker recipes import: reid-trt whole, BoxMOT's ReID and
# trackers, Ultralytics' BoT-SORT and its ReID encoder.
USED = ["reid_trt.cli.export", "reid_trt.cli.bench", "reid_trt.cli.serve",
        "reid_trt.integrations.boxmot", "reid_trt.serving.client", "boxmot", "boxmot.reid.core",
        "ultralytics.trackers.bot_sort", "ultralytics.trackers.utils.reid",
        "ultralytics.engine.results"]

BLOCK = """
import importlib, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torchvision":
            raise ImportError("torchvision imported by " + sys._getframe(2).f_globals.get("__name__", "?"))
sys.meta_path.insert(0, Block())
for module in sys.argv[1:]:
    importlib.import_module(module)
print("ok")
"""


def test_torchvision_imports_and_runs():
    import torch
    import torchvision

    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10]], dtype=torch.float32)
    assert torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8]), 0.5).tolist() == [0]


def test_no_re_id_path_imports_torchvision():
    for module in ("boxmot", "ultralytics"):
        if importlib.util.find_spec(module) is None:
            pytest.fail(f"{module} is not installed; make test installs it")
    run = subprocess.run([sys.executable, "-c", BLOCK, *USED], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]
