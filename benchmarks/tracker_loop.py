"""BoxMOT's BoT-SORT over real MOT17 frames with re-ID by BoxMOT's own backends and by reid-trt,
with and without a detector run on each frame (issue #28).

The frames of MOT17-04 (mot17-mini) are looped to --iterations; their ground-truth pedestrian
boxes are the detections, so every run tracks the same boxes. "With detector": Ultralytics'
YOLOv8n built from its yaml (no weights downloaded; PyTorch eager, 640x640) runs on each frame
before the tracker, as in a real pipeline; its output is not used. Re-ID time is timed around
each `get_features` call inside the loop. Each subject runs in a fresh process. Track ids per
frame and the appearance features the tracker stored are compared with BoxMOT's torch backend.

BoxMOT's backends get the real osnet_x0_25 MSMT17 weights as BoxMOT names them
(osnet_x0_25_msmt17.pt) and BoxMOT's own ONNX and OpenVINO exports of them; reid-trt gets
`reid-export onnx` of the same weights, through `BoxMOTReID` with Embedder's defaults.

    .venv/bin/python benchmarks/tracker_loop.py [--iterations 300]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("REID_TRT_DATA", HERE.parent.parent / "shared" / "data"))
SEQUENCE = DATA / "reid/mot17-mini/train/MOT17-04-FRCNN"
SUBJECTS = ("boxmot torch", "boxmot onnx", "boxmot openvino", "reid-trt (BoxMOTReID, default)")
WARMUP = 4


class Timed:
    """A reid_model whose get_features calls are timed."""

    def __init__(self, model):
        self.model, self.seconds = model, []

    def get_features(self, xyxys, img):
        start = time.perf_counter()
        out = self.model.get_features(xyxys, img)
        self.seconds.append(time.perf_counter() - start)
        return out


def frames():
    import cv2

    from reid_trt.data.mot import frames as mot_frames
    from reid_trt.data.mot import pedestrian_boxes, read_gt

    gt = read_gt(SEQUENCE)
    out = []
    for number, path in mot_frames(SEQUENCE):
        boxes = np.array([box for _, box in pedestrian_boxes(gt, number)], dtype=np.float64)
        dets = np.c_[boxes, np.ones(len(boxes)), np.zeros(len(boxes))]
        out.append((cv2.imread(str(path)), dets))
    return out


def detector():
    import cv2
    import torch
    from ultralytics import YOLO

    net = YOLO("yolov8n.yaml").model.eval()

    def run(frame):
        image = cv2.resize(frame, (640, 360))
        image = cv2.copyMakeBorder(image, 140, 140, 0, 0, cv2.BORDER_CONSTANT)
        x = torch.from_numpy(image[:, :, ::-1].copy()).permute(2, 0, 1)[None].float() / 255
        with torch.inference_mode():
            net(x)

    return run


def keep_installed_onnxruntime() -> None:
    """BoxMOT 25's exporters (installing its extras) and its ONNX backend pip-install
    onnxruntime==1.24.3 over any other version at run time; every subject here runs on the
    environment as installed."""
    from boxmot.reid.backends import dependencies
    from boxmot.utils.checks import RequirementsChecker

    dependencies.REID_BACKEND_REQUIREMENTS["onnx"] = ("onnxruntime>=1.18.1",)
    RequirementsChecker.sync_extra = lambda self, *args, **kwargs: None
    RequirementsChecker.check_packages = lambda self, *args, **kwargs: None


def reid_model(subject: str, work: Path):
    if subject.startswith("reid-trt"):
        from reid_trt.integrations.boxmot import BoxMOTReID

        return BoxMOTReID(work / "reid_trt.onnx")
    from boxmot.reid.backends.onnx_backend import ONNXBackend
    from boxmot.reid.core import ReID

    keep_installed_onnxruntime()
    ONNXBackend._ensure_onnxruntime_installed = lambda self: None
    weights = {"boxmot torch": "osnet_x0_25_msmt17.pt", "boxmot onnx": "osnet_x0_25_msmt17.onnx",
               "boxmot openvino": "osnet_x0_25_msmt17_openvino_model"}[subject]
    return ReID(weights=work / "boxmot" / weights, device="cpu", half=False).model


def worker(subject: str, work: Path, iterations: int, with_detector: bool) -> dict:
    import boxmot

    seq = frames()
    detect = detector() if with_detector else None
    reid = Timed(reid_model(subject, work))
    tracker = boxmot.BotSort(reid_model=reid, use_cmc=False)  # CMC off: re-ID and tracking only
    ids, loop, bare = [], [], []
    bare_call = bare_compute(reid.model) if subject.startswith("reid-trt") else None
    for i in range(WARMUP + iterations):
        frame, dets = seq[i % len(seq)]
        if bare_call is not None:  # paired with this frame's in-loop call, outside the loop's time
            seconds = bare_call(frame, dets)
            if i >= WARMUP:
                bare.append(seconds)
        start = time.perf_counter()
        if detect is not None:
            detect(frame)
        tracks = tracker.update(dets, frame)
        if i >= WARMUP:
            loop.append(time.perf_counter() - start)
            ids.append({int(t[7]): int(t[4]) for t in tracks})
    reid_s = reid.seconds[WARMUP:]
    stored = {int(t.id): np.asarray(t.smooth_feat).tolist() for t in tracker.active_tracks
              if t.smooth_feat is not None}
    return {"subject": subject, "with_detector": with_detector, "iterations": iterations,
            "fps": len(loop) / sum(loop), "reid_ms_per_frame": 1e3 * float(np.mean(reid_s)),
            "reid_ms_p50": 1e3 * float(np.median(reid_s)),
            "bare_compute_ms_per_frame": 1e3 * float(np.mean(bare)) if bare else None,
            "boxes_per_frame": float(np.mean([len(d) for _, d in seq])),
            "ids": [list(map(list, sorted(d.items()))) for d in ids], "stored": stored}


def bare_compute(model):
    """A call that times the backend's bare compute of a frame's boxes, already cropped and
    preprocessed (its own compute_call): the floor the in-loop figure is judged by. Run in the
    loop before each frame's detector, in the same process state as the tracker's own call."""
    from reid_trt.integrations.boxmot import crops_like_boxmot

    embedder = model.embedder

    def timed(frame, dets) -> float:
        crops = crops_like_boxmot(frame, dets[:, :4], embedder.contract)
        call = embedder.backend.compute_call(embedder.preprocess(crops))
        start = time.perf_counter()
        call()
        return time.perf_counter() - start

    return timed


def prepare(work: Path) -> None:
    """The same real weights for every subject: BoxMOT's file name, BoxMOT's own ONNX and
    OpenVINO exports, reid-trt's export."""
    from reid_trt.export.api import export_onnx

    own = work / "boxmot"
    own.mkdir(parents=True)
    shutil.copy(DATA / "weights/osnet_x0_25_msmt17.pth", own / "osnet_x0_25_msmt17.pt")
    export_onnx(DATA / "weights/osnet_x0_25_msmt17.pth", work / "reid_trt.onnx")
    from boxmot.reid.exporters.config import build_export_namespace
    from boxmot.reid.exporters.workflow import export_reid

    keep_installed_onnxruntime()

    export_reid(build_export_namespace({"weights": own / "osnet_x0_25_msmt17.pt",
                                        "include": ("onnx", "openvino"), "dynamic": True}))


