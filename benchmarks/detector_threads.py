"""Re-ID right after a PyTorch detector, by how the detector's OpenMP threads wait (issue #37).

After each call PyTorch's OpenMP threads (libgomp, in the detector's process) keep spinning for a
while before they sleep (`GOMP_SPINCOUNT` iterations; `OMP_WAIT_POLICY=PASSIVE`: not at all). A
re-ID call that starts within that time shares the cores with them. Each setting runs in a fresh
process (libgomp reads them at start): stage_alternation.py's worker, Embedder on ONNX Runtime with
its default settings, alternating with YOLOv8n, timed by reid_trt.bench.alternation.
Writes results/detector_threads_cpu.{md,json}.

    .venv/bin/python benchmarks/detector_threads.py [--repeats 2]
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
SETTING = "onnxruntime spin=call (default)"  # stage_alternation.SETTINGS: Embedder's defaults
ENVIRONMENTS = {
    "PyTorch's default": {},
    "GOMP_SPINCOUNT=100000": {"GOMP_SPINCOUNT": "100000"},
    "GOMP_SPINCOUNT=10000": {"GOMP_SPINCOUNT": "10000"},
    "GOMP_SPINCOUNT=1000": {"GOMP_SPINCOUNT": "1000"},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
}
KEYS = ("stage_alone_ms", "stage_alternating_ms", "neighbour_alone_ms", "neighbour_alternating_ms")


def run(graph: Path, label: str, batch: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, str(HERE / "stage_alternation.py"), "--worker",
                          str(graph), SETTING, str(batch)], capture_output=True, text=True,
                         check=True, env={**env, **ENVIRONMENTS[label]}).stdout
    return {"environment": label, **json.loads(out.strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    from stage_alternation import table

    from reid_trt.core.machine import machine_label
    from reid_trt.export.api import export_onnx

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        graph = Path(tmp) / "osnet.onnx"
        export_onnx(DATA / "weights/osnet_x0_25_msmt17.pth", graph)
        for _ in range(args.repeats):  # settings interleaved across repeats
            for batch in (1, 32):
                for label in ENVIRONMENTS:
                    rows.append(run(graph, label, batch))
                    print(rows[-1], flush=True)
    merged = []
    for batch in (1, 32):
        for label in ENVIRONMENTS:
            mine = [r for r in rows if r["environment"] == label and r["batch"] == batch]
            merged.append({"environment": label, "batch": batch,
                           **{k: statistics.median(r[k] for r in mine) for k in KEYS}})
    machine = machine_label()
    (HERE / "results" / "detector_threads_cpu.json").write_text(
        json.dumps({"machine": machine, "rows": merged, "runs": rows}, indent=1) + "\n")
    lines = [f"# Re-ID right after a PyTorch detector, by the detector's thread waiting: {machine}",
             "", f"Command: `.venv/bin/python benchmarks/detector_threads.py --repeats "
             f"{args.repeats}` (each setting in a fresh process, median of {args.repeats}). "
             "Re-ID: `Embedder` on ONNX Runtime with its defaults, the real osnet_x0_25 MSMT17 "
             "graph, real MOT17-04 boxes, end to end. Detector: YOLOv8n from its yaml, PyTorch "
             "eager, 640x640. Alone: each stage's calls back to back; alternating: detector then "
             "re-ID, as a tracker's loop calls them (bench/alternation.py).", "",
             *table("detector's environment", "environment", merged)]
    (HERE / "results" / "detector_threads_cpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
