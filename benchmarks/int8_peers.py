"""reid-trt's INT8 beside the quantizers a TensorRT user would try first: NVIDIA ModelOpt's ONNX
PTQ (`modelopt.onnx.quantization`, its defaults and its `max` calibration) and NNCF's ONNX
`nncf.quantize`, on the same calibration crops (the 201 MOT17-04 boxes) and the same judged sets
(MOT17-02, the Market-1501/MSMT17/CUHK03 crops, shifted copies of them), in one ONNX Runtime.

ModelOpt and NNCF pin their own torch/onnx/numpy ranges, so they run in a second Python (their
own venv) given by --peers-python; this script exports the graphs and the crops, calls it, and
judges every graph here. A peer that is not installed there is skipped with a line.

Run: .venv/bin/python benchmarks/int8_peers.py --peers-python /path/to/venv/bin/python
  (that venv: pip install 'nvidia-modelopt[onnx]' nncf onnxruntime)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from publish import publish  # benchmarks/publish.py

from reid_trt.calibration.api import calibrate_onnx, source_graph
from reid_trt.calibration.placement import int8_work
from reid_trt.core.machine import machine_label
from reid_trt.core.metrics import cosine_rows
from reid_trt.core.onnxio import ort_session
from reid_trt.core.preprocess import graph_input
from reid_trt.data.folder import read_crops
from reid_trt.data.mot import mot_crops
from reid_trt.data.shifts import EVALUATION_SHIFTS, shifted_copies

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MOT = DATA / "reid" / "mot17-mini" / "train"

# Runs in the peers' Python: quantizes source.onnx with each peer, writes <peer>.onnx and times.
PEERS = r"""
import json, sys, time
from pathlib import Path
import numpy as np
work = Path(sys.argv[1]); calib = np.load(work / "calib.npy"); out = {}
try:
    from modelopt.onnx.quantization import quantize
    for label, kw in {"ModelOpt (defaults: entropy)": {},
                      "ModelOpt (max)": {"calibration_method": "max"},
                      "ModelOpt (max, float parts FP32)": {"calibration_method": "max",
                                                           "high_precision_dtype": "fp32"}}.items():
        start = time.perf_counter()
        path = work / (str(len(out)) + ".onnx")
        quantize(str(work / "source.onnx"), quantize_mode="int8", calibration_data=calib,
                 calibration_eps=["cpu"], output_path=str(path), log_level="ERROR", **kw)
        out[label] = {"path": str(path), "seconds": time.perf_counter() - start}
except ImportError as e:
    print("ModelOpt skipped:", e, file=sys.stderr)
try:
    import nncf, onnx
    start = time.perf_counter()
    model = nncf.quantize(onnx.load(work / "source.onnx"),
                          nncf.Dataset([calib[i:i + 1] for i in range(len(calib))],
                                       lambda x: {"images": x}))
    path = work / "nncf.onnx"
    onnx.save(model, path)
    out["NNCF (defaults)"] = {"path": str(path), "seconds": time.perf_counter() - start}
except ImportError as e:
    print("NNCF skipped:", e, file=sys.stderr)
print(json.dumps(out))
"""

JUDGED_SHIFTS = ("brighter", "darker", "more contrast", "less contrast", "blur", "mirrored")


def judged_sets() -> dict[str, list]:
    mot02, _ = mot_crops(MOT / "MOT17-02-FRCNN")
    reid = [c for d in ("market1501", "msmt17", "cuhk03") for c in read_crops(DATA / "reid" / d)]
    sets = {"MOT17-02": mot02, "re-ID crops": reid}
    for kind, copies in shifted_copies(mot02 + reid, JUDGED_SHIFTS).items():
        sets[kind] = copies
    return sets


def figures(fp32, model_path, sets, contract) -> dict:
    # reid-trt's session: ONNX Runtime's WeightBiasQuantization pass off for FP16 Q/DQ graphs
    # (it turns their Conv biases into int32 through FP16 scales, which underflow: cosine ~0.3
    # for ModelOpt's default graphs in a default session; TensorRT runs no such pass).
    session = ort_session(onnx.load(str(model_path)))
    name = session.get_inputs()[0].name
    out = {}
    for label, crops in sets.items():
        x = graph_input(crops, contract)
        cos = cosine_rows(session.run(None, {name: x})[0], fp32.run(None, {"images": x})[0])
        out[label] = (float(cos.mean()), float(cos.min()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers-python", required=True)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    sets = judged_sets()
    calib_crops, _ = mot_crops(MOT / "MOT17-04-FRCNN")
    rows, notes = [], []
    for weights in ("msmt17", "market1501"):
        source, sha, contract = source_graph(None, DATA / "weights" / f"osnet_x0_25_{weights}.pth")
        fp32 = ort.InferenceSession(source.SerializeToString(), providers=["CPUExecutionProvider"])
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            onnx.save(source, work / "source.onnx")
            np.save(work / "calib.npy", graph_input(calib_crops, contract))
            start = time.perf_counter()
            ours = calibrate_onnx(source, sha, MOT / "MOT17-04-FRCNN", work / "reid.int8.onnx")
            graphs = {"reid-trt (defaults)": {"path": str(ours.path),
                                              "seconds": time.perf_counter() - start}}
            done = subprocess.run([args.peers_python, "-c", PEERS, str(work)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"the peers' Python failed:\n{done.stderr[-3000:]}")
            notes += [line for line in done.stderr.splitlines() if "skipped" in line]
            graphs.update(json.loads(done.stdout.strip().splitlines()[-1]))
            for label, g in graphs.items():
                share = int8_work(source, onnx.load(g["path"])).int8_mac_share
                f = figures(fp32, g["path"], sets, contract)
                rows.append((weights, label, share, g["seconds"], f))
    lines = [f"INT8 against FP32 (cosine per crop), osnet_x0_25, calibrated on the 201 MOT17-04 "
             f"boxes; judged in ONNX Runtime {ort.__version__} on the CPU (WeightBiasQuantization "
             "off for FP16 Q/DQ graphs, as reid-trt's sessions run them); "
             f"{machine_label()}.", "",
             "Command: `.venv/bin/python benchmarks/int8_peers.py --peers-python "
             "<venv with nvidia-modelopt[onnx] and nncf>/bin/python`", "",
             "| weights | quantizer | INT8 share of conv MACs | seconds | MOT17-02 mean / min "
             "| re-ID crops mean / min | worst shift mean / min |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for weights, label, share, seconds, f in rows:
        shift = min((k for k in f if k in EVALUATION_SHIFTS), key=lambda k: f[k][0])
        lines.append(f"| {weights} | {label} | {100 * share:.1f}% | {seconds:.0f} | "
                     f"{f['MOT17-02'][0]:.4f} / {f['MOT17-02'][1]:.4f} | "
                     f"{f['re-ID crops'][0]:.4f} / {f['re-ID crops'][1]:.4f} | "
                     f"{f[shift][0]:.4f} / {f[shift][1]:.4f} ({shift}) |")
    lines += ["", f"Shifts judged: {', '.join(JUDGED_SHIFTS)}. Acceptance levels: mean >= 0.995, "
              "min >= 0.98 on every row."] + [f"- {n}" for n in notes]
    publish(lines, args.out, "int8_peers_cpu.md")


if __name__ == "__main__":
    main()
