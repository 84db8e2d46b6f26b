"""reid-bench's figures for each subject in a multi-subject run against the same subject benched
alone in a fresh process (issues #28, #37): does one subject's timing carry its neighbours'?

Subjects: the real osnet_x0_25 MSMT17 checkpoint (PyTorch), its FP32 graph on ONNX Runtime and
on OpenVINO; 64 real MOT17 boxes; batch 1 and 32. Three arrangements, each run a fresh process:
- one process: `reid-bench --no-isolate`, every subject in the run's process;
- isolated: reid-bench's default, each subject timed in a worker process of its own
  (bench/isolated.py), the rounds still interleaved;
- alone: a reid-bench run of that subject only.
The set is repeated --repeats times, interleaved. Each run is compared with the alone run of the
same repeat, and only where both ran in the same phase of the machine: a VM's multi-threaded
speed can change for minutes at a time while one thread's holds (benchmarks/README.md), so a
probe process before and after every run times ONNX Runtime at batch 1 with all threads against
one (`phase`), and a run whose probes disagree is left out. Writes
results/bench_isolation_cpu.{md,json}; `--table` writes the table again from the JSON.

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
# All threads over one thread, ONNX Runtime batch 1: ~0.68 where the threads meet promptly, ~1.12
# in this VM's slow phases (2-core EPYC Zen 3); a run between two probes on either side of this
# is in one phase.
PHASE_SPLIT = 0.9


def phase(graph: Path) -> float:
    """p50 with every core's thread over p50 with one, ONNX Runtime FP32 at batch 1: two plain
    sessions (ONNX Runtime's defaults, as any caller has them) in core/timing's loop, the median
    over 10 rounds of each round's ratio."""
    import numpy as np
    import onnxruntime as ort

    from reid_trt.core.timing import interleaved, paired_ratio, split_runs

    def session(threads: int | None):
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        s = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        return lambda: s.run(None, {"images": x})

    x = np.zeros((1, 3, 256, 128), np.float32)
    runs = split_runs(200, 10)
    times = interleaved({"every": session(None), "one": session(1)}, runs, warmup=20)
    return paired_ratio(times["every"], times["one"], runs)


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


def phase_of(run: dict) -> str | None:
    """'fast' or 'slow' where the probes on both sides of the run agree, else None."""
    before, after = run["phase"]
    fast = [p < PHASE_SPLIT for p in (before, after)]
    return None if fast[0] != fast[1] else "fast" if fast[0] else "slow"


def rows_of(together: dict, alone: dict) -> list[dict]:
    """Per subject, batch and mode: the p50 alone (median over repeats), and each arrangement's
    p50 over the alone p50 of the same repeat where both runs sat in one phase, median and
    range over those repeats."""
    rows = []
    for s in SUBJECTS:
        for batch in ("1", "32"):
            for mode in ("end_to_end", "compute"):
                own = [r["p50"][batch][mode] for r in alone[s]]
                row = {"subject": s, "batch": int(batch), "mode": mode,
                       "alone_ms": statistics.median(own), "alone_spread": max(own) / min(own)}
                for arrangement, runs in together.items():
                    ratios = [t["p50"][s][batch][mode] / a["p50"][batch][mode]
                              for t, a in zip(runs, alone[s], strict=True)
                              if phase_of(t) is not None and phase_of(t) == phase_of(a)]
                    row[arrangement] = {
                        "ms": statistics.median(r["p50"][s][batch][mode] for r in runs),
                        "ratio": statistics.median(ratios) if ratios else None,
                        "range": [min(ratios), max(ratios)] if ratios else None,
                        "pairs": len(ratios)}
                rows.append(row)
    return rows


def markdown(machine: str, repeats: int, rows: list[dict], runs: list[dict]) -> str:
    counts = {k: sum(phase_of(r) == k for r in runs) for k in ("fast", "slow", None)}
    probes = [p for r in runs for p in r["phase"]]
    phases = (f"Phases (all threads / one thread, ONNX Runtime batch 1, probed around each run: "
              f"{min(probes):.2f}-{max(probes):.2f}; below {PHASE_SPLIT} fast): of "
              f"{len(runs)} runs, {counts['fast']} fast, {counts['slow']} slow, {counts[None]} "
              "changed phase during the run.")
    lines = [f"# reid-bench: a subject in a three-subject run against the same subject alone: "
             f"{machine}", "",
             f"Command: `.venv/bin/python benchmarks/bench_isolation.py --repeats {repeats}` "
             "(reid-bench's defaults: 30 timed calls per point in 3 rounds, order rotated each "
             "round, 50 ms quiet gap and one untimed call before each turn; ONNX Runtime spin=call). "
             "Real osnet_x0_25 MSMT17: the checkpoint on PyTorch, its FP32 graph on ONNX Runtime "
             "and OpenVINO; 64 real MOT17 boxes. Every run a fresh process; p50 ms, median of "
             f"{repeats} repeats. One process: `--no-isolate`; isolated: the default, each "
             "subject timed in a process of its own. Ratios: each repeat's run over the same "
             "repeat's run alone where both ran in one phase of the machine (the probes before "
             "and after each run agree), median [lowest-highest] and how many repeats. "
             f"{phases}", "",
             "| subject | batch | mode | alone | one process | / alone | isolated | / alone | "
             "alone: slowest / fastest process |", "|" + " --- |" * 9]
    for r in rows:
        cells = []
        for arrangement in ARRANGEMENTS:
            a = r[arrangement]
            if a["ratio"] is None:
                cells.append(f"{a['ms']:.2f} | no pair in one phase")
                continue
            lo, hi = a["range"]
            cells.append(f"{a['ms']:.2f} | {a['ratio']:.3f} [{lo:.2f}-{hi:.2f}], "
                         f"{a['pairs']} of {repeats}")
        lines.append(f"| {r['subject']} | {r['batch']} | {r['mode'].replace('_', ' ')} | "
                     f"{r['alone_ms']:.2f} | " + " | ".join(cells) + f" | {r['alone_spread']:.3f} |")
    lines.append("")
    for arrangement in ARRANGEMENTS:
        worst = max(abs(r[arrangement]["ratio"] - 1) for r in rows
                    if r[arrangement]["ratio"] is not None)
        lines.append(f"Largest difference from alone, {arrangement}: {100 * worst:.1f}%.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--table", action="store_true",
                        help="write the table again from the committed JSON; no timing")
    parser.add_argument("--worker", nargs=4, metavar=("GRAPH", "CROPS", "SUBJECTS", "ISOLATE"))
    parser.add_argument("--phase", metavar="GRAPH", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase(Path(args.phase))))
        return
    if args.worker:
        graph, crops, subjects, isolate = args.worker
        print(json.dumps(bench(Path(graph), Path(crops), subjects.split(","), isolate == "1")))
        return
    results = HERE / "results"
    if args.table:
        kept = json.loads((results / "bench_isolation_cpu.json").read_text())
        machine, together, alone = kept["machine"], kept["together"], kept["alone"]
    else:
        machine, together, alone = measure(args.repeats)
    repeats = len(alone[SUBJECTS[0]])
    rows = rows_of(together, alone)
    (results / "bench_isolation_cpu.json").write_text(json.dumps(
        {"machine": machine, "rows": rows, "together": together, "alone": alone}, indent=1) + "\n")
    runs = [r for arrangement in together.values() for r in arrangement] + [
        r for subject in alone.values() for r in subject]
    text = markdown(machine, repeats, rows, runs)
    (results / "bench_isolation_cpu.md").write_text(text)
    print(text, end="")


