"""MOTChallenge sequences (frames in img1/, boxes in gt/gt.txt): the one parser and the one box
filter that calibration, reid-bench and the tests all use.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from reid_trt.core.defaults import MIN_CROP_HW
from reid_trt.core.errors import ReidTrtError
from reid_trt.core.opencv import read_image

PEDESTRIAN = 1  # MOT17 class id of pedestrians
MIN_VISIBILITY = 0.5
GT_COLUMNS = 9  # frame, id, x, y, w, h, conf, class, visibility

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in frame pixels (may lie partly outside)


def sequences(root: Path) -> list[Path]:
    """Sequence folders (those with gt/gt.txt) below `root`, sorted."""
    return sorted(p.parent.parent for p in Path(root).rglob("gt/gt.txt"))


def read_gt(sequence: Path) -> np.ndarray:
    """gt/gt.txt as an (N, 9) float array; a malformed file is a one-line error."""
    path = Path(sequence) / "gt" / "gt.txt"
    if not path.is_file():
        raise ReidTrtError(f"{sequence}: no gt/gt.txt; pass a MOTChallenge sequence folder")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy warns on an empty file: no boxes is fine
            gt = np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64)
    except (ValueError, UnicodeDecodeError) as e:
        reason = str(e).splitlines()[0][:120]
        raise ReidTrtError(f"{path} is not MOT ground truth (comma-separated frame,id,x,y,w,h,"
                           f"conf,class,visibility): {reason}") from None
    if gt.size == 0:
        return np.zeros((0, GT_COLUMNS))
    if gt.shape[1] < GT_COLUMNS or not np.isfinite(gt[:, :GT_COLUMNS]).all():
        raise ReidTrtError(f"{path}: rows need {GT_COLUMNS} finite values (frame,id,x,y,w,h,"
                           f"conf,class,visibility), found {gt.shape[1]} columns")
    return gt[:, :GT_COLUMNS]


def frames(sequence: Path) -> list[tuple[int, Path]]:
    """(frame number, image) of img1/*.jpg; files not named by a frame number are ignored."""
    found = [(int(p.stem), p) for p in (Path(sequence) / "img1").glob("*.jpg") if p.stem.isdigit()]
    return sorted(found)


def pedestrian_boxes(gt: np.ndarray, frame: int) -> list[tuple[int, Box]]:
    """(track id, box) of the visible pedestrians of one frame, at least MIN_CROP_HW in size."""
    rows = gt[(gt[:, 0] == frame) & (gt[:, 7] == PEDESTRIAN) & (gt[:, 8] >= MIN_VISIBILITY)]
    boxes = []
    for row in rows:
        x, y, w, h = (int(v) for v in row[2:6])
        if h >= MIN_CROP_HW[0] and w >= MIN_CROP_HW[1]:
            boxes.append((int(row[1]), (x, y, x + w, y + h)))
    return boxes


def crop_box(frame: np.ndarray, box: Box) -> np.ndarray | None:
    """The part of `box` inside the frame (a copy), or None if nothing is left."""
    x0, y0, x1, y1 = box
    crop = frame[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)]
    return crop.copy() if crop.size else None


def mot_crops(sequence: Path | str, max_frames: int | None = None
              ) -> tuple[list[np.ndarray], np.ndarray]:
    """(crops, track ids) of the visible pedestrians of one MOT sequence folder."""
    gt = read_gt(Path(sequence))
    crops, ids = [], []
    for number, path in frames(Path(sequence))[:max_frames]:
        image = read_image(path)
        if image is None:
            continue
        for track, box in pedestrian_boxes(gt, number):
            crop = crop_box(image, box)
            if crop is not None:
                crops.append(crop)
                ids.append(track)
    return crops, np.asarray(ids, dtype=np.int64)
