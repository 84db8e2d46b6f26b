"""Re-ID alone against re-ID taking turns with a detector, per CPU runtime setting (issue #28).

Each setting runs in a fresh process: the real osnet_x0_25 (MSMT17) graph through `Embedder` end
to end on real MOT17 boxes, alternating with Ultralytics' YOLOv8n built from its yaml (no
weights downloaded; PyTorch eager, 640x640, on a real MOT17 frame), timed by
reid_trt.bench.alternation (interleaved rounds, medians). Writes
results/stage_alternation_cpu.{md,json}.

    .venv/bin/python benchmarks/stage_alternation.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("REID_TRT_DATA", HERE.parent.parent / "shared" / "data"))
SEQUENCE = DATA / "reid/mot17-mini/train/MOT17-04-FRCNN"
# (label, Embedder options); "openvino pinned" is how main compiled OpenVINO before #28.
SETTINGS = {
    "onnxruntime spin=always (before #28)": {"backend": "onnxruntime", "spin": "always"},
    "onnxruntime spin=never": {"backend": "onnxruntime", "spin": "never"},
    "onnxruntime spin=call (default)": {"backend": "onnxruntime", "spin": "call"},
    "openvino pinned (before #28)": {"backend": "openvino", "pinned": True},
    "openvino unpinned (default)": {"backend": "openvino"},
}


def detector():
    """YOLOv8n, randomly initialised from its yaml, on a real frame letterboxed to 640x640."""
    import cv2
    import torch
    from ultralytics import YOLO

    net = YOLO("yolov8n.yaml").model.eval()
    frame = cv2.imread(str(sorted((SEQUENCE / "img1").glob("*.jpg"))[0]))
    image = cv2.resize(frame, (640, 360))
    image = cv2.copyMakeBorder(image, 140, 140, 0, 0, cv2.BORDER_CONSTANT)
    x = torch.from_numpy(image[:, :, ::-1].copy()).permute(2, 0, 1)[None].float() / 255

    def run():
        with torch.inference_mode():
            net(x)

    return run


# The columns of one alternation after its labels (also detector_threads.py's table).
COLUMNS = ("re-ID alone ms", "re-ID alternating ms", "re-ID slowdown", "detector alone ms",
           "detector alternating ms", "detector slowdown", "loop ms")


def table(label: str, key: str, rows: list[dict]) -> list[str]:
    """Markdown lines: one row per alternation (its fields), labelled by r[key] and its batch."""
    lines = [f"| {label} | batch | " + " | ".join(COLUMNS) + " |",
             "| --- | --- |" + " --- |" * len(COLUMNS)]
    for r in rows:
        stage, neighbour = r["stage_alternating_ms"], r["neighbour_alternating_ms"]
        lines.append(f"| {r[key]} | {r['batch']} | {r['stage_alone_ms']:.1f} | {stage:.1f} | "
                     f"{stage / r['stage_alone_ms']:.2f}x | {r['neighbour_alone_ms']:.1f} | "
                     f"{neighbour:.1f} | {neighbour / r['neighbour_alone_ms']:.2f}x | "
                     f"{stage + neighbour:.1f} |")
    return lines


def worker(graph: Path, setting: str, batch: int) -> dict:
    from reid_trt.bench.alternation import alternate
    from reid_trt.data.mot import mot_crops
    from reid_trt.runtime.embedder import Embedder

    options = dict(SETTINGS[setting])
    pinned = options.pop("pinned", False)
    crops = mot_crops(SEQUENCE)[0][:batch]
    if pinned:  # main's OpenVINO compile before #28, for the before figures
        from reid_trt.core.threads import ThreadSettings
        from reid_trt.runtime.backends.openvino import OpenVINOBackend

        embedder = Embedder.from_backend(OpenVINOBackend(graph, "cpu",
                                                         threads=ThreadSettings(pinning=True)))
    else:
        embedder = Embedder(graph, device="cpu", **options)
    result = alternate(lambda: embedder.embed(crops), detector())
    return {"setting": setting, "batch": batch, **result.__dict__}


def alone(graph: Path) -> dict:
    """Each ONNX Runtime setting alone, all in one process (fresh processes differ by more than
    the settings do here): Embedder end to end, the settings taking turns in rotated order, each
    turn after a quiet gap and an untimed call; p50 ms per batch size."""
    from reid_trt.core.timing import interleaved
    from reid_trt.data.mot import mot_crops
    from reid_trt.runtime.embedder import Embedder

    crops = mot_crops(SEQUENCE)[0][:32]
    spins = ("always", "call", "never")
    embedders = {s: Embedder(graph, device="cpu", backend="onnxruntime", spin=s) for s in spins}
    out = {}
    for batch in (32, 1):
        times = interleaved({s: lambda e=e, c=crops[:batch]: e.embed(c) for s, e in embedders.items()},
                            [5 if batch > 1 else 20] * 8)
        out[batch] = {s: 1e3 * statistics.median(t) for s, t in times.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", nargs=3, metavar=("GRAPH", "SETTING", "BATCH"))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--alone", metavar="GRAPH")
    args = parser.parse_args()
    if args.worker:
        graph, setting, batch = args.worker
        print(json.dumps(worker(Path(graph), setting, int(batch))))
        return
    if args.alone:
        print(json.dumps(alone(Path(args.alone))))
        return
    from reid_trt.core.machine import machine_label
    from reid_trt.export.api import export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        graph = Path(tmp) / "osnet.onnx"
        export_onnx(DATA / "weights/osnet_x0_25_msmt17.pth", graph)
        out = subprocess.run([sys.executable, __file__, "--alone", str(graph)],
                             capture_output=True, text=True, check=True).stdout
        solo = json.loads(out.strip().splitlines()[-1])
        rows = []
        for _ in range(args.repeats):  # settings interleaved across repeats
            for batch in (32, 1):
                for setting in SETTINGS:
                    out = subprocess.run([sys.executable, __file__, "--worker", str(graph),
                                          setting, str(batch)], capture_output=True, text=True,
                                         check=True).stdout
                    rows.append(json.loads(out.strip().splitlines()[-1]))
                    print(rows[-1], flush=True)
    merged = []
    for batch in (32, 1):
        for setting in SETTINGS:
            mine = [r for r in rows if r["setting"] == setting and r["batch"] == batch]
            merged.append({k: (statistics.median(r[k] for r in mine) if isinstance(v, float) else v)
                           for k, v in mine[0].items()})
    machine = machine_label()
    results = HERE / "results"
    (results / "stage_alternation_cpu.json").write_text(
        json.dumps({"machine": machine, "alone": solo, "rows": merged, "runs": rows}, indent=1)
        + "\n")
    lines = [f"# Re-ID beside a detector: {machine}", "",
             "Command: `.venv/bin/python benchmarks/stage_alternation.py` (each setting in a fresh "
             f"process, median of {args.repeats} processes; per process 5 interleaved rounds of 6 "
             "calls). Re-ID: real osnet_x0_25 MSMT17 graph through `Embedder.embed` end to end on "
             "real MOT17-04 boxes. Detector: Ultralytics YOLOv8n from its yaml, PyTorch eager, "
             "640x640, batch 1. Alone: each stage's calls back to back; alternating: detector "
             "then re-ID, as a tracker's loop calls them.", "",
             *table("setting", "setting", merged)]
    lines += ["", "ONNX Runtime's settings alone, in one process (each in its turn, rotated, after a "
              "quiet gap; p50 ms end to end, 40 calls at batch 32, 160 at batch 1):", "",
              "| batch | " + " | ".join(f"spin={s}" for s in solo["32"]) + " |",
              "| --- |" + " --- |" * len(solo["32"])]
    for batch, per in solo.items():
        best = min(per.values())
        lines.append(f"| {batch} | " + " | ".join(f"{ms:.2f} ({ms / best:.2f}x)"
                                                  for ms in per.values()) + " |")
    (results / "stage_alternation_cpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
