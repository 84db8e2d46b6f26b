"""How INT8 is judged: on crops calibration never saw, from cameras it never saw, and on
shifted copies of them.

Re-identification is cross-camera by definition, and INT8 ranges fitted to one camera fail on
another (on main before this protocol: 0.996 mean cosine judged on the calibration camera, 0.84
on the next one). So:
- a set with two or more cameras (or sequences) is split leave-camera-out: about a quarter of
  its cameras (at least one, chosen by the seed) are held out of calibration and judged on;
- a set with one camera cannot show that: calibration says so loudly and is judged on that
  camera's crops it did not use;
- either way every judged crop also gets shifted copies (brightness, contrast, gamma, blur,
  low resolution, mirror image, JPEG: data/shifts.py), the ways cameras differ;
- figures come per domain (each held-out camera, each shift) and for the worst one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from reid_trt.data.datasets import ReidDataset, Sample, stratified_sample
from reid_trt.data.shifts import shifted_copies

SINGLE_CAMERA_WARNING = (
    "the calibration data has a single camera: INT8 is judged on that camera's unused crops and "
    "on shifted copies of them, which only approximate other cameras; calibrate on two or more "
    "cameras (or sequences) to judge on a camera calibration never saw")


@dataclass
class Split:
    """Which samples calibrate and which judge, and why."""

    pool: list[Sample]  # what calibration may sample from
    held_out_cameras: list[int]  # cameras judged on and never calibrated on
    judged: list[Sample] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def single_camera(self) -> bool:
        return not self.held_out_cameras


def camera_split(dataset: ReidDataset, seed: int) -> Split:
    """Leave-camera-out when the training split has two or more cameras."""
    cameras = sorted({s.camid for s in dataset.train})
    if len(cameras) < 2:
        return Split(list(dataset.train), [], warnings=[SINGLE_CAMERA_WARNING])
    rng = np.random.default_rng(seed)
    held = sorted(int(c) for c in rng.choice(cameras, max(1, len(cameras) // 4), replace=False))
    pool = [s for s in dataset.train if s.camid not in held]
    return Split(pool, held, [s for s in dataset.train if s.camid in held])


def judged_samples(split: Split, calibration: list[Sample], size: int, seed: int,
                   sample_id) -> tuple[list[Sample], bool]:
    """(the samples to judge on, whether they are all unseen by calibration)."""
    if not split.single_camera:
        return stratified_sample(split.judged, min(size, len(split.judged)), seed), True
    used = {sample_id(s) for s in calibration}
    unused = [s for s in split.pool if sample_id(s) not in used]
    if len(unused) >= 2:
        return stratified_sample(unused, min(size, len(unused)), seed), True
    # Everything was used for calibration: only the shifted copies are new.
    return stratified_sample(calibration, min(size, len(calibration)), seed), False


def domains(crops: list[np.ndarray], samples: list[Sample], split: Split,
            shifts: bool = True) -> dict[str, list[int]]:
    """Domain name -> indices into the judged set (crops plus their shifted copies, appended
    in the order of `shifted_copies`)."""
    n = len(crops)
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        key = f"camera {s.camid + 1} (unseen)" if not split.single_camera else "same camera"
        groups.setdefault(key, []).append(i)
    if shifts:
        for k, kind in enumerate(shifted_copies([], None)):
            groups[kind] = list(range(n * (k + 1), n * (k + 2)))
    return groups


def with_shifts(crops: list[np.ndarray]) -> list[np.ndarray]:
    """The crops followed by each kind of shifted copy of all of them."""
    copies = shifted_copies(crops)
    return list(crops) + [c for kind in copies for c in copies[kind]]


@dataclass(frozen=True)
class DomainFigures:
    """INT8 against FP32 on one domain's crops (a held-out camera, a shift)."""

    crops: int
    mean_cosine: float
    min_cosine: float


def domain_figures(cosines: np.ndarray, groups: dict[str, list[int]]) -> dict[str, DomainFigures]:
    return {name: DomainFigures(len(idx), float(cosines[idx].mean()), float(cosines[idx].min()))
            for name, idx in groups.items() if idx}


def worst_domain(figures: dict[str, DomainFigures]) -> tuple[str, float]:
    """The domain with the lowest mean cosine, and that mean ("" and 1.0 where none is known)."""
    if not figures:
        return "", 1.0
    name = min(figures, key=lambda k: figures[k].mean_cosine)
    return name, figures[name].mean_cosine
