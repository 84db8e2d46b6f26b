"""The crops calibration works on: its options (`CalibrationConfig`), and the sets they pick from
a dataset (`load_sets`): the crops to calibrate on and the crops to judge by, split as
protocol.py says; sets with too little variation are refused (`refuse_degenerate`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reid_trt.calibration import protocol
from reid_trt.calibration.quantize import Budget
from reid_trt.core.defaults import MIN_CROP_HW
from reid_trt.core.errors import ReidTrtError, opt
from reid_trt.core.options import (
    CalibrationMethod,
    ConfigError,
    Precision,
    bounded,
    coerce_choices,
    described,
)
from reid_trt.data.datasets import (
    KINDS,
    DatasetOptions,
    ReidDataset,
    Sample,
    load_dataset,
    read_samples,
    stratified_sample,
)
from reid_trt.data.retrieval import SPLIT_PROTOCOL, RetrievalSplit, retrieval_split

DEFAULT_SIZE = 256
MAX_SET = 100_000  # images held decoded in memory
# A calibration set is refused when over FLAT_SHARE of its images have a pixel spread (standard
# deviation, 0-255) under FLAT_STD, or it has fewer than MIN_DISTINCT different images. Real
# person crops: spread 15 to 78 (the 257 MOT17 and re-ID crops here); a blank frame: 0.
FLAT_STD, FLAT_SHARE, MIN_DISTINCT = 6.0, 0.1, 8


@dataclass(frozen=True)
class CalibrationConfig:
    """Options of `reid-export calibrate`, checked on construction.

    size None: 256 images, or all of a smaller set. augment: randomly shifted copies added per
    calibration crop (data/shifts.py; 0 turns augmentation off). equalize: cross-layer
    equalisation before the clipping methods (mse, percentile; auto tries it)."""

    dataset: str = described("auto", "auto|market1501|dukemtmc|msmt17|cuhk03|mot17|folder.")
    size: int | None = described(None, "Calibration images, stratified over identities and "
                                 "cameras [256, or all of a smaller set].")
    method: CalibrationMethod = described(
        CalibrationMethod.AUTO, "auto: the method that meets the budget with the fewest float "
        "layers.")
    seed: int = 0
    eval_size: int = 96
    augment: int = described(1, "Randomly shifted copies added per calibration image "
                             "(brightness, contrast, gamma, blur, ...; 0: none).")
    equalize: bool = described(True, "Cross-layer equalisation before INT8 (with mse/percentile "
                               "ranges).")
    bias_correction: bool = True
    unquantized: Precision = described(
        Precision.FP16, "The engine's precision for the layers left unquantized; the .onnx "
        "keeps them fp32 (and records this for reid-export trt).")
    budget: Budget = field(default_factory=Budget)
    eval_data: Path | None = described(
        None, "A labelled cross-camera set to judge INT8 by instead of the calibration data's "
        "unused crops: query/ and bounding_box_test/, or one folder of Market-named crops from two "
        "cameras; its mAP and Rank-1 change are reported, the mAP drop held to the budget.")

    def __post_init__(self):
        if self.dataset not in ("auto", *KINDS):
            raise ConfigError("dataset", self.dataset, f"choose auto or {', '.join(KINDS)}")
        if self.size is not None:
            bounded(self.size, "size", 1, MAX_SET)
        bounded(self.eval_size, "eval_size", 2, MAX_SET, "agreement compares neighbours")
        bounded(self.seed, "seed", 0)
        bounded(self.augment, "augment", 0, 8, "shifted copies per crop")
        coerce_choices(self, method=CalibrationMethod, unquantized=Precision)
        if self.unquantized == Precision.INT8:
            raise ConfigError("unquantized", "int8", "choose fp16 or fp32")
        if not 0 <= self.budget.max_map_drop <= 100:
            raise ConfigError("max_map_drop", self.budget.max_map_drop, "mAP points, 0 to 100")


@dataclass
class CalibrationSets:
    """Crops to calibrate on and to judge by, and where they came from."""

    dataset: ReidDataset
    split: protocol.Split
    calib_crops: list[np.ndarray]
    calib_samples: list[Sample]
    skipped: int
    judged_crops: list[np.ndarray]
    judged_samples: list[Sample]
    judged_skipped: int
    unseen: bool  # no judged crop was used for calibration
    n_query: int | None  # labelled: the first n_query judged samples are queries
    notes: list[str] = field(default_factory=list)
    evaluation: str | None = None  # labelled: the set judged on and how its queries meet the gallery


def sample_id(s: Sample) -> str:
    return f"{s.path}{'' if s.box is None else s.box}"


def _labelled_split(queries: list[Sample], gallery: list[Sample], size: int, seed: int):
    """Query and gallery samples (the test split, never calibrated on) for mAP."""
    query = stratified_sample(queries, min(len(queries), max(size // 4, 1)), seed)
    pids = {q.pid for q in query}
    matches = [g for g in gallery if g.pid in pids]
    others = [g for g in gallery if g.pid not in pids]
    rest = max(size - len(query) - len(matches), 0)
    return query, query + matches + stratified_sample(others, min(rest, len(others)), seed)


def load_sets(calib_data: Path | str, config: CalibrationConfig) -> CalibrationSets:
    """Calibration crops (stratified over identities and cameras) and the crops to judge by,
    split as protocol.py says. Images under MIN_CROP_HW are refused: they calibrate ranges no
    real crop has."""
    dataset = load_dataset(calib_data, config.dataset)
    if not dataset.train:
        raise ReidTrtError(f"{opt('calib_data')} {calib_data}: no training images (a "
                           f"{dataset.kind} set calibrates on bounding_box_train/; query and "
                           "gallery only judge); pass the set's root with its training split, or "
                           "a folder of crops")
    evaluation = None
    if config.eval_data is not None:
        where = f"{opt('eval_data')} {config.eval_data}"
        evaluation = retrieval_split(load_dataset(config.eval_data, "auto", DatasetOptions(
            opt("eval_data"), opt("eval_data"), folder_ok=False)), where)
    elif dataset.has_protocol:
        evaluation = RetrievalSplit(dataset.query, dataset.gallery, SPLIT_PROTOCOL)
    labelled = evaluation is not None
    split = protocol.Split(list(dataset.train), []) if labelled else \
        protocol.camera_split(dataset, config.seed)
    notes = list(split.warnings)
    pool = split.pool
    if config.size is not None and config.size > len(pool):
        where = "" if split.single_camera else " on the cameras kept for calibration"
        raise ConfigError("size", config.size, f"larger than the set ({len(pool)} images{where});"
                          f" pass {len(pool)} or less, or leave the default")
    size = config.size or min(DEFAULT_SIZE, len(pool))
    if config.size is None and size < DEFAULT_SIZE:
        notes.append(f"the set has {size} images to calibrate on, fewer than the default "
                     f"{DEFAULT_SIZE}: all of them are used")
    sampled = stratified_sample(pool, size, config.seed)
    crops, samples, skipped = read_samples(sampled, MIN_CROP_HW)
    if not crops:
        raise ReidTrtError(f"{opt('calib_data')} {calib_data}: none of the {len(sampled)} sampled images "
                           f"could be read at {MIN_CROP_HW[0]}x{MIN_CROP_HW[1]} px or more "
                           "(unreadable, damaged or cut-short files are skipped); pass a folder "
                           "of person crops")
    refuse_degenerate(crops, calib_data)
    n_query = None
    if labelled:
        queries, judged = _labelled_split(evaluation.query, evaluation.gallery, config.eval_size,
                                          config.seed)
        n_query, unseen = len(queries), not set(judged) & set(samples)
    else:
        judged, unseen = protocol.judged_samples(split, samples, config.eval_size, config.seed,
                                                 sample_id)
        if not unseen:
            notes.append("every image was used for calibration: only the shifted copies are "
                         "unseen by it")
    judged_crops, judged_samples, judged_skipped = read_samples(judged, MIN_CROP_HW)
    if len(judged_crops) < 2:
        raise ReidTrtError(f"{opt('calib_data')} {calib_data}: fewer than 2 readable images to judge "
                           "INT8 by; pass a larger set")
    if n_query is not None:
        n_query = sum(1 for s in judged_samples[:n_query] if s in set(judged[:n_query]))
    if labelled and not unseen:
        notes.append("some judged images were also calibrated on: pass an evaluation set apart "
                     "from the calibration data")
    described_as = None
    if evaluation is not None:
        root = config.eval_data if config.eval_data is not None else dataset.root
        described_as = f"{root}: {evaluation.protocol}"
    return CalibrationSets(dataset, split, crops, samples, skipped, judged_crops,
                           judged_samples, judged_skipped, unseen, n_query, notes, described_as)


def refuse_degenerate(crops: list[np.ndarray], calib_data) -> None:
    """Calibration crops must look like a camera's: ranges fitted to blank or repeated images
    clip real crops (all-black crops calibrated with 0.997 claimed and gave 0.958 mean / 0.856
    min cosine on real ones), and judging on such crops proves nothing."""
    grey = [c.mean(axis=2) if c.ndim == 3 else c for c in crops]
    flat = sum(float(g.std()) < FLAT_STD for g in grey)
    if flat > FLAT_SHARE * len(crops):
        raise ReidTrtError(
            f"{opt('calib_data')} {calib_data}: {flat} of the {len(crops)} calibration images are blank "
            f"or nearly so (pixel spread under {FLAT_STD:g} of 255), so INT8 ranges would not fit "
            "real crops; pass person crops from your cameras")
    from reid_trt.core.opencv import cv2

    thumbs = {(cv2.resize(g.astype(np.float32), (8, 16), interpolation=cv2.INTER_AREA) // 8)
              .astype(np.uint8).tobytes() for g in grey}
    if len(thumbs) < MIN_DISTINCT:
        raise ReidTrtError(
            f"{opt('calib_data')} {calib_data}: only {len(thumbs)} distinct images among "
            f"{len(crops)} (at least {MIN_DISTINCT} are needed to calibrate and judge INT8); "
            "pass a folder with more, different person crops")


