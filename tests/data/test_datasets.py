"""Dataset layouts, identities and cameras as the protocols define them, and bad inputs."""

import cv2
import numpy as np
import pytest

from reid_trt.core.errors import ReidTrtError
from reid_trt.data.datasets import (
    detect_kind,
    load_dataset,
    read_samples,
    stratified_sample,
)


def write(path, value=100):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((32, 16, 3), value, np.uint8))


def test_market1501_layout_junk_and_distractors(tmp_path):
    root = tmp_path / "Market-1501-v15.09.15"  # found one level down
    for name in ("0002_c1s1_000451_03.jpg", "0002_c2s1_000301_01.jpg", "0007_c3s3_077419_03.jpg"):
        write(root / "bounding_box_train" / name)
    write(root / "query" / "0003_c1s1_000051_00.jpg")
    for name in ("0003_c2s1_000101_00.jpg", "-1_c1s1_000401_03.jpg", "0000_c6s1_000001_02.jpg"):
        write(root / "bounding_box_test" / name)
    (root / "bounding_box_test" / "Thumbs.db").write_bytes(b"x")  # not an image: ignored
    d = load_dataset(tmp_path, "market1501")
    assert [(s.pid, s.camid) for s in d.train] == [(2, 0), (2, 1), (7, 2)]
    assert [(s.pid, s.camid) for s in d.query] == [(3, 0)]
    assert sorted(s.pid for s in d.gallery) == [-1, 0, 3]
    assert d.has_protocol and detect_kind(tmp_path) == "market1501"


def test_dukemtmc_and_cuhk03_names(tmp_path):
    write(tmp_path / "duke" / "bounding_box_train" / "0001_c2_f0046182.jpg")
    assert [(s.pid, s.camid) for s in load_dataset(tmp_path / "duke", "dukemtmc").train] == [(1, 1)]
    write(tmp_path / "cuhk" / "detected" / "bounding_box_train" / "0012_c1_3.png")
    write(tmp_path / "cuhk" / "labeled" / "bounding_box_train" / "0099_c2_1.png")
    d = load_dataset(tmp_path / "cuhk", "auto")
    assert d.kind == "cuhk03" and [(s.pid, s.camid) for s in d.train] == [(12, 0)]  # detected


@pytest.mark.parametrize("version,train,test", [("v1", "train", "test"),
                                                ("v2", "mask_train_v2", "mask_test_v2")])
def test_msmt17_lists(tmp_path, version, train, test):
    name = "0000_000_01_0303morning_0015_0.jpg"
    write(tmp_path / train / "0000" / name)
    write(tmp_path / test / "0005" / "0005_001_07_0303noon_0020_1.jpg")
    (tmp_path / "list_train.txt").write_text(f"0000/{name} 0\n")
    (tmp_path / "list_val.txt").write_text("")
    (tmp_path / "list_query.txt").write_text("0005/0005_001_07_0303noon_0020_1.jpg 5\n")
    (tmp_path / "list_gallery.txt").write_text("")
    d = load_dataset(tmp_path)
    assert d.kind == "msmt17"
    assert [(s.pid, s.camid, s.path.parent.parent.name) for s in d.train] == [(0, 0, train)]
    assert [(s.pid, s.camid) for s in d.query] == [(5, 6)]


def test_mot17_boxes(shared_data):
    d = load_dataset(shared_data / "reid" / "mot17-mini")
    assert d.kind == "mot17" and len(d.train) > 200
    seqs = {s.pid // 100_000 for s in d.train}
    assert seqs == {0, 1} and {s.camid for s in d.train} == {0, 1}
    crops, kept, skipped = read_samples(d.train[:20])
    assert skipped == 0 and all(c.shape[0] >= 32 for c in crops)


def test_shuffled_boxes_decode_each_frame_once(shared_data, monkeypatch):
    """A sampled MOT set draws boxes from its frames in any order: each frame is still decoded
    once, and every crop comes back in the samples' order, equal to its box in the frame."""
    from reid_trt.core.opencv import read_image
    from reid_trt.data import datasets
    from reid_trt.data.mot import crop_box

    d = load_dataset(shared_data / "reid" / "mot17-mini")
    shuffled = [d.train[i] for i in np.random.default_rng(0).permutation(len(d.train))[:120]]
    decoded = []
    monkeypatch.setattr(datasets, "read_image", lambda p: decoded.append(p) or read_image(p))
    crops, kept, skipped = read_samples(shuffled)
    frames = {s.path for s in shuffled}
    assert sorted(decoded) == sorted(frames) and len(frames) > 8  # once each, both sequences
    assert skipped == 0 and kept == shuffled
    for s, crop in list(zip(kept, crops, strict=True))[::17]:
        assert np.array_equal(crop, crop_box(read_image(s.path), s.box))


def test_folder_ids_from_names_or_subfolders(tmp_path, shared_data):
    d = load_dataset(shared_data / "reid" / "market1501")
    assert d.kind == "folder" and sorted({s.pid for s in d.train})[:2] == [1, 7]
    write(tmp_path / "17" / "a.jpg")
    write(tmp_path / "b.png")
    d = load_dataset(tmp_path, "folder")
    assert sorted(s.pid for s in d.train) == [-1, 17]


def test_unreadable_images_are_skipped_and_counted(tmp_path):
    write(tmp_path / "good.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    d = load_dataset(tmp_path, "folder")
    crops, kept, skipped = read_samples(d.train)
    assert (len(crops), skipped, kept[0].path.name) == (1, 1, "good.jpg")


def test_stratified_sample_spreads_identities():
    from reid_trt.data.datasets import Sample

    samples = [Sample(f"{pid}_{i}.jpg", pid, i % 2) for pid in range(10) for i in range(20)]
    picked = stratified_sample(samples, 20, seed=3)
    assert len({s.pid for s in picked}) == 10 and len({(s.pid, s.camid) for s in picked}) == 20
    assert picked == stratified_sample(samples, 20, seed=3)
    with pytest.raises(ReidTrtError, match="size=201: larger than the set \\(200"):
        stratified_sample(samples, 201)


@pytest.mark.parametrize("setup,kind,message", [
    (lambda p: None, "folder", "no images"),
    (lambda p: (p / "notes.txt").write_text("x"), "folder", "no images"),
    (lambda p: write(p / "a.jpg"), "market1501",
     "^dataset market1501: .* has no bounding_box_train.*, or dataset folder for"),
    (lambda p: write(p / "a.jpg"), "msmt17", "list_train.txt"),
    (lambda p: write(p / "a.jpg"), "viper", "^dataset viper: choose one of"),
    # Issue 30: MOT trees say what is missing, not "no images".
    (lambda p: write(p / "MOT17-02" / "img1" / "000001.jpg"), "auto",
     "MOT17-02: frames in img1/ but no gt/gt.txt beside them"),
    (lambda p: (write(p / "S" / "img1" / "frame_1.jpg"), (p / "S" / "gt").mkdir(),
                (p / "S" / "gt" / "gt.txt").write_text("1,1,0,0,10,40,1,1,1\n")), "auto",
     r"S/img1: no frames named by their number .* found frame_1\.jpg"),
])
def test_bad_layouts(tmp_path, setup, kind, message):
    setup(tmp_path)
    with pytest.raises(ReidTrtError, match=message):
        load_dataset(tmp_path, kind)


def test_missing_directory(tmp_path):
    with pytest.raises(ReidTrtError, match="no such directory"):
        load_dataset(tmp_path / "nope")
