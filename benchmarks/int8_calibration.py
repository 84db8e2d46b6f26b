"""INT8 calibration as a user runs it: `calibrate` with the defaults on the 201 MOT17-04 boxes,
each checkpoint in a fresh process, twice; share of conv MACs in INT8, time per stage, the
layers left float, the judged figures, and whether the two runs wrote the same graph.

Run: .venv/bin/python benchmarks/int8_calibration.py [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from publish import publish  # benchmarks/publish.py

from reid_trt.core.machine import cpu_name

DATA = Path(os.environ.get("REID_TRT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
RUN = """
import json, sys
from reid_trt.calibration.api import calibrate_onnx, source_graph
source, sha, _ = source_graph(None, sys.argv[1])
print(json.dumps(calibrate_onnx(source, sha, sys.argv[2], sys.argv[3]).report.to_dict()))
"""


def calibrate(weights: Path, out: Path) -> dict:
    mot04 = DATA / "reid" / "mot17-mini" / "train" / "MOT17-04-FRCNN"
    done = subprocess.run([sys.executable, "-c", RUN, str(weights), str(mot04), str(out)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    import onnxruntime

    lines = [f"`reid-export calibrate` defaults on the 201 MOT17-04 boxes, each run a fresh "
             f"process; {cpu_name()}, onnxruntime {onnxruntime.__version__}.", "",
             "Command: `.venv/bin/python benchmarks/int8_calibration.py`", "",
             "| weights | INT8 share of conv MACs | INT8 / float conv layers | seconds (stages) "
             "| judged: worst-domain mean, worst-1% mean, min | same graph twice |",
             "| --- | --- | --- | --- | --- | --- |"]
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("msmt17", "market1501"):
            weights = DATA / "weights" / f"osnet_x0_25_{name}.pth"
            a = calibrate(weights, Path(tmp) / f"{name}.a.int8.onnx")
            b = calibrate(weights, Path(tmp) / f"{name}.b.int8.onnx")
            w, j = a["int8_work"], a["int8_vs_fp32"]
            stages = ", ".join(f"{k} {v}" for k, v in a["stage_seconds"].items())
            lines.append(f"| {name} | {100 * w['int8_mac_share']:.1f}% | {w['int8_layers']} / "
                         f"{w['float_layers']} | {a['seconds']} ({stages}) | "
                         f"{j['worst_mean_cosine']:.4f}, {j['low_cosine']:.4f}, "
                         f"{j['min_cosine']:.4f} | {a['int8_sha256'] == b['int8_sha256']} |")
            lines.append(f"| | float: {', '.join(a['unquantized_parts'])} | | | | |")
    publish(lines, args.out, "int8_calibration_cpu.md")


if __name__ == "__main__":
    main()
