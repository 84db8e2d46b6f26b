"""The crops a benchmark embeds for parity and timing."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reid_trt.bench.results import CropSizes
from reid_trt.bench.subjects import BenchConfig


def crop_sizes(crops: list[np.ndarray]) -> CropSizes:
    shapes = np.array([c.shape[:2] for c in crops], dtype=np.int64).reshape(-1, 2)

    def spread(values: np.ndarray) -> tuple[int, int, int]:
        return (int(values.min()), int(np.median(values)), int(values.max())) if len(values) \
            else (0, 0, 0)

    return CropSizes(len(crops), spread(shapes[:, 0]), spread(shapes[:, 1]))


def detector_like_crops(crops: list[np.ndarray], seed: int = 0) -> list[np.ndarray]:
    """Generated crops rescaled to the sizes a person detector returns (60-400 px tall), so the
    end-to-end timing includes real resizing work."""
    from reid_trt.core.opencv import cv2

    rng = np.random.default_rng(seed)
    out = []
    for crop in crops:
        height = int(rng.integers(60, 400))
        width = max(int(height * rng.uniform(0.3, 0.55)), 8)
        out.append(cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR))
    return out


def bench_crops(config: BenchConfig) -> tuple[list[np.ndarray], str]:
    """Crops for parity and timing: a folder of crops, the ground-truth boxes of a MOTChallenge
    tree (detector-sized crops), or generated ones."""
    if config.crops_dir is not None:
        from reid_trt.data.datasets import (
            detect_kind,
            load_dataset,
            read_samples,
            stratified_sample,
        )
        from reid_trt.data.folder import read_crops

        root = Path(config.crops_dir)
        if root.is_dir() and detect_kind(root) == "mot17":
            # Spread over tracks and sequences (stratified, fixed seed), as calibration does.
            boxes = load_dataset(root, "mot17").train
            crops, _, _ = read_samples(stratified_sample(boxes, min(config.num_crops,
                                                                    len(boxes))))
            return crops, f"{len(crops)} ground-truth boxes from {root}"
        crops = read_crops(root, limit=config.num_crops)
        return crops, f"{len(crops)} crops from {root}"
    from reid_trt.data.synthetic import person_like_crops

    crops = detector_like_crops(person_like_crops(config.num_crops))
    return crops, f"{len(crops)} generated person-like crops, 60-400 px tall"
