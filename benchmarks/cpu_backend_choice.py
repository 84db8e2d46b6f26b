"""Embedder("model.onnx") with defaults against the fastest installed CPU path, in one run.

For the real osnet_x0_25 (MSMT17) as an FP32 graph and as the calibrated INT8 Q/DQ graph: the
default Embedder (no backend named: it measures ONNX Runtime and OpenVINO on first load and keeps
the faster, runtime/cpu_choice.py), and each backend forced, timed end to end (crops in,
embeddings out) on real MOT17 ground-truth boxes at batch 1 and 32, in interleaved rounds. The
target (#21): the default within 10% of the fastest at both batch sizes. Also the first load's
cost (the probe) against a remembered load.

Run: .venv/bin/python benchmarks/cpu_backend_choice.py [--int8 osnet.int8.onnx] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from publish import publish  # benchmarks/publish.py

DATA = Path(os.environ.get("REID_TRT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
WEIGHTS = DATA / "weights" / "osnet_x0_25_msmt17.pth"
MOT = DATA / "reid" / "mot17-mini"
BATCHES = (1, 32)


def measure_graph(graph: Path, crops: list, config) -> tuple[list[str], bool]:
    """The default Embedder against each backend forced, timed by reid-bench's own interleaved
    rounds (bench/timing.py); end-to-end p50 per batch size."""
    from reid_trt.bench.subjects import Subject
    from reid_trt.bench.timing import time_subjects
    from reid_trt.runtime.embedder import Embedder

    start = time.perf_counter()
    default = Embedder(graph)  # a fresh record: this load measures
    first_load = time.perf_counter() - start
    start = time.perf_counter()
    Embedder(graph).close()  # remembered
    remembered = time.perf_counter() - start
    subjects = [Subject("Embedder(graph) default", "subject", graph, default),
                Subject("backend=onnxruntime", "subject", graph,
                        Embedder(graph, backend="onnxruntime")),
                Subject("backend=openvino", "subject", graph, Embedder(graph, backend="openvino"))]
    time_subjects(subjects, crops, config, lambda what, done: None)
    ms = {s.label: {row.batch: row.end_to_end.p50_ms for row in s.latency}
          for s in subjects}
    fastest = {b: min(ms[s.label][b] for s in subjects[1:]) for b in BATCHES}
    ratios = {b: ms[subjects[0].label][b] / fastest[b] for b in BATCHES}
    lines = [f"### {graph.name} ({default.contract.precision})", "",
             f"Default chose **{default.cpu_choice}**.", "",
             f"First load (measures both) {first_load:.2f} s; remembered load {remembered:.2f} s.",
             "", "| subject | batch 1 p50 ms | batch 32 p50 ms |", "| --- | --- | --- |"]
    lines += [f"| {s.label} | {ms[s.label][1]:.2f} | {ms[s.label][32]:.2f} |" for s in subjects]
    lines += [f"| default / fastest | {ratios[1]:.3f} | {ratios[32]:.3f} |", ""]
    for s in subjects:
        s.embedder.close()
    return lines, all(r <= 1.10 for r in ratios.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--int8", type=Path, help="a calibrated Q/DQ graph (default: calibrate one)")
    parser.add_argument("--runs", type=int, default=30, help="timed calls per subject and batch")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    os.environ.pop("REID_TRT_CPU_BACKEND", None)

    import onnxruntime
    import openvino

    from reid_trt.bench.crops import bench_crops
    from reid_trt.bench.subjects import BenchConfig
    from reid_trt.calibration.api import CalibrationConfig, calibrate_onnx, source_graph
    from reid_trt.core.machine import machine_label
    from reid_trt.export.api import ExportConfig, export_onnx

    config = BenchConfig(batches=BATCHES, runs=args.runs, rounds=args.rounds, crops_dir=MOT,
                         num_crops=64)
    crops, crops_note = bench_crops(config)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["REID_TRT_CACHE_DIR"] = str(folder / "cache")  # nothing remembered yet
        fp32 = export_onnx(WEIGHTS, folder / "osnet.onnx", ExportConfig()).path
        int8 = args.int8
        if int8 is None:
            source, sha, _ = source_graph(None, WEIGHTS)
            int8 = calibrate_onnx(source, sha, MOT, folder / "osnet.int8.onnx",
                                  CalibrationConfig(unquantized="fp32")).path
        lines = [f"# Embedder's CPU backend choice: {machine_label()}", "",
                 f"Command: `.venv/bin/python benchmarks/cpu_backend_choice.py` "
                 f"(onnxruntime {onnxruntime.__version__}, openvino {openvino.__version__.split('-')[0]}; "
                 f"real osnet_x0_25 MSMT17; {crops_note.split(' from ')[0]} from MOT17-mini; "
                 f"end to end, p50 of {args.runs} calls per subject and batch in {args.rounds} "
                 "interleaved rounds, timed as reid-bench times them).", ""]
        met = []
        for graph in (fp32, int8):
            part, ok = measure_graph(graph, crops, config)
            lines += part
            met.append(ok)
    lines.append(f"Within 10% of the fastest at batch 1 and 32: {'yes' if all(met) else 'NO'}.")
    publish(lines, args.out, "cpu_backend_choice_cpu.md")


if __name__ == "__main__":
    main()
