"""What Embedder costs on top of its runtime's own compute (issue #37): Embedder end to end on real
detector boxes against a plain ONNX Runtime session and a plain OpenVINO compile of the same
graph fed the batch already preprocessed, all in one process, in core/timing's interleaved loop.

Subjects per batch size (1 and 32 real MOT17-04 boxes, the real osnet_x0_25 MSMT17 graph, FP32):
- ort plain: `onnxruntime.InferenceSession(graph)` with ONNX Runtime's defaults, on the
  normalised float batch.
- Embedder ort: `Embedder(graph, backend="onnxruntime").embed(crops)`, resize included.
- ort uint8 graph: the session that Embedder ort runs (the graph with the normalisation in front,
  core/pixel_input.py), on the resized uint8 batch: Embedder ort without the resize and Python.
- openvino plain: `ov.Core().compile_model(graph, "CPU", same hints as Embedder)`, on the
  normalised float batch: the same computation Embedder asks for (LATENCY, f32, unpinned).
- openvino defaults: `ov.Core().compile_model(graph, "CPU")`: OpenVINO's own defaults, which
  compute in bf16 on CPUs with AVX512_BF16 or AMX (reported, not the target's baseline: Embedder
  keeps the graph's FP32).
- Embedder openvino: `Embedder(graph, backend="openvino").embed(crops)`.
Also the parts: torchreid's resize of the boxes, and the NumPy normalisation; and each Embedder,
and each plain runtime as the baseline, taking turns with a detector (YOLOv8n, PyTorch eager)
against alone (bench/alternation.py).

    .venv/bin/python benchmarks/embedder_overhead.py [--rounds 10] [--out results/embedder_overhead_cpu.md]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("REID_TRT_DATA", HERE.parent.parent / "shared" / "data"))
WEIGHTS = DATA / "weights/osnet_x0_25_msmt17.pth"
SEQUENCE = DATA / "reid/mot17-mini/train/MOT17-04-FRCNN"
BATCHES = (1, 32)
TARGETS = {"Embedder ort / ort plain": 1.10, "Embedder openvino / openvino plain": 1.15}
# Timed taking turns with the detector: each Embedder, and each plain runtime as its baseline.
BESIDE_DETECTOR = ("Embedder ort", "ort plain", "Embedder openvino", "openvino plain")


def measure(graph: Path, rounds: int) -> dict:
    import numpy as np
    import onnxruntime as ort
    import openvino as ov
    from stage_alternation import detector

    from reid_trt.bench.alternation import alternate
    from reid_trt.core.preprocess import normalize_nhwc_bgr, resize_bgr
    from reid_trt.core.timing import interleaved, paired_ratio
    from reid_trt.data.mot import mot_crops
    from reid_trt.runtime.embedder import Embedder

    crops = mot_crops(SEQUENCE, max_frames=3)[0]
    e_ort = Embedder(graph, backend="onnxruntime", device="cpu")
    e_ov = Embedder(graph, backend="openvino")
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    core = ov.Core()
    same = core.compile_model(str(graph), "CPU", {"PERFORMANCE_HINT": "LATENCY",
                                                  "INFERENCE_PRECISION_HINT": "f32",
                                                  "ENABLE_CPU_PINNING": False})
    defaults = core.compile_model(str(graph), "CPU")
    detect = detector()
    out = {"openvino_default_precision": str(defaults.get_property("INFERENCE_PRECISION_HINT")),
           "batches": {}}
    for batch in BATCHES:
        boxes = crops[:batch]
        sizes = np.array([c.shape[:2] for c in boxes])
        x = normalize_nhwc_bgr(resize_bgr(boxes, (256, 128)))
        same_request, default_request = same.create_infer_request(), defaults.create_infer_request()
        u8 = resize_bgr(boxes, (256, 128))
        own = e_ort.backend
        calls = {
            "ort plain": lambda x=x: session.run(None, {"images": x}),
            "Embedder ort": lambda b=boxes: e_ort.embed(b),
            "ort uint8 graph": lambda u=u8, s=own.session, n=own.input.name: s.run(None, {n: u}),
            "openvino plain": lambda x=x, r=same_request: r.infer({0: x}),
            "openvino defaults": lambda x=x, r=default_request: r.infer({0: x}),
            "Embedder openvino": lambda b=boxes: e_ov.embed(b),
            "resize": lambda b=boxes: resize_bgr(b, (256, 128)),
            "normalise": lambda u=u8: normalize_nhwc_bgr(u),
        }
        runs = 20 if batch == 1 else 4
        per_round = [runs] * rounds
        samples = interleaved(calls, per_round, warmup=2)
        ms = {k: 1e3 * statistics.median(v) for k, v in samples.items()}
        # ratios paired by round (core/timing.paired_ratio): this VM's speed drifts by more
        # than the overhead measured
        for name, (subject, baseline) in {
                "Embedder ort / ort plain": ("Embedder ort", "ort plain"),
                "ort uint8 graph / ort plain": ("ort uint8 graph", "ort plain"),
                "Embedder openvino / openvino plain": ("Embedder openvino", "openvino plain"),
                "Embedder openvino / openvino defaults": ("Embedder openvino", "openvino defaults"),
                "resize / ort plain": ("resize", "ort plain")}.items():
            ms[name] = paired_ratio(samples[subject], samples[baseline], per_round)
        # Beside a detector: each subject alone against the same subject taking turns with
        # YOLOv8n (PyTorch eager, as benchmarks/stage_alternation.py runs it), the same loop.
        # The plain runtimes too: after a detector's activations have gone through the caches,
        # the network's first layers read their weights from memory again, whoever calls it.
        for name in BESIDE_DETECTOR:
            turns = alternate(calls[name], detect, calls=runs // 2 or 1, rounds=rounds)
            ms[f"{name} beside detector / alone"] = turns.stage_slowdown
            ms[f"detector beside {name} / alone"] = turns.neighbour_slowdown
        out["batches"][str(batch)] = {
            "ms": ms, "box_heights": [int(sizes[:, 0].min()), int(sizes[:, 0].max())],
            "samples_per_subject": runs * rounds}
    return out


def markdown(result: dict, machine: str, versions: str, rounds: int) -> str:
    lines = [f"# Embedder against its runtime's own compute: {machine}", "",
             f"Command: `.venv/bin/python benchmarks/embedder_overhead.py --rounds {rounds}` "
             f"({versions}). Real osnet_x0_25 MSMT17, FP32 graph; real MOT17-04 boxes; one "
             "process, core/timing's interleaved loop (rotated order, 50 ms quiet gap and one "
             "untimed call before each turn); p50 ms, and ratios as the median over rounds of "
             "each round's ratio (this VM's speed drifts from round to round by more than the "
             "overhead). Plain subjects get the batch already "
             "resized and normalised; Embedder's figures include torchreid's resize "
             "(its share of the plain ORT compute in the next-to-last column), and the "
             "normalisation ONNX Runtime computes in front of the graph for it (the last "
             "column: the session Embedder runs, on the resized uint8 batch). "
             f"OpenVINO's default precision here: {result['openvino_default_precision']}.", "",
             "| batch | box heights | ort plain | Embedder ort | ratio (target 1.10) | "
             "openvino plain | openvino defaults | Embedder openvino | ratio (target 1.15) | "
             "resize | normalise | resize / ort plain | ort uint8 graph / ort plain |",
             "|" + " --- |" * 13]
    for batch, row in result["batches"].items():
        m = row["ms"]
        lo, hi = row["box_heights"]
        lines.append(
            f"| {batch} | {lo}-{hi} px | {m['ort plain']:.2f} | {m['Embedder ort']:.2f} | "
            f"**{m['Embedder ort / ort plain']:.3f}** | {m['openvino plain']:.2f} | "
            f"{m['openvino defaults']:.2f} | {m['Embedder openvino']:.2f} | "
            f"**{m['Embedder openvino / openvino plain']:.3f}** | {m['resize']:.2f} | "
            f"{m['normalise']:.2f} | {m['resize / ort plain']:.3f} | "
            f"{m['ort uint8 graph / ort plain']:.3f} |")
    lines += ["", "Beside a detector (YOLOv8n, PyTorch eager, 640x640, taking turns with the "
              "Embedder; bench/alternation.py), time taking turns over time alone:", "",
              "| batch | Embedder ort | detector beside it | ort plain | detector beside it | "
              "Embedder openvino | detector beside it | openvino plain | detector beside it |",
              "|" + " --- |" * 9]
    for batch, row in result["batches"].items():
        m = row["ms"]
        lines.append(f"| {batch} | " + " | ".join(
            f"{m[f'{s} beside detector / alone']:.3f} | {m[f'detector beside {s} / alone']:.3f}"
            for s in BESIDE_DETECTOR) + " |")
    held = all(row["ms"][k] <= t for row in result["batches"].values() for k, t in TARGETS.items())
    beside = all(v <= 1.10 for row in result["batches"].values() for k, v in row["ms"].items()
                 if "beside" in k and "Embedder" in k)
    lines += ["", f"Targets held: overhead {'yes' if held else 'no'}; Embedder and the detector "
              f"beside it within 1.10x {'yes' if beside else 'no'} (the plain runtimes' columns "
              "are the baseline: what the network itself loses after a detector)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "embedder_overhead_cpu.md")
    args = parser.parse_args()
    from importlib import metadata

    from reid_trt.core.machine import machine_label
    from reid_trt.export.api import export_onnx

    versions = ", ".join(f"{d} {metadata.version(d)}" for d in ("onnxruntime", "openvino"))
    with tempfile.TemporaryDirectory() as tmp:
        graph = Path(tmp) / "osnet.onnx"
        export_onnx(WEIGHTS, graph)
        result = measure(graph, args.rounds)
    result["machine"], result["versions"] = machine_label(), versions
    text = markdown(result, machine_label(), versions, args.rounds)
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    print(text)


if __name__ == "__main__":
    main()