def measure(repeats: int) -> tuple[str, dict, dict]:
    """Runs the arrangements and each subject alone, `repeats` times interleaved; returns the
    machine and the runs' p50s."""
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

        def child(*argv: str):
            out = subprocess.run([sys.executable, __file__, *argv], capture_output=True,
                                 text=True, check=True)
            return json.loads(out.stdout.strip().splitlines()[-1])

        probes = [child("--phase", str(graph))]

        def run(subjects, isolate: bool = True) -> dict:
            p50 = child("--worker", str(graph), str(crops), ",".join(subjects),
                        "1" if isolate else "0")
            probes.append(child("--phase", str(graph)))
            return {"p50": p50, "phase": probes[-2:]}

        together = {a: [] for a in ARRANGEMENTS}
        alone = {s: [] for s in SUBJECTS}
        for r in range(repeats):
            order = list(ARRANGEMENTS) if r % 2 == 0 else list(ARRANGEMENTS)[::-1]
            for arrangement in order:
                together[arrangement].append(run(SUBJECTS, arrangement == "isolated"))
            for s in SUBJECTS:
                got = run([s])
                alone[s].append({"p50": got["p50"][s], "phase": got["phase"]})
            print(f"repeat {r + 1} of {repeats} done", flush=True)
    return machine_label(), together, alone


if __name__ == "__main__":
    main()
