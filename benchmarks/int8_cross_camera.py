"""INT8 across cameras: calibrated on one camera, judged on others, in a plain ONNX Runtime session.

For each real osnet_x0_25 checkpoint (MSMT17, Market-1501): `reid-export calibrate` with the
defaults on the MOT17-04 ground-truth boxes only (one camera, 201 boxes), then INT8 against FP32
on the calibration camera (in-sample), on MOT17-02 (another camera) and on the Market-1501,
MSMT17 and CUHK03 crops (other datasets), and on shifted copies of the out-of-sample crops.
Beside it, in the same run: every weighted layer in INT8 with plain max ranges, calibrated on
the same boxes (what a generic quantizer does).

Run: .venv/bin/python benchmarks/int8_cross_camera.py [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from publish import publish  # benchmarks/publish.py

from reid_trt.calibration.api import CalibrationConfig, calibrate_onnx, source_graph
from reid_trt.calibration.placement import activation_tensors
from reid_trt.calibration.quantize import QUANTIZED_OPS, quantize
from reid_trt.calibration.ranges import tensor_ranges
from reid_trt.core.machine import machine_label
from reid_trt.core.metrics import cosine_rows
from reid_trt.core.options import CalibrationMethod
from reid_trt.core.preprocess import graph_input
from reid_trt.data.folder import read_crops
from reid_trt.data.mot import mot_crops
from reid_trt.data.shifts import EVALUATION_SHIFTS, shifted_copies

DATA = Path(os.environ.get("REID_TRT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
MOT = DATA / "reid" / "mot17-mini" / "train"


def crop_sets() -> dict[str, list]:
    mot04, _ = mot_crops(MOT / "MOT17-04-FRCNN")
    mot02, _ = mot_crops(MOT / "MOT17-02-FRCNN")
    reid = [c for d in ("market1501", "msmt17", "cuhk03") for c in read_crops(DATA / "reid" / d)]
    sets = {"MOT17-04 (calibration camera, in-sample)": mot04, "MOT17-02 (unseen camera)": mot02,
            "Market-1501/MSMT17/CUHK03 (unseen datasets)": reid}
    for kind, copies in shifted_copies(mot02 + reid).items():
        sets[f"unseen crops, {kind}"] = copies
    return sets


def session(model) -> ort.InferenceSession:
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])  # default options


def agreement(fp32, int8, crops, contract) -> tuple[float, float]:
    x = graph_input(crops, contract)
    cos = cosine_rows(int8.run(None, {"images": x})[0], fp32.run(None, {"images": x})[0])
    return float(cos.mean()), float(cos.min())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    sets = crop_sets()
    results = {}
    for name in ("msmt17", "market1501"):
        source, sha, contract = source_graph(None, DATA / "weights" / f"osnet_x0_25_{name}.pth")
        with tempfile.TemporaryDirectory() as tmp:
            result = calibrate_onnx(source, sha, MOT / "MOT17-04-FRCNN",
                                    Path(tmp) / f"{name}.int8.onnx", CalibrationConfig())
            ours = session(result.path)
        x = graph_input(sets["MOT17-04 (calibration camera, in-sample)"], contract)
        ranges = tensor_ranges(source, [x[i:i + 16] for i in range(0, len(x), 16)],
                               CalibrationMethod.MINMAX, activation_tensors(source),
                               QUANTIZED_OPS, headroom=1.0)
        naive = session(quantize(source, ranges))
        fp32 = session(source)
        report = result.report.to_dict()
        results[name] = {"report": {k: report[k] for k in (
            "method", "seconds", "int8_work", "unquantized_parts", "budget_held", "protocol")},
            "sets": {label: {"reid_trt": agreement(fp32, ours, crops, contract),
                             "naive": agreement(fp32, naive, crops, contract), "crops": len(crops)}
                     for label, crops in sets.items()}}
        print(name, json.dumps(results[name]["report"]["int8_work"]), file=sys.stderr)
    machine = f"{machine_label()}, onnxruntime {ort.__version__}"
    lines = ["INT8 vs FP32 (cosine per crop, mean / min), osnet_x0_25, calibrated on the 201 "
             "MOT17-04 boxes only (one camera) with the defaults, in a plain ONNX Runtime session "
             f"(default options); {machine}.", "",
             "Command: `.venv/bin/python benchmarks/int8_cross_camera.py`", "",
             "| crops | n | MSMT17 weights: reid-trt | MSMT17: every layer INT8, max ranges | "
             "Market-1501 weights: reid-trt | Market-1501: every layer INT8, max ranges |",
             "| --- | --- | --- | --- | --- | --- |"]
    for label in sets:
        row = [label, str(results["msmt17"]["sets"][label]["crops"])]
        for name in ("msmt17", "market1501"):
            figures = results[name]["sets"][label]
            row += [f"{figures['reid_trt'][0]:.4f} / {figures['reid_trt'][1]:.4f}",
                    f"{figures['naive'][0]:.4f} / {figures['naive'][1]:.4f}"]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    for name in ("msmt17", "market1501"):
        r = results[name]["report"]
        w = r["int8_work"]
        lines.append(f"- {name}: {100 * w['int8_mac_share']:.1f}% of conv MACs in INT8 "
                     f"({w['int8_layers']} layers INT8, {w['float_layers']} float: "
                     f"{', '.join(r['unquantized_parts']) or 'none'}; {w['gemv_layers_float']} "
                     f"GEMV-shaped gate/embedding layers float by design); ranges {r['method']}; "
                     f"calibration {r['seconds']} s.")
    shifts = ", ".join(f"{k}" for k in EVALUATION_SHIFTS)
    lines += ["", f"Shifts (data/shifts.py): {shifts}."]
    publish(lines, args.out, "int8_cross_camera_cpu.md")
    (args.out / "int8_cross_camera_cpu.json").write_text(json.dumps(
        {"machine": machine, "results": results}, indent=2, default=float) + "\n")


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