def agreement(run: dict, reference: dict) -> tuple[float, float]:
    """(share of frames whose box -> id map equals the reference's, min cosine of the
    appearance features stored for the tracks both keep)."""
    same = np.mean([a == b for a, b in zip(run["ids"], reference["ids"], strict=True)])
    common = sorted(set(run["stored"]) & set(reference["stored"]))
    a = np.array([run["stored"][k] for k in common])
    b = np.array([reference["stored"][k] for k in common])
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    return float(same), float((a * b).sum(axis=1).min()) if common else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--worker", nargs=3, metavar=("SUBJECT", "WORK", "DETECTOR"))
    args = parser.parse_args()
    if args.worker:
        subject, work, with_detector = args.worker
        print(json.dumps(worker(subject, Path(work), args.iterations, with_detector == "1")))
        return
    import onnxruntime

    from reid_trt.core.machine import machine_label

    version = onnxruntime.__version__
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        prepare(work)
        for with_detector in ("0", "1"):
            for subject in SUBJECTS:
                out = subprocess.run([sys.executable, __file__, "--iterations",
                                      str(args.iterations), "--worker", subject, str(work),
                                      with_detector], capture_output=True, text=True)
                if out.returncode:
                    raise SystemExit(f"{subject}: {out.stderr[-2000:]}")
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(subject, with_detector, round(runs[-1]["fps"], 1),
                      round(runs[-1]["reid_ms_per_frame"], 1), flush=True)
    import importlib.metadata

    if importlib.metadata.version("onnxruntime") != version:
        raise SystemExit(f"onnxruntime changed from {version} during the run: reinstall it")
    machine = f"{machine_label()}, onnxruntime {version}"
    rows = []
    for run in runs:
        reference = next(r for r in runs if r["subject"] == "boxmot torch"
                         and r["with_detector"] == run["with_detector"])
        same, cosine = agreement(run, reference)
        rows.append({k: v for k, v in run.items() if k not in ("ids", "stored")}
                    | {"same_ids": same, "feature_min_cosine": cosine})
    results = HERE / "results"
    (results / "tracker_loop_cpu.json").write_text(
        json.dumps({"machine": machine, "rows": rows}, indent=1) + "\n")
    lines = [f"# BoT-SORT with re-ID, with and without a detector: {machine}", "",
             f"Command: `.venv/bin/python benchmarks/tracker_loop.py --iterations "
             f"{args.iterations}` (BoxMOT 25 BoT-SORT, MOT17-04 frames looped, "
             f"{rows[0]['boxes_per_frame']:.0f} ground-truth boxes per frame as detections, "
             f"{WARMUP} warm-up iterations, camera-motion compensation off; each subject in a fresh "
             "process). Detector: YOLOv8n "
             "from its yaml, PyTorch eager, 640x640, run on each frame before the tracker. "
             "Re-ID ms: timed around each get_features call in the loop. Ids and features "
             "against BoxMOT's torch backend in the same mode.", "",
             "Bare compute: reid-trt's backend alone on each frame's boxes, cropped and "
             "preprocessed, timed in the loop before that frame's detector (outside the frame "
             "rate), paired with the tracker's own call on the same boxes.", "",
             "| re-ID | detector | frames/s | re-ID ms/frame | bare compute ms/frame | "
             "in loop / bare | same ids | stored features min cosine |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        bare = r.get("bare_compute_ms_per_frame")
        ratio = f"{r['reid_ms_per_frame'] / bare:.3f}" if bare else "-"
        lines.append(f"| {r['subject']} | {'yes' if r['with_detector'] else 'no'} | "
                     f"{r['fps']:.1f} | {r['reid_ms_per_frame']:.1f} | "
                     f"{f'{bare:.1f}' if bare else '-'} | {ratio} | {r['same_ids']:.0%} | "
                     f"{r['feature_min_cosine']:.5f} |")
    (results / "tracker_loop_cpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
