"""Resizing equal to torchreid's (PIL bilinear, antialiased per shrinking axis) on real crops of
every aspect: pixels within one grey level of Pillow, embeddings at min cosine >= 0.9995 to
torchreid's own pipeline (PIL resize, then the network in PyTorch); the paths that crop from
frames agree with the host path."""

import cv2
import numpy as np
import pytest
from PIL import Image

from reid_trt import Embedder
from reid_trt.core.preprocess import resize_bgr
from reid_trt.data.folder import read_crops
from reid_trt.data.mot import mot_crops
from reid_trt.data.shifts import shifted_copies
from reid_trt.integrations.boxmot import BoxMOTReID
from reid_trt.models.checkpoint import load_model
from tests.conftest import pil_resize, torchreid_embed

SIZE = (256, 128)


def rescaled(crops, height):
    """Real crops at another height, aspect kept (Pillow's antialiasing filter, so no OpenCV
    artefact is built in)."""
    out = []
    for c in crops:
        width = max(round(c.shape[1] * height / c.shape[0]), 1)
        out.append(np.asarray(Image.fromarray(c).resize((width, height), Image.BILINEAR)))
    return out


@pytest.fixture(scope="module")
def aspects(shared_data):
    """Aspect class -> real crops: detector boxes of two MOT17 sequences (26-400 px tall), the
    CUHK03 detector crops (190-330 x 60-110), Market-1501's 128x64, the same people at 20 px and
    1000 px tall, wide crops (a box wider than the input), and held-out brightness/blur copies."""
    reid = shared_data / "reid"
    mot = []
    for seq in ("MOT17-02-FRCNN", "MOT17-04-FRCNN"):
        mot += mot_crops(reid / "mot17-mini" / "train" / seq, max_frames=1)[0]
    cuhk = read_crops(reid / "cuhk03-detected")[::8]
    people = cuhk[:10] + read_crops(reid / "market1501")
    wide = [cv2.resize(c, (c.shape[1] * 3, c.shape[0] // 2), interpolation=cv2.INTER_AREA)
            for c in cuhk[:8]]
    shifted = shifted_copies(cuhk[:12], ("brighter", "darker", "blur"))
    return {"mot17 boxes": mot, "cuhk03": cuhk, "market1501": read_crops(reid / "market1501"),
            "20 px tall": rescaled(people, 20), "1000 px tall": rescaled(people, 1000),
            "wide": wide, **{f"cuhk03 {k}": v for k, v in shifted.items()}}


def test_pixels_within_one_level_of_pillow(aspects):
    for name, crops in aspects.items():
        got = resize_bgr(crops, SIZE).astype(np.int16)
        diff = np.abs(got - pil_resize(crops))
        # Float sums against Pillow's fixed point; OpenCV's 11-bit weights where an axis grows.
        assert diff.max() <= 1 and diff.mean() < 0.35, name


def test_views_and_odd_sizes(aspects):
    """Crops cut from a frame (non-contiguous views), 1-px strips and exact-size crops."""
    frame = np.concatenate([c[:190] for c in aspects["cuhk03"][:4]], axis=1)
    views = [frame[7:180, 3:150], frame[:, 100:101], frame[50:51, :], frame[:, :]]
    for crop in views + [np.zeros((256, 128, 3), np.uint8), np.zeros((1, 1, 3), np.uint8)]:
        got = resize_bgr([crop], SIZE)[0].astype(np.int16)
        assert np.abs(got - pil_resize([crop])[0]).max() <= 1, crop.shape


@pytest.fixture(scope="module")
def torchreid_model(real_weights):
    return load_model(real_weights["msmt17"]).model.eval()


def test_embeddings_equal_torchreid_on_every_aspect(aspects, torchreid_model, graphs):
    with Embedder(graphs["osnet_x0_25", "fp32"], device="cpu") as embedder:
        for name, crops in aspects.items():
            cos = (embedder.embed(crops) * torchreid_embed(torchreid_model, crops)).sum(axis=1)
            print(f"{name}: {len(crops)} crops, min cosine {cos.min():.6f}")
            assert cos.min() >= 0.9995, name


def test_frame_paths_agree_with_the_host_path(graphs, shared_data):
    """embed_boxes and BoxMOTReID crop from the frame and resize as the host path does."""
    sequence = shared_data / "reid" / "mot17-mini" / "train" / "MOT17-04-FRCNN"
    frame = cv2.imread(str(sorted((sequence / "img1").iterdir())[0]))
    gt = np.loadtxt(sequence / "gt" / "gt.txt", delimiter=",")
    rows = gt[(gt[:, 0] == 1) & (gt[:, 6] == 1) & (gt[:, 7] == 1)][:20]
    boxes = np.c_[rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]].round()
    boxes[:, :2] = np.maximum(boxes[:, :2], 0)
    crops = [frame[int(y0):int(y1), int(x0):int(x1)] for x0, y0, x1, y1 in boxes]
    with Embedder(graphs["osnet_x0_25", "fp32"], device="cpu") as embedder:
        host = embedder.embed(crops)
        by_box = embedder.embed_boxes(frame, boxes)
        boxmot = BoxMOTReID(embedder).get_features(boxes, frame)
    for got in (by_box, boxmot):
        assert (got * host).sum(axis=1).min() >= 0.9999
