"""reid-bench's figures for each subject in a multi-subject run against the same subject benched
alone in a fresh process (issue #28): does one subject's timing carry its neighbours'?

Subjects: the real osnet_x0_25 MSMT17 checkpoint (PyTorch), its FP32 graph on ONNX Runtime and
on OpenVINO; 64 real MOT17 boxes; batch 1 and 32. Each run (the full one and each subject alone)
is a fresh process; the whole set is repeated --repeats times, interleaved, and the p50s are
medians over the repeats. Writes results/bench_isolation_cpu.{md,json}.

    .venv/bin/python benchmarks/bench_isolation.py [--repeats 2]
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
WEIGHTS = DATA / "weights/osnet_x0_25_msmt17.pth"
SUBJECTS = ("pytorch", "onnxruntime", "openvino")


def bench(graph: Path, crops: Path, subjects: list[str]) -> dict:
    """label -> batch -> mode -> p50 ms, for one reid-bench run of `subjects`."""
    from reid_trt.bench.run import BenchConfig, run_bench

    report = run_bench(
        engines=[], graphs=[graph] if "onnxruntime" in subjects else [],
        weights=WEIGHTS if "pytorch" in subjects else None,
        openvino=[graph] if "openvino" in subjects else [],
        config=BenchConfig(batches=(1, 32), crops_dir=crops, companion_onnx=False))
    names = {"torch": "pytorch", "onnxruntime": "onnxruntime", "openvino": "openvino"}
    return {names[s.backend]: {str(row.batch): {
        **{m: row.timing(m).p50_ms for m in ("end_to_end", "compute") if row.timing(m)},
        "end_to_end_p99": row.end_to_end.p99_ms} for row in s.latency} for s in report.subjects}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--worker", nargs=3, metavar=("GRAPH", "CROPS", "SUBJECTS"))
    args = parser.parse_args()
    if args.worker:
        graph, crops, subjects = args.worker
        print(json.dumps(bench(Path(graph), Path(crops), subjects.split(","))))
        return
    import cv2

    from reid_trt.core.machine import cpu_count, cpu_name
    from reid_trt.data.mot import mot_crops
    from reid_trt.export.api import export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        graph, crops = Path(tmp) / "osnet.onnx", Path(tmp) / "crops"
        export_onnx(WEIGHTS, graph)
        crops.mkdir()
        for i, crop in enumerate(mot_crops(DATA / "reid/mot17-mini/train/MOT17-04-FRCNN")[0][:64]):
            cv2.imwrite(str(crops / f"{i:03d}.png"), crop)

        def run(subjects) -> dict:
            out = subprocess.run([sys.executable, __file__, "--worker", str(graph), str(crops),
                                  ",".join(subjects)], capture_output=True, text=True, check=True)
            return json.loads(out.stdout.strip().splitlines()[-1])

        together, alone = [], {s: [] for s in SUBJECTS}
        for _ in range(args.repeats):
            together.append(run(SUBJECTS))
            for s in SUBJECTS:
                alone[s].append(run([s])[s])
            print(together[-1], {s: a[-1] for s, a in alone.items()}, flush=True)
    rows = []
    for s in SUBJECTS:
        for batch in ("1", "32"):
            for mode in ("end_to_end", "compute"):
                t = statistics.median(r[s][batch][mode] for r in together)
                a = statistics.median(r[batch][mode] for r in alone[s])
                spread = [r[batch][mode] for r in alone[s]]
                rows.append({"subject": s, "batch": int(batch), "mode": mode, "in_run_ms": t,
                             "alone_ms": a, "ratio": t / a,
                             "alone_spread": max(spread) / min(spread)})
    machine = f"{cpu_name()}, {cpu_count()} CPUs"
    results = HERE / "results"
    (results / "bench_isolation_cpu.json").write_text(json.dumps(
        {"machine": machine, "rows": rows, "together": together, "alone": alone}, indent=1) + "\n")
    lines = [f"# reid-bench: a subject in a three-subject run against the same subject alone: "
             f"{machine}", "",
             f"Command: `.venv/bin/python benchmarks/bench_isolation.py --repeats {args.repeats}` "
             "(reid-bench's defaults: 30 timed calls per point in 3 rounds, order rotated each "
             "round, 50 ms quiet gap and one untimed call before each turn; ONNX Runtime spin=call). "
             "Real osnet_x0_25 MSMT17: the checkpoint on PyTorch, its FP32 graph on ONNX Runtime "
             "and OpenVINO; 64 real MOT17 boxes. Every run a fresh process; p50 ms, median of "
             f"{args.repeats} repeats.", "",
             "| subject | batch | mode | in the run | alone | in-run / alone | alone: slowest / "
             "fastest process |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['subject']} | {r['batch']} | {r['mode'].replace('_', ' ')} | "
                     f"{r['in_run_ms']:.2f} | {r['alone_ms']:.2f} | {r['ratio']:.3f} | "
                     f"{r['alone_spread']:.3f} |")
    worst = max(abs(r["ratio"] - 1) for r in rows)
    lines += ["", f"Largest difference: {100 * worst:.1f}%.", "",
              "Batch 1 end to end, each subject alone: p99 / p50 per process (reid-bench's 30 calls):",
              ""]
    for s in SUBJECTS:
        tails = [r["1"]["end_to_end_p99"] / r["1"]["end_to_end"] for r in alone[s]]
        lines.append(f"- {s}: " + ", ".join(f"{t:.2f}" for t in tails))
    (results / "bench_isolation_cpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
