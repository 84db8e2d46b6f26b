"""What the calibration tests share: the real weights' FP32 graphs and the crops they are judged
on."""

import pytest

from reid_trt.data.folder import read_crops
from reid_trt.data.mot import mot_crops
from reid_trt.data.shifts import shifted_copies
from tests.conftest import MadeOnFirstUse

# The shifts in which cameras differ that the acceptance levels must hold on.
CAMERA_SHIFTS = ("brighter", "darker", "more contrast", "less contrast", "blur", "mirrored")


@pytest.fixture(scope="module")
def sources(real_weights):
    """weights name -> (FP32 source graph, sha256), exported when first asked for."""
    from reid_trt.calibration.api import source_graph

    return MadeOnFirstUse(lambda name: source_graph(None, real_weights[name])[:2])


@pytest.fixture(scope="module")
def unseen(shared_data):
    """Crops from cameras and datasets the calibration never saw, and shifted copies of them."""
    mot02, _ = mot_crops(shared_data / "reid" / "mot17-mini" / "train" / "MOT17-02-FRCNN")
    reid = [c for d in ("market1501", "msmt17", "cuhk03")
            for c in read_crops(shared_data / "reid" / d)]
    sets = {"MOT17-02": mot02, "Market-1501/MSMT17/CUHK03": reid}
    return {**sets, **shifted_copies(mot02 + reid, CAMERA_SHIFTS)}
