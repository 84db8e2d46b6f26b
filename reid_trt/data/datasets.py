"""Readers for re-ID datasets: Market-1501, DukeMTMC-reID, MSMT17 (v1/v2), CUHK03-NP, MOT17
ground-truth boxes, and plain folders of crops.

Each gives samples with person id and camera as the standard protocols define them: pid -1 is
junk (ignored in galleries), pid 0 a distractor (kept as a negative). Pixels are read later, so a
listing is cheap and an unreadable file is skipped and counted, never a crash.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reid_trt.core.errors import ReidTrtError, opt
from reid_trt.core.opencv import read_image
from reid_trt.core.options import ConfigError
from reid_trt.data import mot
from reid_trt.data.folder import IMAGE_SUFFIXES, image_files

KINDS = ("market1501", "dukemtmc", "msmt17", "cuhk03", "mot17", "folder")
# Market-1501 "0002_c1s1_000451_03.jpg", Duke "0001_c2_f0046182.jpg", CUHK03-NP "0001_c1_1.png"
MARKET_NAME = re.compile(r"^(-?\d+)_c(\d+)")
MSMT_NAME = re.compile(r"^(\d+)_(\d+)_(\d+)_")  # 0000_000_01_0303morning_0015_0.jpg


@dataclass(frozen=True)
class Sample:
    path: Path
    pid: int
    camid: int
    box: tuple[int, int, int, int] | None = None  # x0, y0, x1, y1 within a frame (MOT)


@dataclass
class ReidDataset:
    kind: str
    root: Path
    train: list[Sample] = field(default_factory=list)
    query: list[Sample] = field(default_factory=list)
    gallery: list[Sample] = field(default_factory=list)

    @property
    def has_protocol(self) -> bool:
        return bool(self.query and self.gallery)


@dataclass(frozen=True)
class DatasetOptions:
    """The options errors about a dataset name, by field (they differ per command)."""

    data: str = opt("calib_data")
    kind: str = opt("dataset")
    folder_ok: bool = True  # is a plain folder of crops an alternative for this command?


class _LayoutMismatch(Exception):
    """A folder lacks what its dataset kind needs; load_dataset words it for the caller."""

    def __init__(self, wanted: str):
        self.wanted = wanted


def _layout_error(options: DatasetOptions, kind: str, root: Path, wanted: str) -> ReidTrtError:
    found = sorted(p.name for p in root.iterdir())[:8] if root.is_dir() else []
    alternative = f", or {options.kind} folder for a plain folder of crops" if options.folder_ok else ""
    return ReidTrtError(f"{options.kind} {kind}: {root} has no {wanted} (found: "
                        f"{', '.join(found) or 'nothing'}); pass the dataset's root folder"
                        + alternative)


MARKET_SPLITS = ("bounding_box_train", "query", "bounding_box_test")


def _market_names(folder: Path) -> list[Sample]:
    """The images of `folder` whose names carry identity and camera (Market-1501's convention)."""
    samples = []
    for path in image_files(folder):
        match = MARKET_NAME.match(path.name)
        if match:
            samples.append(Sample(path, int(match.group(1)), int(match.group(2)) - 1))
    return samples


def _market_like(root: Path, kind: str) -> ReidDataset:
    """Market-1501's layout (any of its three splits: calibration needs only the training one,
    retrieval only query and gallery), in the root or a subfolder of it; else a flat folder of
    Market-named crops (as the shared CUHK03 set is renamed): one split, all of it."""
    def has_splits(folder: Path) -> bool:
        return any((folder / name).is_dir() for name in MARKET_SPLITS)

    def split(name: str) -> list[Sample]:
        return _market_names(root / name) if (root / name).is_dir() else []

    if not has_splits(root):
        nested = [p for p in root.iterdir() if has_splits(p)] if root.is_dir() else []
        if kind == "cuhk03":
            nested = [root / s for s in ("detected", "labeled") if has_splits(root / s)] or nested
        if nested:
            root = nested[0]
        else:
            flat = _market_names(root)
            if not flat:
                raise _LayoutMismatch("bounding_box_train/, query/ or bounding_box_test/ (nor a "
                                      "subfolder with one, nor Market-named crops such as "
                                      "0001_c1s1_000001_00.jpg)")
            return ReidDataset(kind, root, train=flat)
    return ReidDataset(kind, root, split("bounding_box_train"), split("query"),
                       split("bounding_box_test"))


def _msmt17(root: Path) -> ReidDataset:
    folders = {"v1": ("train", "test"), "v2": ("mask_train_v2", "mask_test_v2")}
    version = next((v for v, (a, b) in folders.items()
                    if (root / a).is_dir() or (root / b).is_dir()), None)
    # retrieval needs only the test split: its two lists are enough
    listed_any = (root / "list_train.txt").is_file() or all(
        (root / f"list_{part}.txt").is_file() for part in ("query", "gallery"))
    if version is None or not listed_any:
        raise _LayoutMismatch("train/ or mask_train_v2/ with list_train.txt, or test/ with "
                              "list_query.txt and list_gallery.txt")
    train_dir, test_dir = (root / f for f in folders[version])

    def listed(list_name: str, folder: Path) -> list[Sample]:
        path = root / list_name
        if not path.is_file():  # query/gallery lists: only mAP needs them
            return []
        samples = []
        try:
            lines = path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise ReidTrtError(f"{path} cannot be read as an MSMT17 list ({e}); restore it from "
                               "the dataset") from None
        for number, line in enumerate(lines, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise ReidTrtError(f"{path}:{number} is not '<image path> <person id>' "
                                   f"({line[:60]!r}); restore the list from the dataset")
            match = MSMT_NAME.match(Path(parts[0]).name)
            cam = int(match.group(3)) - 1 if match else 0
            samples.append(Sample(folder / parts[0], int(parts[1]), cam))
        return samples

    train = listed("list_train.txt", train_dir)
    if (root / "list_val.txt").is_file():
        train += listed("list_val.txt", train_dir)
    return ReidDataset("msmt17", root, train, listed("list_query.txt", test_dir),
                       listed("list_gallery.txt", test_dir))


def _mot17(root: Path) -> ReidDataset:
    found = mot.sequences(root)
    if not found:
        bare = next((p.parent for p in sorted(root.rglob("img1")) if p.is_dir()), None)
        if bare is not None:
            raise ReidTrtError(f"{bare}: frames in img1/ but no gt/gt.txt beside them; the boxes "
                               "come from MOTChallenge's ground truth (gt/gt.txt of the train "
                               "split), or pass a folder of crops")
        raise _LayoutMismatch("sequences with gt/gt.txt")
    samples = []
    for cam, seq in enumerate(found):
        gt = mot.read_gt(seq)
        numbered = mot.frames(seq)
        if not numbered:
            names = sorted(p.name for p in (seq / "img1").glob("*"))[:3] if \
                (seq / "img1").is_dir() else []
            raise ReidTrtError(f"{seq / 'img1'}: no frames named by their number as gt.txt counts "
                               f"them (000001.jpg, ...); found {', '.join(names) or 'no img1/'}")
        for number, frame in numbered:
            for track, box in mot.pedestrian_boxes(gt, number):
                # Track ids are per sequence: offset them so identities stay distinct.
                samples.append(Sample(frame, cam * 100_000 + track, cam, box))
    return ReidDataset("mot17", root, train=samples)


def _folder(root: Path) -> ReidDataset:
    samples = []
    for path in image_files(root):
        match = MARKET_NAME.match(path.name)
        if match:  # Market-style names carry identity and camera
            samples.append(Sample(path, int(match.group(1)), int(match.group(2)) - 1))
        elif path.parent != root and path.parent.name.isdigit():  # <pid>/<image>
            samples.append(Sample(path, int(path.parent.name), 0))
        else:
            samples.append(Sample(path, -1, 0))
    return ReidDataset("folder", root, train=samples)


def detect_kind(root: Path) -> str:
    if (root / "list_train.txt").is_file() or (root / "list_query.txt").is_file():
        return "msmt17"
    if (root / "detected").is_dir() or (root / "labeled").is_dir():
        return "cuhk03"
    if any((folder / split).is_dir() for folder in [root, *(p for p in root.iterdir() if p.is_dir())]
           for split in MARKET_SPLITS):
        return "market1501"
    # One walk for either sign of a MOTChallenge tree: ground truth, or frames in img1/.
    if any((p.name == "gt.txt" and p.parent.name == "gt") or (p.name == "img1" and p.is_dir())
           for p in root.rglob("*")):
        return "mot17"
    return "folder"


def load_dataset(root: Path | str, kind: str = "auto",
                 options: DatasetOptions = DatasetOptions()) -> ReidDataset:
    """The samples of a dataset folder (`kind` 'auto' guesses from the layout); errors name
    `options`, the caller's command-line options."""
    root = Path(root)
    if not root.is_dir():
        raise ReidTrtError(f"{options.data} {root}: no such directory")
    if kind == "auto":
        kind = detect_kind(root)
    if kind not in KINDS:
        raise ReidTrtError(f"{options.kind} {kind}: choose one of {', '.join(KINDS)}")
    try:
        if kind in ("market1501", "dukemtmc", "cuhk03"):
            dataset = _market_like(root, kind)
        else:
            dataset = {"msmt17": _msmt17, "mot17": _mot17, "folder": _folder}[kind](root)
    except _LayoutMismatch as e:
        raise _layout_error(options, kind, root, e.wanted) from None
    if not (dataset.train or dataset.query or dataset.gallery):
        raise ReidTrtError(f"{options.data} {root}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) "
                           f"found for {options.kind} {kind}")
    return dataset


def stratified_sample(samples: list[Sample], size: int, seed: int = 0) -> list[Sample]:
    """`size` samples spread over identities and cameras: one per (pid, camera) in turn."""
    if size > len(samples):
        raise ConfigError("size", size, f"larger than the set ({len(samples)} images); pass "
                          f"{len(samples)} or less")
    rng = np.random.default_rng(seed)
    groups: dict[tuple[int, int], list[Sample]] = defaultdict(list)
    for s in samples:
        groups[(s.pid, s.camid)].append(s)
    queues = [list(np.asarray(g, dtype=object)[rng.permutation(len(g))]) for g in groups.values()]
    queues = [queues[i] for i in rng.permutation(len(queues))]
    picked: list[Sample] = []
    while len(picked) < size:
        for queue in queues:
            if queue and len(picked) < size:
                picked.append(queue.pop())
    return picked


def read_samples(samples: list[Sample], min_hw: tuple[int, int] = (1, 1)
                 ) -> tuple[list[np.ndarray], list[Sample], int]:
    """(crops, the samples they came from, how many were skipped: unreadable, or smaller than
    `min_hw`), in the samples' order. Each frame is decoded once, whatever the order: a sampled
    MOT set draws boxes from its frames at random (MOT17-04's 8 frames were decoded 259 times for
    one calibration, 2 s of its 74), and one frame is held at a time."""
    images: list[np.ndarray | None] = [None] * len(samples)
    boxes_of: dict[Path, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        if s.box is None:
            images[i] = read_image(s.path)
        else:
            boxes_of[s.path].append(i)
    for path, indices in boxes_of.items():
        frame = read_image(path)
        if frame is not None:
            for i in indices:
                images[i] = mot.crop_box(frame, samples[i].box)
    crops, kept = [], []
    for img, s in zip(images, samples, strict=True):
        if img is not None and img.shape[0] >= min_hw[0] and img.shape[1] >= min_hw[1]:
            crops.append(img)
            kept.append(s)
    return crops, kept, len(samples) - len(kept)
