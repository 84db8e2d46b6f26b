"""Person crops cut from MOTChallenge sequences (frames plus gt/gt.txt)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from reid_trt.errors import ReidTrtError

PEDESTRIAN = 1  # MOT17 class id of pedestrians


def mot_crops(sequence: Path | str, min_visibility: float = 0.5, min_height: int = 32,
              max_frames: int | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """(crops, track ids) of the visible pedestrians of one MOT sequence folder.

    gt.txt rows are frame, id, x, y, w, h, conf, class, visibility; boxes are clipped to the frame.
    """
    sequence = Path(sequence)
    gt_path = sequence / "gt" / "gt.txt"
    if not gt_path.is_file():
        raise ReidTrtError(f"{sequence}: no gt/gt.txt; pass a MOTChallenge sequence folder")
    gt = np.loadtxt(gt_path, delimiter=",", ndmin=2)
    frames = sorted((sequence / "img1").glob("*.jpg"))[:max_frames]
    crops, ids = [], []
    for frame_path in frames:
        frame = cv2.imread(str(frame_path))
        if frame is None:
            continue
        rows = gt[(gt[:, 0] == int(frame_path.stem)) & (gt[:, 7] == PEDESTRIAN)
                  & (gt[:, 8] >= min_visibility)]
        for row in rows:
            x, y, w, h = row[2:6]
            x0, y0 = max(int(x), 0), max(int(y), 0)
            x1, y1 = min(int(x + w), frame.shape[1]), min(int(y + h), frame.shape[0])
            if y1 - y0 >= min_height and x1 > x0:
                crops.append(frame[y0:y1, x0:x1].copy())
                ids.append(int(row[1]))
    return crops, np.asarray(ids, dtype=np.int64)
