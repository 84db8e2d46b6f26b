"""INT8 against FP32 on the real osnet_x0_25 weights and real crops: what calibration keeps.

For each of the two real checkpoints (MSMT17, Market-1501): calibrate (minmax, 128 images) on a
folder holding the 9 Market-1501 crops and the 244 MOT17 ground-truth boxes, then compare the INT8
graph with the FP32 graph in ONNX Runtime over all 253 crops, and build the INT8 engine with
TensorRT-RTX to see which precision each conv/matmul layer gets. The first search step (every
layer INT8) is the naive quantization the search improves on.

Run: .venv/bin/python benchmarks/int8_calibration.py [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import cv2

from reid_trt.bench.run import cpu_name
from reid_trt.calibration.api import CalibrationConfig, calibrate_onnx, source_graph
from reid_trt.core.contract import contract_of
from reid_trt.core.metrics import cosine_rows, neighbour_agreement
from reid_trt.core.onnxio import ort_session
from reid_trt.core.preprocess import graph_input
from reid_trt.data.datasets import load_dataset, read_samples
from reid_trt.data.folder import read_crops
from reid_trt.engine.build import engine_from_onnx

DATA = Path(os.environ.get("REID_TRT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def mixed_folder(root: Path) -> list:
    """Market-1501 crops as they are, MOT17 boxes as <track>/<n>.png (lossless)."""
    for path in sorted((DATA / "reid" / "market1501").iterdir()):
        (root / path.name).write_bytes(path.read_bytes())
    crops, samples, _ = read_samples(load_dataset(DATA / "reid" / "mot17-mini").train)
    for i, (crop, sample) in enumerate(zip(crops, samples, strict=True)):
        (root / str(sample.pid)).mkdir(exist_ok=True)
        cv2.imwrite(str(root / str(sample.pid) / f"{i}.png"), crop)
    return read_crops(DATA / "reid" / "market1501") + crops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "crops").mkdir()
        crops = mixed_folder(tmp / "crops")
        for name in ("msmt17", "market1501"):
            source, sha, _ = source_graph(None, DATA / "weights" / f"osnet_x0_25_{name}.pth")
            result = calibrate_onnx(source, sha, tmp / "crops", tmp / f"{name}.int8.onnx",
                                    CalibrationConfig(size=128, method="minmax"))
            x = graph_input(crops, contract_of(source))
            fp32 = ort_session(source).run(None, {"images": x})[0]
            int8 = ort_session(str(result.path)).run(None, {"images": x})[0]
            cos = cosine_rows(int8, fp32)
            naive = result.report["search_steps"][0]
            built = engine_from_onnx(result.path, tmp / f"{name}.plan").manifest
            rows.append(
                f"| osnet_x0_25 {name} | {cos.mean():.5f} | {cos.min():.5f} | "
                f"{neighbour_agreement(fp32, int8, k=5):.3f} | {cos[:9].mean():.5f} / "
                f"{cos[:9].min():.5f} | {result.report['unquantized_layers']} | "
                f"{naive['mean_cosine']:.4f} / {naive['min_cosine']:.4f} | "
                f"{', '.join(f'{n} {k}' for k, n in built.weighted_layers.items())} | "
                f"{result.report['seconds']} |")
            print(rows[-1], flush=True)
    text = "\n".join([
        "INT8 (Q/DQ, minmax, 128 calibration images, unquantized layers FP16) against FP32, "
        "ONNX Runtime CPU,",
        f"on the 253 real crops (9 Market-1501 + 244 MOT17 boxes). Machine: {cpu_name()}, "
        f"{os.cpu_count()} logical CPUs, no GPU. Command: `python benchmarks/int8_calibration.py`.",
        "",
        "| weights | mean cos | min cos | top-5 agreement | Market crops mean / min | unquantized | "
        "all-INT8 (naive) mean / min | engine conv/matmul (TensorRT-RTX) | calibration s |",
        "|" + " --- |" * 9, *rows, ""])
    (args.out / "int8_calibration_cpu.md").write_text(text)


if __name__ == "__main__":
    sys.exit(main())
