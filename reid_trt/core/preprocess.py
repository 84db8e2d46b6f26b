"""Crop preprocessing with NumPy and OpenCV: the one implementation that export verification,
calibration and the runtime all use, so their inputs never drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from reid_trt.core import defaults
from reid_trt.core.errors import ReidTrtError
from reid_trt.core.opencv import cv2


def as_bgr(crop: np.ndarray, index: int | str = 0) -> np.ndarray:
    """Checks one crop (or a frame: `index` names it) and returns it as HxWx3 uint8 BGR
    (grayscale and BGRA are converted)."""
    name = f"crop {index}" if isinstance(index, int) else index
    if not isinstance(crop, np.ndarray):
        raise ReidTrtError(f"{name} is a {type(crop).__name__}; pass HxWx3 uint8 numpy arrays")
    if crop.dtype != np.uint8:
        raise ReidTrtError(
            f"{name} has dtype {crop.dtype}; pass uint8 BGR images as OpenCV reads them "
            "(convert float images with (img * 255).clip(0, 255).astype(np.uint8))"
        )
    if crop.ndim == 2:
        crop = cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
    elif crop.ndim == 3 and crop.shape[2] == 1:
        crop = cv2.cvtColor(crop[:, :, 0], cv2.COLOR_GRAY2BGR)
    elif crop.ndim == 3 and crop.shape[2] == 4:
        crop = cv2.cvtColor(crop, cv2.COLOR_BGRA2BGR)
    elif crop.ndim != 3 or crop.shape[2] != 3:
        raise ReidTrtError(
            f"{name} has shape {crop.shape}; expected HxWx3 BGR (HxW gray and HxWx4 BGRA "
            "are converted)"
        )
    if crop.shape[0] == 0 or crop.shape[1] == 0:
        raise ReidTrtError(f"{name} is empty (shape {crop.shape}); drop zero-size boxes")
    return crop


# Output pixels per band when an axis shrinks: each reads ~2*scale input pixels; bands of 8 waste
# few products on zero weights and make one batched product per axis (chosen by measurement).
BAND = 8


@lru_cache(maxsize=512)
def _shrink_plan(src: int, dst: int) -> tuple[np.ndarray, np.ndarray]:
    """PIL's bilinear coefficients for `src` -> `dst` pixels (dst < src), as Pillow's
    precompute_coeffs makes them: a triangle centred on each output pixel with its support
    widened by the scale (the antialiasing), normalised over the pixels inside the image.
    Returned in bands of BAND outputs: the input pixels each band reads, (bands, span), and the
    weights, (bands, BAND, span)."""
    scale = src / dst
    centres = (np.arange(dst) + 0.5) * scale
    first = np.maximum((centres - scale + 0.5).astype(np.int64), 0)  # truncation, as C casts
    end = np.minimum((centres + scale + 0.5).astype(np.int64), src)
    pixel = np.arange(src)
    weights = np.maximum(0.0, 1.0 - np.abs((pixel + 0.5 - centres[:, None]) / scale))
    weights[(pixel < first[:, None]) | (pixel >= end[:, None])] = 0.0
    weights /= weights.sum(axis=1, keepdims=True)
    weights = np.trunc(weights * 2.0**22 + 0.5) / 2.0**22  # Pillow's 22-bit fixed point
    bands = -(-dst // BAND)
    pad = bands * BAND - dst  # the last band's extra outputs have zero weights and are dropped
    weights = np.vstack([weights, np.zeros((pad, src))]).reshape(bands, BAND, src)
    first = np.concatenate([first, np.full(pad, first[-1])]).reshape(bands, BAND).min(axis=1)
    end = np.concatenate([end, np.full(pad, end[-1])]).reshape(bands, BAND).max(axis=1)
    span = int((end - first).max())
    index = np.minimum(first, src - span)[:, None] + np.arange(span)
    weights = np.take_along_axis(weights, np.broadcast_to(index[:, None], (bands, BAND, span)), 2)
    return index, weights.astype(np.float32)


def _shrink_rows(rows: np.ndarray, dst: int) -> np.ndarray:
    """(src, M) -> (dst, M) float32: PIL's antialiasing bilinear filter along axis 0."""
    index, weights = _shrink_plan(rows.shape[0], dst)
    gathered = rows[index].astype(np.float32, copy=False)  # (bands, span, M): a fresh copy
    return np.matmul(weights, gathered).reshape(-1, rows.shape[1])[:dst]


