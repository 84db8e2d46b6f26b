"""Camera shifts: how the same person looks through another camera (exposure, contrast, gamma,
focus, resolution, mirror image, compression).

Two uses. INT8 calibration is judged on shifted copies of crops it never saw (`shifted_copies`,
fixed strengths in both directions, so a report names the shift that hurts). And the
calibration set is augmented with randomly shifted copies (`augment`, seeded), so activation
ranges cover the cameras a model will meet, not only the one the data came from.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from reid_trt.core.opencv import cv2

Shift = Callable[[np.ndarray, float], np.ndarray]


def _lut(crop: np.ndarray, fn) -> np.ndarray:
    table = np.clip(fn(np.arange(256, dtype=np.float32)), 0, 255).astype(np.uint8)
    return cv2.LUT(crop, table)


def brightness(crop: np.ndarray, amount: float) -> np.ndarray:
    """amount in [-1, 1]: a fraction of full scale added to every pixel."""
    return _lut(crop, lambda v: v + 255.0 * amount)


def contrast(crop: np.ndarray, amount: float) -> np.ndarray:
    """amount > 0 stretches around mid-grey, < 0 flattens (factor 1 + amount)."""
    return _lut(crop, lambda v: 127.5 + (v - 127.5) * (1.0 + amount))


def gamma(crop: np.ndarray, amount: float) -> np.ndarray:
    """amount > 0 darkens mid-tones (exponent 1 + amount), < 0 lifts them."""
    return _lut(crop, lambda v: 255.0 * (v / 255.0) ** (1.0 + amount))


def blur(crop: np.ndarray, amount: float) -> np.ndarray:
    """Gaussian blur of sigma `amount` pixels: an out-of-focus or slower lens."""
    return cv2.GaussianBlur(crop, (0, 0), max(float(amount), 0.1))


def downscale(crop: np.ndarray, amount: float) -> np.ndarray:
    """Down to a fraction `amount` of the size and back: a farther or lower-resolution camera."""
    h, w = crop.shape[:2]
    small = cv2.resize(crop, (max(int(w * amount), 1), max(int(h * amount), 1)),
                       interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def hflip(crop: np.ndarray, amount: float = 1.0) -> np.ndarray:
    return np.ascontiguousarray(crop[:, ::-1])


def jpeg(crop: np.ndarray, amount: float) -> np.ndarray:
    """Re-encoded at JPEG quality `amount` (a stream's compression)."""
    ok, data = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, int(amount)])
    return cv2.imdecode(data, cv2.IMREAD_COLOR) if ok else crop


# The copies calibration is judged on: each shift at a strength cameras really differ by.
EVALUATION_SHIFTS: dict[str, tuple[Shift, float]] = {
    "brighter": (brightness, 0.18), "darker": (brightness, -0.18),
    "more contrast": (contrast, 0.35), "less contrast": (contrast, -0.35),
    "gamma 1.5": (gamma, 0.5), "gamma 0.67": (gamma, -0.33),
    "blur": (blur, 1.5), "low resolution": (downscale, 0.4),
    "mirrored": (hflip, 1.0), "jpeg q30": (jpeg, 30),
}


def shifted_copies(crops: list[np.ndarray], kinds: tuple[str, ...] | None = None
                   ) -> dict[str, list[np.ndarray]]:
    """Shift name -> a copy of every crop under that shift."""
    kinds = kinds or tuple(EVALUATION_SHIFTS)
    return {kind: [EVALUATION_SHIFTS[kind][0](c, EVALUATION_SHIFTS[kind][1]) for c in crops]
            for kind in kinds}


def augment(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One randomly shifted copy: photometric jitter always, and with some chance blur, lower
    resolution, a mirror image and JPEG compression (strengths as in EVALUATION_SHIFTS)."""
    out = brightness(crop, rng.uniform(-0.2, 0.2))
    out = contrast(out, rng.uniform(-0.4, 0.4))
    out = gamma(out, rng.uniform(-0.35, 0.55))
    if rng.random() < 0.3:
        out = blur(out, rng.uniform(0.5, 1.8))
    if rng.random() < 0.3:
        out = downscale(out, rng.uniform(0.35, 0.8))
    if rng.random() < 0.5:
        out = hflip(out)
    if rng.random() < 0.3:
        out = jpeg(out, rng.integers(25, 70))
    return out


def augmented(crops: list[np.ndarray], copies: int, seed: int) -> list[np.ndarray]:
    """The crops followed by `copies` randomly shifted copies of each (reproducible by seed)."""
    rng = np.random.default_rng(seed)
    return list(crops) + [augment(c, rng) for _ in range(copies) for c in crops]
