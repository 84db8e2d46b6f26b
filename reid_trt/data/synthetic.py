"""Procedural person-like crops: realistic image statistics without shipping any dataset.

Used wherever an input is needed and the user gave none (export verification, the demo, weight
generation). A uniform random tensor is a poor probe: it has no edges, no smooth regions and the
wrong colour statistics, so precision problems that real crops trigger stay hidden.
"""

from __future__ import annotations

import numpy as np

from reid_trt.core.opencv import cv2


def _colour(rng: np.random.Generator, lo: int = 20, hi: int = 235) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(lo, hi, size=3))


def person_like_crop(rng: np.random.Generator, height: int = 256, width: int = 128) -> np.ndarray:
    """One HxWx3 uint8 BGR crop: textured background and a clothed figure of random pose."""
    # Background: vertical gradient between two colours, with low-frequency texture.
    top, bottom = np.array(_colour(rng)), np.array(_colour(rng))
    t = np.linspace(0.0, 1.0, height)[:, None, None]
    img = (top * (1 - t) + bottom * t) * np.ones((1, width, 1))
    texture = cv2.resize(rng.normal(0, 18, (height // 16, width // 16, 3)), (width, height))
    img = np.clip(img + texture, 0, 255).astype(np.uint8)

    # Figure, scaled and shifted as detector boxes are.
    s = rng.uniform(0.8, 1.0)
    cx = int(width * rng.uniform(0.4, 0.6))
    y0 = int(height * rng.uniform(0.02, 0.1))
    h = height * s
    skin, shirt, pants, shoes = _colour(rng, 90, 230), _colour(rng), _colour(rng), _colour(rng, 0, 80)
    head_r = int(h * 0.065)
    head_c = (cx, y0 + head_r)
    shoulder_y = y0 + 2 * head_r + int(h * 0.02)
    hip_y = shoulder_y + int(h * 0.33)
    foot_y = min(height - 2, y0 + int(h * 0.97))
    half_w = int(width * s * rng.uniform(0.18, 0.26))
    leg_w = max(3, int(half_w * 0.8))
    stride = int(half_w * rng.uniform(-0.6, 0.6))

    cv2.rectangle(img, (cx - half_w, shoulder_y), (cx + half_w, hip_y), shirt, -1)
    for side in (-1, 1):  # arms
        ax = cx + side * (half_w + leg_w // 3)
        cv2.line(img, (ax, shoulder_y + 4), (ax + side * int(rng.integers(0, 10)), hip_y + 10),
                 shirt, max(3, leg_w // 2))
    for side, swing in ((-1, stride), (1, -stride)):  # legs and shoes
        top_pt = (cx + side * half_w // 2, hip_y)
        foot = (cx + side * half_w // 2 + swing, foot_y - 6)
        cv2.line(img, top_pt, foot, pants, leg_w)
        cv2.ellipse(img, foot, (leg_w, 4), 0, 0, 360, shoes, -1)
    cv2.circle(img, head_c, head_r, skin, -1)
    cv2.ellipse(img, (head_c[0], head_c[1] - head_r // 2), (head_r, head_r // 2), 0, 180, 360,
                _colour(rng, 0, 120), -1)

    # Camera: slight blur and sensor noise.
    img = cv2.GaussianBlur(img, (3, 3), rng.uniform(0.3, 1.0))
    noise = rng.normal(0, rng.uniform(2, 6), img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def person_like_crops(n: int, height: int = 256, width: int = 128, seed: int = 0) -> list[np.ndarray]:
    """`n` reproducible person-like BGR crops of size `height` x `width`."""
    rng = np.random.default_rng(seed)
    return [person_like_crop(rng, height, width) for _ in range(n)]
