"""Crops from a folder of image files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reid_trt.core.errors import ReidTrtError
from reid_trt.core.opencv import read_image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def image_files(folder: Path | str) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ReidTrtError(f"{folder}: no such directory; pass a folder of person crops")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def read_crops(folder: Path | str, limit: int | None = None) -> list[np.ndarray]:
    """BGR crops from `folder` (recursively, sorted by path); unreadable files are skipped."""
    crops = []
    for path in image_files(folder):
        img = read_image(path)
        if img is not None:
            crops.append(img)
        if limit is not None and len(crops) >= limit:
            break
    if not crops:
        raise ReidTrtError(f"{folder}: no readable images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return crops
