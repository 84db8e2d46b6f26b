"""reid-trt's resize against torchreid's (PIL bilinear): agreement by aspect class, and the cost.

1. Embedding cosine to torchreid's pipeline (PIL resize, ToTensor, Normalize, the network in
   PyTorch) on real crops of every aspect, for the previous OpenCV rule (INTER_AREA when both
   axes shrink, else INTER_LINEAR) and for core/preprocess.resize_like_pil.
2. Time: resizing alone (OpenCV rule, resize_like_pil, Pillow itself) and Embedder end to end
   (ONNX Runtime, the real osnet_x0_25 FP32 graph, batch 32 of real CUHK03 and MOT17 crops), the
   two resizes interleaved in rounds in one process.
Run: .venv/bin/python benchmarks/preprocess_pil_vs_cv2.py [--out benchmarks/results/...txt]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from reid_trt import Embedder
from reid_trt.core import preprocess
from reid_trt.core.machine import machine_label
from reid_trt.core.preprocess import normalize_nhwc_bgr, resize_bgr
from reid_trt.data.folder import read_crops
from reid_trt.data.mot import mot_crops
from reid_trt.data.shifts import shifted_copies
from reid_trt.export.api import ExportConfig, export_onnx
from reid_trt.models.checkpoint import load_model

DATA = Path(os.environ.get("REID_TRT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SIZE = (256, 128)


def pil_resize(crops):
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(c[..., ::-1]))
                                .resize(SIZE[::-1], Image.BILINEAR))[..., ::-1] for c in crops])


def opencv_rule(crop, size, out):
    """The rule reid-trt used before: INTER_AREA when both axes shrink, else INTER_LINEAR."""
    shrinks = crop.shape[0] > size[0] and crop.shape[1] > size[1]
    cv2.resize(crop, size[::-1], dst=out,
               interpolation=cv2.INTER_AREA if shrinks else cv2.INTER_LINEAR)


def rescaled(crops, height):
    return [np.asarray(Image.fromarray(c).resize(
        (max(round(c.shape[1] * height / c.shape[0]), 1), height), Image.BILINEAR)) for c in crops]


def aspect_classes():
    reid = DATA / "reid"
    mot = []
    for seq in ("MOT17-02-FRCNN", "MOT17-04-FRCNN"):
        mot += mot_crops(reid / "mot17-mini" / "train" / seq, max_frames=2)[0]
    cuhk = read_crops(reid / "cuhk03-detected")
    market = read_crops(reid / "market1501")
    people = cuhk[::25] + market
    shifted = shifted_copies(cuhk[::10], ("brighter", "darker", "blur"))
    return {"mot17 boxes": mot, "cuhk03 detected": cuhk, "market1501 128x64": market,
            "20 px tall": rescaled(people, 20), "1000 px tall": rescaled(people, 1000),
            "wide (3:1)": [cv2.resize(c, (c.shape[1] * 3, c.shape[0] // 2),
                                      interpolation=cv2.INTER_AREA) for c in cuhk[::25]],
            **{f"cuhk03 {k}": v for k, v in shifted.items()}}


def median_ms(fn, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    lines = [f"machine: {machine_label()}; "
             f"command: .venv/bin/python benchmarks/preprocess_pil_vs_cv2.py", ""]
    weights = DATA / "weights" / "osnet_x0_25_msmt17.pth"
    model = load_model(weights).model.eval()

    def embed(batch):
        with torch.no_grad():
            v = model(torch.from_numpy(normalize_nhwc_bgr(batch)))
        return torch.nn.functional.normalize(v, dim=1).numpy()

    def with_rule(rule, crops):
        saved, preprocess.resize_like_pil = preprocess.resize_like_pil, rule
        try:
            return resize_bgr(crops, SIZE)
        finally:
            preprocess.resize_like_pil = saved

    new_rule = preprocess.resize_like_pil
    lines.append(f"{'crops':20s} {'n':>4s}  {'OpenCV rule: mean / min cos':>28s}  "
                 f"{'resize_like_pil: mean / min cos':>32s}  max |px - PIL|")
    classes = aspect_classes()
    for name, crops in classes.items():
        ref = embed(pil_resize(crops))
        old = (embed(with_rule(opencv_rule, crops)) * ref).sum(axis=1)
        new_batch = resize_bgr(crops, SIZE)
        new = (embed(new_batch) * ref).sum(axis=1)
        px = int(np.abs(new_batch.astype(np.int16) - pil_resize(crops)).max())
        lines.append(f"{name:20s} {len(crops):4d}  {old.mean():13.5f} / {old.min():.5f}  "
                     f"{new.mean():17.5f} / {new.min():.5f}  {px:8d}")
    print("\n".join(lines))

    # Time: batch 32 of real detector crops (CUHK03 and MOT17 boxes, mixed).
    rng = np.random.default_rng(0)
    pool = classes["cuhk03 detected"] + classes["mot17 boxes"]
    batch = [pool[i] for i in rng.choice(len(pool), 32, replace=False)]
    with tempfile.TemporaryDirectory() as tmp:
        graph = export_onnx(weights, Path(tmp) / "osnet.onnx", ExportConfig()).path
        embedder = Embedder(graph, device="cpu", backend="onnxruntime")
        resize, e2e = {"OpenCV rule": [], "resize_like_pil": [], "Pillow": []}, {}
        rules = {"OpenCV rule": opencv_rule, "resize_like_pil": new_rule}
        for name in rules:
            e2e[name] = []
        for r in range(args.rounds):
            order = list(rules) if r % 2 == 0 else list(rules)[::-1]
            for name in order:
                preprocess.resize_like_pil = rules[name]
                embedder.embed(batch)  # untimed: caches, allocations
                resize[name].append(median_ms(lambda: resize_bgr(batch, SIZE), 10))
                e2e[name].append(median_ms(lambda: embedder.embed(batch), 5))
            preprocess.resize_like_pil = new_rule
            resize["Pillow"].append(median_ms(lambda: pil_resize(batch), 10))
        embedder.close()
    lines += ["", f"batch 32 real crops, {args.rounds} interleaved rounds, medians of rounds (ms):"]
    for name, values in resize.items():
        lines.append(f"  resize only, {name:16s} {np.median(values):7.2f}")
    base = np.median(e2e["OpenCV rule"])
    for name, values in e2e.items():
        lines.append(f"  Embedder end to end (ONNX Runtime FP32), {name:16s} {np.median(values):7.2f}"
                     f"  ({np.median(values) / base:.3f}x the OpenCV rule)")
    print("\n".join(lines[-(len(resize) + len(e2e) + 1):]))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