def _pass(image: np.ndarray, size: int, axis: int, whole: bool = True) -> np.ndarray:
    """One PIL pass along `axis` (0: rows, 1: columns) to `size` pixels: float32 values plus 0.5
    (uint8 or float32 in). `whole`: rounded down to whole grey levels, which with the 0.5 is
    Pillow's rounding half up to 8 bits after each pass; the last pass leaves that to the cast
    into uint8. Kept in float between passes, not rounded into a uint8 array and converted back:
    the same pixels, 4% less time (MOT17-04 boxes, batch 32, interleaved A/B on a 2-core EPYC)."""
    if image.shape[axis] < size:  # growing: linear between pixel centres, in float
        dsize = (image.shape[1], size) if axis == 0 else (size, image.shape[0])
        values = cv2.resize(image.astype(np.float32, copy=False), dsize,
                            interpolation=cv2.INTER_LINEAR)
    elif axis == 0:
        rows = np.ascontiguousarray(image).reshape(image.shape[0], -1)  # crops may be views
        values = _shrink_rows(rows, size).reshape(size, -1, 3)
    else:  # the columns as rows, so that one product shrinks them
        columns = cv2.transpose(image).reshape(image.shape[1], -1)
        values = cv2.transpose(_shrink_rows(columns, size).reshape(size, -1, 3))
    np.add(values, 0.5, out=values)
    if whole:
        np.floor(values, out=values)  # sums stay in 0..255.5: no clipping needed
    return values


def resize_like_pil(crop: np.ndarray, size: tuple[int, int], out: np.ndarray) -> None:
    """One HxWx3 uint8 crop resized into `out` (height, width, 3) as torchreid's transform does
    (torchvision's Resize on a PIL image: PIL bilinear), to within one grey level of Pillow.

    PIL resamples one axis at a time, rounding to 8 bits after each: an axis that
    grows is linear interpolation between pixel centres (OpenCV's INTER_LINEAR, computed here in
    float: its 8-bit fixed point alone moved small upscaled boxes' embeddings to cosine 0.9986);
    an axis that shrinks gets a triangle filter widened by the scale, which no OpenCV
    interpolation computes (INTER_AREA is a box, and only when both axes shrink), so it is a
    banded matrix product with PIL's own coefficients. Pillow itself would be exact but ~10x
    slower than this (benchmarks/preprocess_pil_vs_cv2.py)."""
    height, width = size
    passes = []
    # Pillow 13 shrinks the height first when it shrinks more than the width (else the width
    # first, as every Pillow did before): found by comparing both orders with it on all aspects.
    height_first = crop.shape[0] > height and crop.shape[0] / height > crop.shape[1] / width
    if height_first:
        passes.append((height, 0))
    if crop.shape[1] != width:
        passes.append((width, 1))
    if crop.shape[0] != height and not height_first:
        passes.append((height, 0))
    image = crop
    for k, (pixels, axis) in enumerate(passes):
        image = _pass(image, pixels, axis, whole=k < len(passes) - 1)
    out[...] = image  # truncates: with the 0.5 added, rounding half up


def resize_bgr(crops: Sequence[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """Crops resized to (height, width) as torchreid does (resize_like_pil), stacked as N,H,W,3
    uint8 BGR."""
    height, width = size
    out = np.empty((len(crops), height, width, 3), dtype=np.uint8)
    for i, crop in enumerate(crops):
        crop = as_bgr(crop, i)
        if crop.shape[:2] == (height, width):
            out[i] = crop
        else:
            resize_like_pil(crop, size, out[i])
    return out


def normalize_nhwc_bgr(batch: np.ndarray, mean: Sequence[float] = defaults.IMAGENET_MEAN,
                       std: Sequence[float] = defaults.IMAGENET_STD) -> np.ndarray:
    """N,H,W,3 uint8 BGR to N,3,H,W float32 RGB, ImageNet-normalised."""
    n, height, width, _ = batch.shape
    out = np.empty((n, 3, height, width), dtype=np.float32)
    # One channel at a time, straight into the NCHW output: no float NHWC temporaries, ~8x
    # faster than converting, scaling and transposing the whole batch.
    for c in range(3):
        scale = np.float32(1.0 / (255.0 * std[c]))
        np.multiply(batch[..., 2 - c], scale, out=out[:, c], dtype=np.float32)
        out[:, c] += np.float32(-mean[c] / std[c])
    return out


def preprocess_numpy(crops: Sequence[np.ndarray], size: tuple[int, int] = (
        defaults.INPUT_HEIGHT, defaults.INPUT_WIDTH), mean: Sequence[float] = defaults.IMAGENET_MEAN,
        std: Sequence[float] = defaults.IMAGENET_STD) -> np.ndarray:
    """BGR crops of any size to the float N,3,H,W tensor torchreid models take."""
    return normalize_nhwc_bgr(resize_bgr(crops, size), mean, std)


def graph_input(crops: Sequence[np.ndarray], contract) -> np.ndarray:
    """Crops -> the batch a graph with this `Contract` takes, in its input dtype: resized, then
    uint8 BGR as it is, N,3,H,W RGB pixel values (0-255 or 0-1) for graphs that normalise inside,
    or mean/std-normalised N,3,H,W RGB."""
    batch = resize_bgr(crops, (contract.height, contract.width))
    if contract.uint8_input:
        return batch
    if contract.pixel_scale is not None:  # x * scale: mean 0, std 1 / (255 * scale)
        std = 1.0 / (255.0 * contract.pixel_scale)
        x = normalize_nhwc_bgr(batch, (0.0, 0.0, 0.0), (std, std, std))
    else:
        x = normalize_nhwc_bgr(batch, contract.mean, contract.std)
    return x.astype(np.float16) if contract.io_dtype == "fp16" else x
