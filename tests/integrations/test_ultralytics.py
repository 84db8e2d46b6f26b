"""Ultralytics 8.4 (the PyPI package) with a `--for ultralytics` graph: its BoT-SORT ReID encoder
loads the graph as it is (static 256x128 input, so it feeds rectangular crops, RGB / 255), and
the embeddings match PyTorch fed by the same rules; BoT-SORT tracks the same with either."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from reid_trt.cli.export import app as export_app
from reid_trt.core import defaults
from reid_trt.models.checkpoint import load_model
from tests.integrations.conftest import consumer, export_for, feature_agreement

pytestmark = pytest.mark.slow  # Ultralytics' tracker runs

runner = CliRunner()


@pytest.fixture(scope="module")
def ultralytics_graph(real_weights, tmp_path_factory):
    consumer("ultralytics")
    out, output = export_for("ultralytics", real_weights["msmt17"],
                             tmp_path_factory.mktemp("ultralytics") / "osnet_x0_25_msmt17.onnx")
    assert "float-rgb01 NCHW 256x128 RGB" in output
    return out


@pytest.fixture(scope="module")
def encoder(ultralytics_graph):
    from ultralytics.trackers.utils.reid import ReID

    return ReID(str(ultralytics_graph), device="cpu")


def xywh(boxes: np.ndarray) -> np.ndarray:
    return np.c_[(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]]


def pytorch_as_ultralytics_feeds(model, encoder, frame, boxes) -> np.ndarray:
    """The eager model on the batch Ultralytics builds (its crops, RGB / 255, bilinear resize),
    normalised as torchreid trains it."""
    batch = encoder._crops_to_tensor(encoder._crop_detections(frame, xywh(boxes)))
    mean = torch.tensor(defaults.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(defaults.IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        return model((batch - mean) / std).numpy()


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_encoder_matches_pytorch(encoder, real_weights, mot_frames):
    assert encoder.imgsz == (256, 128) and encoder.batch_size is None  # dynamic batch
    model = load_model(real_weights["msmt17"]).model.eval()
    cosines = []
    for frames in mot_frames.values():
        for frame, boxes in frames:
            got = np.stack(encoder(frame, xywh(boxes)))
            want = pytorch_as_ultralytics_feeds(model, encoder, frame, boxes)
            cosines.append(np.einsum("ij,ij->i", unit(got), unit(want)))
    cos = np.concatenate(cosines)
    assert len(cos) > 200 and cos.min() >= 0.9999


def test_botsort_tracks_alike(ultralytics_graph, encoder, real_weights, mot_frames):
    """BoT-SORT with `model:` pointing at the graph against BoT-SORT given PyTorch's embeddings
    of the same crops (`model: auto` takes precomputed features)."""
    from ultralytics.engine.results import Boxes
    from ultralytics.trackers.bot_sort import BOTSORT
    from ultralytics.utils import YAML, IterableSimpleNamespace
    from ultralytics.utils.checks import check_yaml

    model = load_model(real_weights["msmt17"]).model.eval()

    def tracker(reid_model: str) -> BOTSORT:
        args = IterableSimpleNamespace(**YAML.load(check_yaml("botsort.yaml")))
        args.with_reid, args.model, args.gmc_method = True, reid_model, "none"
        return BOTSORT(args)

    def stored(t: BOTSORT) -> dict:
        return {s.track_id: np.asarray(s.smooth_feat) for s in t.tracked_stracks
                if s.smooth_feat is not None}

    for sequence, frames in mot_frames.items():
        ours, reference = tracker(str(ultralytics_graph)), tracker("auto")
        control = tracker("auto")  # fed channel-swapped embeddings
        for frame, boxes in frames:
            detections = torch.tensor(np.c_[boxes, np.ones(len(boxes)), np.zeros(len(boxes))],
                                      dtype=torch.float32)
            feats = pytorch_as_ultralytics_feeds(model, encoder, frame, boxes)
            got = ours.update(Boxes(detections, frame.shape[:2]), frame)
            want = reference.update(Boxes(detections, frame.shape[:2]), frame, feats=feats)
            wrong = control.update(Boxes(detections, frame.shape[:2]), frame,
                                   feats=np.roll(feats, 1, axis=1))
            np.testing.assert_array_equal(got[:, 4], want[:, 4], err_msg=sequence)
            np.testing.assert_array_equal(wrong[:, 4], want[:, 4], err_msg=sequence)
        assert len(got) >= 10
        # The ids cannot tell right embeddings from wrong ones on these frames; the stored
        # appearance features can.
        assert feature_agreement(stored(ours), stored(reference)) >= 0.9999, sequence
        assert feature_agreement(stored(control), stored(reference)) < 0.9, sequence


def test_refusals(real_weights, tmp_path):
    result = runner.invoke(export_app, ["onnx", "-w", str(real_weights["msmt17"]), "--for",
                                        "ultralytics", "--input", "uint8-bgr",
                                        "-o", str(tmp_path / "x.onnx")])
    assert result.exit_code == 1
    assert "--input uint8-bgr: ultralytics feeds float-rgb01; drop --input" in result.output
    result = runner.invoke(export_app, ["onnx", "-w", str(real_weights["msmt17"]), "--for",
                                        "ultralytics", "--precision", "fp16", "--io-dtype",
                                        "fp16", "-o", str(tmp_path / "x.onnx")])
    assert result.exit_code == 1 and "--io-dtype fp16: Ultralytics feeds float32" in result.output
    assert list(tmp_path.iterdir()) == []
