"""A re-ID model for BoxMOT's trackers, backed by any Embedder:

    from boxmot import BotSort
    tracker = BotSort(reid_model=BoxMOTReID("osnet.plan"))
    tracks = tracker.update(dets, frame)  # dets: N x (x0, y0, x1, y1, conf, cls)

BoxMOT's trackers call `get_features(xyxys, img)` on whatever `reid_model` they are given. This
object crops boxes as BoxMOT's own backends do (rounded to whole pixels, clipped to the frame, an
all-black crop for a box with nothing left inside, so BoxMOT, which refuses zero embeddings,
still gets a row per box) and embeds them with the Embedder's own preprocessing (the contract of
the graph or engine: OpenCV resize that antialiases when shrinking, as torchreid's PIL training
path does). No import of boxmot here: the tracker only needs the method.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reid_trt.core.batching import numeric_boxes
from reid_trt.core.errors import ReidTrtError
from reid_trt.core.preprocess import as_bgr
from reid_trt.runtime.embedder import Embedder

AABB_COLUMNS = (4, 6, 8)  # x0,y0,x1,y1 [conf, cls] [det index, ...] as BoxMOT passes them


class BoxMOTReID:
    """`BotSort(reid_model=BoxMOTReID(path_or_embedder))`, and the same for StrongSORT,
    DeepOCSORT, BoostTrack, HybridSORT: any BoxMOT tracker that takes `reid_model`."""

    def __init__(self, model: Embedder | str | Path, **embedder_options):
        """`model`: an Embedder, or a model file (.plan/.engine, .onnx, .xml, .pth) with the
        Embedder's keyword options (device, backend, max_batch, ...)."""
        if isinstance(model, Embedder):
            if embedder_options:
                raise ReidTrtError("pass Embedder options to the Embedder itself, not with it")
            self.embedder = model
        else:
            self.embedder = Embedder(model, **embedder_options)

    @property
    def dim(self) -> int:
        return self.embedder.dim

    def get_features(self, xyxys, img: np.ndarray) -> np.ndarray:
        """(N, D) float32 L2-normalised embeddings of the boxes `xyxys` (N x 4, 6 or 8 columns,
        the first four x0, y0, x1, y1 in pixels) in the BGR frame `img`."""
        frame = as_bgr(img, "frame")
        boxes = numeric_boxes(xyxys, "xyxys")
        if boxes.size == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        if boxes.ndim == 1:
            boxes = boxes.reshape(1, -1)
        if boxes.ndim != 2 or boxes.shape[1] not in AABB_COLUMNS:
            raise ReidTrtError(f"boxes have shape {boxes.shape}; BoxMOTReID takes axis-aligned "
                               "rows (x0, y0, x1, y1[, conf, cls[, ...]]); oriented boxes are "
                               "not supported")
        return self.embedder.embed(crops_like_boxmot(frame, boxes[:, :4], self.embedder.contract))

    def __repr__(self) -> str:
        return f"BoxMOTReID({self.embedder!r})"


def crops_like_boxmot(frame: np.ndarray, boxes: np.ndarray, contract) -> list[np.ndarray]:
    """The crops BoxMOT's backends cut: coordinates rounded half to even (NumPy's round), clipped
    to the frame; a black crop of the model's input size where no pixel is left (or a coordinate
    is NaN or infinite)."""
    height, width = frame.shape[:2]
    black = np.zeros((contract.height, contract.width, 3), dtype=np.uint8)
    crops = []
    finite = np.isfinite(boxes).all(axis=1)
    rounded = np.where(finite[:, None], boxes, 0.0).round().astype(np.int64)
    for (x0, y0, x1, y1), ok in zip(rounded, finite, strict=True):
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
        crops.append(frame[y0:y1, x0:x1] if ok and x1 > x0 and y1 > y0 else black)
    return crops
