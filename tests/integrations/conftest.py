"""Real MOT17 frames with their ground-truth boxes as detections, and the consumers' packages
(installed by `make test`; missing one fails in CI and skips elsewhere)."""

from __future__ import annotations

import importlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from tests.conftest import IN_CI


def consumer(module: str):
    try:
        imported = importlib.import_module(module)
    except ImportError as e:
        if IN_CI:
            pytest.fail(f"{module} is not installed ({e}); make test installs it")
        pytest.skip(f"{module} is not installed")
    if module == "boxmot":
        # BoxMOT 25's ONNX backend pip-installs onnxruntime==1.24.3 at run time when another
        # version is installed; during a run of this suite that replaced 1.32, whose FP16 Q/DQ
        # CPU kernels compute differently (tests/calibration). Tests use the environment as
        # installed.
        from boxmot.reid.backends.onnx_backend import ONNXBackend

        ONNXBackend._ensure_onnxruntime_installed = lambda self: None
    return imported


def export_for(consumer: str, weights: Path, out: Path) -> tuple[Path, str]:
    """`reid-export onnx --for consumer`, as a user runs it: (graph, command output)."""
    from reid_trt.cli.export import app as export_app

    result = CliRunner().invoke(export_app, ["onnx", "-w", str(weights), "--for", consumer,
                                             "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


@pytest.fixture(scope="session")
def mot_frames(shared_data) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Sequence -> [(BGR frame, N x 4 ground-truth boxes x0, y0, x1, y1)] of visible pedestrians,
    in frame order."""
    from reid_trt.data.mot import frames, pedestrian_boxes, read_gt

    root = shared_data / "reid" / "mot17-mini" / "train"
    out = {}
    for sequence in ("MOT17-02-FRCNN", "MOT17-04-FRCNN"):
        gt = read_gt(root / sequence)
        out[sequence] = []
        for number, path in frames(root / sequence):
            boxes = np.array([box for _, box in pedestrian_boxes(gt, number)], dtype=np.float64)
            out[sequence].append((cv2.imread(str(path)), boxes))
    return out


def feature_agreement(ours: dict, reference: dict) -> float:
    """Min cosine between the tracks' stored appearance features (track id -> smoothed
    embedding) of two runs of a tracker: what track ids alone cannot show, since on consecutive
    frames box overlap decides every match whatever the embeddings."""
    common = sorted(set(ours) & set(reference))
    assert len(common) >= 10, (sorted(ours), sorted(reference))
    a = np.stack([ours[i] / np.linalg.norm(ours[i]) for i in common])
    b = np.stack([reference[i] / np.linalg.norm(reference[i]) for i in common])
    return float(np.einsum("ij,ij->i", a, b).min())
