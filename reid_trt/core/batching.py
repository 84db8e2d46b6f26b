"""Batch plans (chunks a backend can run, padded to its minimum) and box clipping."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reid_trt.core.errors import ReidTrtError


@dataclass(frozen=True)
class Chunk:
    start: int
    stop: int
    padded: int  # batch size actually run (>= stop - start): the profile minimum or static size


def plan_batches(n: int, max_batch: int | None, min_batch: int = 1,
                 static_batch: int | None = None) -> list[Chunk]:
    """Splits n inputs into chunks the backend can run; pads chunks below the minimum size."""
    if static_batch is not None:
        min_batch = max_batch = static_batch
    step = max_batch or max(n, 1)
    chunks = []
    for start in range(0, n, step):
        stop = min(start + step, n)
        chunks.append(Chunk(start, stop, max(stop - start, min_batch)))
    return chunks


def pad_batch(batch: np.ndarray, size: int) -> np.ndarray:
    """Repeats the last item to reach `size` (the extra rows are dropped after the run)."""
    if len(batch) >= size:
        return batch
    return np.concatenate([batch, np.repeat(batch[-1:], size - len(batch), axis=0)])


def numeric_boxes(boxes, name: str = "boxes_xyxy") -> np.ndarray:
    """`boxes` as a float64 array, or a one-line error naming the argument: strings, objects and
    ragged rows are not boxes (NumPy would parse '10' as 10 and fail on '10,20' deep inside)."""
    try:
        array = np.asarray(boxes)
    except ValueError:  # ragged rows
        array = None
    if array is None or array.dtype.kind not in "biuf":
        kind = type(boxes).__name__ if array is None or array.dtype.kind != "U" else "strings"
        raise ReidTrtError(f"{name} holds {kind}, not numbers; pass an (N, 4) array of pixel "
                           "coordinates x0, y0, x1, y1 (e.g. np.array([[10, 20, 60, 180]]))")
    return array.astype(np.float64)


def clip_boxes(boxes_xyxy, frame_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Integer pixel boxes clipped to the frame, and which of them still hold a pixel.

    Boxes are rounded outwards (floor of x0/y0, ceil of x1/y1) so a sub-pixel box keeps its
    pixel; NaN or inverted boxes, and boxes entirely outside the frame, are marked invalid.
    """
    boxes = numeric_boxes(boxes_xyxy)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ReidTrtError(f"boxes have shape {boxes.shape}; pass (N, 4) x0, y0, x1, y1 "
                           "(detections with scores: boxes[:, :4])")
    height, width = frame_hw
    finite = np.isfinite(boxes).all(axis=1)
    safe = np.where(finite[:, None], boxes, 0.0)
    x0 = np.clip(np.floor(safe[:, 0]), 0, width).astype(np.int64)
    y0 = np.clip(np.floor(safe[:, 1]), 0, height).astype(np.int64)
    x1 = np.clip(np.ceil(safe[:, 2]), 0, width).astype(np.int64)
    y1 = np.clip(np.ceil(safe[:, 3]), 0, height).astype(np.int64)
    valid = finite & (x1 > x0) & (y1 > y0)
    return np.stack([x0, y0, x1, y1], axis=1), valid


@dataclass(frozen=True)
class BatchLimits:
    """The batch sizes a backend can run: a static batch, or a range (max None: unbounded)."""

    min: int = 1
    max: int | None = None
    static: int | None = None

    def plan(self, n: int, cap: int | None = None) -> list[Chunk]:
        """Chunks for n inputs, none above `cap` (or the backend's maximum)."""
        limit = min(b for b in (cap, self.max) if b) if (cap or self.max) else None
        return plan_batches(n, limit, self.min, self.static)

    def fits(self, batch: int) -> bool:
        """Whether a batch of this size runs as it is, without padding or splitting."""
        if self.static is not None:
            return batch == self.static
        return self.min <= batch and (self.max is None or batch <= self.max)
