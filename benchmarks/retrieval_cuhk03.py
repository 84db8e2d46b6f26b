"""Real cross-camera retrieval for every precision: the README's accuracy table.

For each real osnet_x0_25 checkpoint (MSMT17, Market-1501): export FP32 and FP16 graphs, calibrate
INT8 with the defaults on MOT17-04 alone, then `reid-bench` (its library call) with the PyTorch
checkpoint as the reference and every graph on ONNX Runtime, scored on the shared CUHK03 set
(camera 1 queries camera 2: `reid-bench --dataset cuhk03 ../shared/data/reid/cuhk03-detected`).
Run: .venv/bin/python benchmarks/retrieval_cuhk03.py [--out benchmarks/results/retrieval_cuhk03_cpu]
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from reid_trt.bench.report import markdown
from reid_trt.bench.run import BenchConfig, run_bench
from reid_trt.calibration.api import calibrate_onnx, source_graph
from reid_trt.core.machine import cpu_int8_flags, int8_kernels_unsafe
from reid_trt.export.api import ExportConfig, export_onnx

DATA = Path(os.environ.get("REID_TRT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
CUHK03 = DATA / "reid" / "cuhk03-detected"
MOT17_04 = DATA / "reid" / "mot17-mini" / "train" / "MOT17-04-FRCNN"


def int8_path() -> str:
    """How ONNX Runtime computes the INT8 graph on this CPU (runtime/backends/onnxruntime.py)."""
    if int8_kernels_unsafe():
        return "ONNX Runtime computes its Q/DQ pairs in float, as TensorRT does (no VNNI or AMX here)"
    flags = ", ".join(cpu_int8_flags()) or "not an x86 CPU"
    return f"ONNX Runtime computes it on its integer kernels ({flags})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write OUT.md and OUT.json")
    args = parser.parse_args()
    rows, reports = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("msmt17", "market1501"):
            weights = DATA / "weights" / f"osnet_x0_25_{name}.pth"
            graphs = [export_onnx(weights, Path(tmp) / f"{name}.{p}.onnx",
                                  ExportConfig(precision=p)).path for p in ("fp32", "fp16")]
            source, sha, _ = source_graph(graphs[0], None)  # the FP32 export, not a second trace
            graphs.append(calibrate_onnx(source, sha, MOT17_04, Path(tmp) / f"{name}.int8.onnx").path)
            config = BenchConfig(batches=(32,), runs=3, warmup=1, rounds=1,
                                 dataset=("cuhk03", CUHK03))
            report = run_bench([], graphs, weights, config)
            reports[name] = report
            for s in report.subjects:
                r = s.retrieval
                rows.append(f"| {name} | {s.label} | {100 * r.mAP:.1f} | {100 * r.rank1:.1f} | "
                            f"{100 * r.cmc[5]:.1f} |")
            print(markdown(report))
    table = ["| weights | subject | mAP % | Rank-1 % | Rank-5 % |", "| --- | --- | --- | --- | --- |",
             *rows]
    protocol = reports["msmt17"].settings.dataset
    head = (f"CUHK03 detected, {protocol.queries} queries / {protocol.gallery} gallery: "
            f"{protocol.protocol}. INT8: defaults, calibrated on MOT17-04 alone; {int8_path()}. "
            "Command: .venv/bin/python benchmarks/retrieval_cuhk03.py")
    print(head + "\n" + "\n".join(table))
    if args.out:
        args.out.with_suffix(".md").write_text(
            head + "\n\n" + "\n".join(table) + "\n\n" +
            "\n\n".join(markdown(r) for r in reports.values()) + "\n")
        args.out.with_suffix(".json").write_text(json.dumps(
            {k: r.to_dict() for k, r in reports.items()}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
