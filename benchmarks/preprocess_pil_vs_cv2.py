"""Which OpenCV resize matches torchreid's PIL bilinear preprocessing best?

Embeds real crops (Market-1501, and MOT17 ground-truth boxes) with the real osnet_x0_25 weights,
once through PIL (torchreid's path) and once through each OpenCV choice, and prints the cosine of
the embeddings. Run: .venv/bin/python benchmarks/preprocess_pil_vs_cv2.py  (needs pillow)
"""

import os
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from reid_trt.core.preprocess import normalize_nhwc_bgr, resize_bgr
from reid_trt.data.folder import read_crops
from reid_trt.data.mot import mot_crops
from reid_trt.models.checkpoint import load_model

DATA = Path(os.environ.get("REID_TRT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SIZE = (256, 128)


def pil_resize(crops):
    return np.stack([np.asarray(Image.fromarray(c[..., ::-1]).resize(SIZE[::-1], Image.BILINEAR))
                     [..., ::-1] for c in crops])


def cv2_resize(crops, interp):
    return np.stack([cv2.resize(c, SIZE[::-1], interpolation=interp) for c in crops])


def main() -> None:
    model = load_model(DATA / "weights" / "osnet_x0_25_msmt17.pth").model

    def embed(batch):
        with torch.no_grad():
            v = model(torch.from_numpy(normalize_nhwc_bgr(batch)))
        return torch.nn.functional.normalize(v, dim=1).numpy()

    mot = []
    for seq in ("MOT17-02-FRCNN", "MOT17-04-FRCNN"):
        mot += mot_crops(DATA / "reid" / "mot17-mini" / "train" / seq, max_frames=2)[0]
    sets = {"market1501 (upscaled)": read_crops(DATA / "reid" / "market1501"),
            "mot17 boxes": mot}
    print(f"{'crops':24s} {'resize':24s} {'n':>4s} {'mean cos':>9s} {'min cos':>9s}")
    for name, crops in sets.items():
        ref = embed(pil_resize(crops))
        for label, batch in (("cv2 INTER_LINEAR", cv2_resize(crops, cv2.INTER_LINEAR)),
                             ("cv2 INTER_AREA", cv2_resize(crops, cv2.INTER_AREA)),
                             ("reid-trt (LINEAR/AREA)", resize_bgr(crops, SIZE))):
            cos = (embed(batch) * ref).sum(axis=1)
            print(f"{name:24s} {label:24s} {len(crops):4d} {cos.mean():9.5f} {cos.min():9.5f}")


if __name__ == "__main__":
    sys.exit(main())
