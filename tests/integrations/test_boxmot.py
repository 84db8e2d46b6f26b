"""BoxMOT 25 (the PyPI package) with reid-trt: BoxMOTReID as a tracker's reid_model against
BoxMOT's own OSNet backend on the same weights, and a `--for boxmot` graph loaded by BoxMOT's own
ONNX backend as it is; over real MOT17 frames, ground-truth boxes as detections."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from reid_trt.cli.export import app as export_app
from reid_trt.core.errors import ReidTrtError
from reid_trt.integrations.boxmot import BoxMOTReID
from reid_trt.runtime.embedder import Embedder
from tests.integrations.conftest import consumer, export_for, feature_agreement

pytestmark = pytest.mark.slow  # BoxMOT's trackers run

runner = CliRunner()


@pytest.fixture(scope="module")
def boxmot():
    return consumer("boxmot")


@pytest.fixture(scope="module")
def boxmot_own(boxmot, real_weights, tmp_path_factory):
    """BoxMOT's PyTorch OSNet backend on the same torchreid weights (it wants them as .pt, the
    architecture in the name)."""
    from boxmot.reid.core import ReID

    weights = tmp_path_factory.mktemp("boxmot") / "osnet_x0_25_msmt17.pt"
    shutil.copy(real_weights["msmt17"], weights)
    return ReID(weights=weights, device="cpu", half=False).model


@pytest.fixture(scope="module")
def boxmot_graph(real_weights, tmp_path_factory):
    return export_for("boxmot", real_weights["msmt17"],
                      tmp_path_factory.mktemp("boxmot-graph") / "osnet_x0_25_msmt17.onnx")[0]


def boxes_with_scores(boxes: np.ndarray) -> np.ndarray:
    """BoxMOT's detections: x0, y0, x1, y1, confidence, class."""
    return np.c_[boxes, np.ones(len(boxes)), np.zeros(len(boxes))]


def track(boxmot, reid_model, frames) -> tuple[list[dict], dict]:
    """BoT-SORT over the frames: per frame, box -> track id (boxes matched by position); and at
    the end, track id -> the appearance feature the tracker stored for it."""
    tracker = boxmot.BotSort(reid_model=reid_model)
    out = []
    for frame, boxes in frames:
        tracks = tracker.update(boxes_with_scores(boxes), frame)
        # columns: x0, y0, x1, y1, id, conf, cls, det index
        out.append({int(t[7]): int(t[4]) for t in tracks})
    stored = {t.id: np.asarray(t.smooth_feat) for t in tracker.active_tracks
              if t.smooth_feat is not None}
    return out, stored


class ChannelSwapped:
    """The control: a reid model whose embeddings are right but for the order of channels."""

    def __init__(self, reid):
        self.reid = reid

    def get_features(self, xyxys, img):
        return np.roll(self.reid.get_features(xyxys, img), 1, axis=1)


def test_embeddings_match_boxmot_own_backend(boxmot_own, graphs, mot_frames):
    ours = BoxMOTReID(graphs["osnet_x0_25", "fp32"], device="cpu")
    cosines = []
    for frames in mot_frames.values():
        for frame, boxes in frames:
            got, want = ours.get_features(boxes, frame), boxmot_own.get_features(boxes, frame)
            assert got.shape == want.shape == (len(boxes), 512) and got.dtype == np.float32
            cosines.append(np.einsum("ij,ij->i", got, want))
    cos = np.concatenate(cosines)
    print(f"\n{len(cos)} boxes: cosine to BoxMOT's own backend min {cos.min():.5f}, "
          f"mean {cos.mean():.5f}")
    # The same network; only the resize differs: BoxMOT's OpenCV INTER_LINEAR against
    # torchreid's antialiased PIL bilinear, which BoxMOTReID follows (0.9961 min measured).
    assert len(cos) > 200 and cos.mean() >= 0.999 and cos.min() >= 0.99


def test_botsort_gives_the_same_tracks(boxmot, boxmot_own, graphs, mot_frames):
    """Same track ids, and the same appearance stored per track; channel-swapped embeddings
    keep the ids (box overlap decides them on these frames) but fail the features."""
    ours = BoxMOTReID(Embedder(graphs["osnet_x0_25", "fp32"], device="cpu"))
    for sequence, frames in mot_frames.items():
        want, want_features = track(boxmot, boxmot_own, frames)
        got, got_features = track(boxmot, ours, frames)
        assert got == want, sequence
        assert len(set(got[-1].values())) >= 10  # real tracks, not an empty output
        # stored track features: 0.9989 measured, the resize being torchreid's (above)
        assert feature_agreement(got_features, want_features) >= 0.997, sequence
        wrong, wrong_features = track(boxmot, ChannelSwapped(ours), frames)
        assert wrong == want  # the ids cannot tell...
        assert feature_agreement(wrong_features, want_features) < 0.9  # ...the features do


def test_boxmot_loads_the_exported_graph_as_is(boxmot, boxmot_own, boxmot_graph, mot_frames):
    from boxmot.reid.core import ReID

    theirs = ReID(weights=boxmot_graph, device="cpu", half=False).model
    assert type(theirs).__name__ == "ONNXBackend"
    frame, boxes = mot_frames["MOT17-04-FRCNN"][0]
    cos = np.einsum("ij,ij->i", theirs.get_features(boxes, frame),
                    boxmot_own.get_features(boxes, frame))
    assert cos.min() >= 0.9999  # same preprocessing (BoxMOT's), same network


def test_odd_boxes_keep_their_rows(graphs, mot_frames):
    ours = BoxMOTReID(graphs["osnet_x0_25", "fp32"], device="cpu")
    frame, boxes = mot_frames["MOT17-02-FRCNN"][0]
    odd = np.array([[-50, -50, -10, -10], [np.nan, 0, 10, 10], [5000, 0, 6000, 10]], float)
    got = ours.get_features(np.r_[boxes[:2], odd], frame)
    assert got.shape == (5, 512)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)  # no zero rows
    np.testing.assert_allclose(got[2], got[3], atol=1e-6)  # both black crops
    assert ours.get_features(np.empty((0, 6)), frame).shape == (0, 512)
    with pytest.raises(ReidTrtError, match="oriented boxes are not supported"):
        ours.get_features(np.zeros((2, 5)), frame)


def test_boxmot_names_are_checked(real_weights, tmp_path):
    for name, message in (("model.onnx", "has none; name it like osnet_x0_25_msmt17.onnx"),
                          ("osnet_x1_0_market.onnx", "the name says osnet_x1_0 but the "
                                                     "checkpoint is osnet_x0_25")):
        result = runner.invoke(export_app, ["onnx", "-w", str(real_weights["msmt17"]),
                                            "--for", "boxmot", "-o", str(tmp_path / name)])
        assert result.exit_code == 1 and message in result.output, result.output
    assert list(tmp_path.iterdir()) == []
