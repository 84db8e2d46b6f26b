"""reid-bench's figures for each subject in a multi-subject run against the same subject benched
alone in a fresh process (issues #28, #37): does one subject's timing carry its neighbours'?

Subjects: the real osnet_x0_25 MSMT17 checkpoint (PyTorch), its FP32 graph on ONNX Runtime and
on OpenVINO; 64 real MOT17 boxes; batch 1 and 32. Three arrangements, each run a fresh process:
- one process: `reid-bench --no-isolate`, every subject in the run's process;
- isolated: reid-bench's default, each subject timed in a worker process of its own
  (bench/isolated.py), the rounds still interleaved;
- alone: a reid-bench run of that subject only.
The set is repeated --repeats times, interleaved, and the p50s are medians over the repeats.
Writes results/bench_isolation_cpu.{md,json}.

    .venv/bin/python benchmarks/bench_isolation.py [--repeats 3]
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
ARRANGEMENTS = ("one process", "isolated")


def bench(graph: Path, crops: Path, subjects: list[str], isolate: bool) -> dict:
    """label -> batch -> mode -> p50 ms, for one reid-bench run of `subjects`."""
    from reid_trt.bench.run import BenchConfig, run_bench

    report = run_bench(
        engines=[], graphs=[graph] if "onnxruntime" in subjects else [],
        weights=WEIGHTS if "pytorch" in subjects else None,
        openvino=[graph] if "openvino" in subjects else [],
        config=BenchConfig(batches=(1, 32), crops_dir=crops, companion_onnx=False,
                           isolate=isolate))
    names = {"torch": "pytorch", "onnxruntime": "onnxruntime", "openvino": "openvino"}
    return {names[s.backend]: {str(row.batch): {
        **{m: row.timing(m).p50_ms for m in ("end_to_end", "compute") if row.timing(m)},
        "end_to_end_p99": row.end_to_end.p99_ms} for row in s.latency} for s in report.subjects}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", nargs=4, metavar=("GRAPH", "CROPS", "SUBJECTS", "ISOLATE"))
    args = parser.parse_args()
    if args.worker:
        graph, crops, subjects, isolate = args.worker
        print(json.dumps(bench(Path(graph), Path(crops), subjects.split(","), isolate == "1")))
        return
    import cv2

    from reid_trt.core.machine import machine_label
    from reid_trt.data.mot import mot_crops
    from reid_trt.export.api import export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        graph, crops = Path(tmp) / "osnet.onnx", Path(tmp) / "crops"
        export_onnx(WEIGHTS, graph)
        crops.mkdir()
        for i, crop in enumerate(mot_crops(DATA / "reid/mot17-mini/train/MOT17-04-FRCNN")[0][:64]):
            cv2.imwrite(str(crops / f"{i:03d}.png"), crop)

        def run(subjects, isolate: bool = True) -> dict:
            out = subprocess.run([sys.executable, __file__, "--worker", str(graph), str(crops),
                                  ",".join(subjects), "1" if isolate else "0"],
                                 capture_output=True, text=True, check=True)
            return json.loads(out.stdout.strip().splitlines()[-1])

        together = {a: [] for a in ARRANGEMENTS}
        alone = {s: [] for s in SUBJECTS}
        for r in range(args.repeats):
            order = list(ARRANGEMENTS) if r % 2 == 0 else list(ARRANGEMENTS)[::-1]
            for arrangement in order:
                together[arrangement].append(run(SUBJECTS, arrangement == "isolated"))
            for s in SUBJECTS:
                alone[s].append(run([s])[s])
            print(f"repeat {r + 1} of {args.repeats} done", flush=True)
    rows = []
    for s in SUBJECTS:
        for batch in ("1", "32"):
            for mode in ("end_to_end", "compute"):
                a = statistics.median(r[batch][mode] for r in alone[s])
                spread = [r[batch][mode] for r in alone[s]]
                row = {"subject": s, "batch": int(batch), "mode": mode, "alone_ms": a,
                       "alone_spread": max(spread) / min(spread)}
                for arrangement, runs in together.items():
                    t = statistics.median(r[s][batch][mode] for r in runs)
                    row[arrangement] = {"ms": t, "ratio": t / a}
                rows.append(row)
    machine = machine_label()
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
             f"{args.repeats} repeats. One process: `--no-isolate`; isolated: the default, each "
             "subject timed in a process of its own.", "",
             "| subject | batch | mode | alone | one process | / alone | isolated | / alone | "
             "alone: slowest / fastest process |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        one, iso = r["one process"], r["isolated"]
        lines.append(f"| {r['subject']} | {r['batch']} | {r['mode'].replace('_', ' ')} | "
                     f"{r['alone_ms']:.2f} | {one['ms']:.2f} | {one['ratio']:.3f} | "
                     f"{iso['ms']:.2f} | {iso['ratio']:.3f} | {r['alone_spread']:.3f} |")
    lines.append("")
    for arrangement in ARRANGEMENTS:
        worst = max(abs(r[arrangement]["ratio"] - 1) for r in rows)
        lines.append(f"Largest difference from alone, {arrangement}: {100 * worst:.1f}%.")
    (results / "bench_isolation_cpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
