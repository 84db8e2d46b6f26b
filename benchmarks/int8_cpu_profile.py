"""Where INT8 wins or loses on this CPU (issue #28): per-layer profiles of FP32 against INT8 Q/DQ
graphs in OpenVINO (performance counters) and ONNX Runtime (its profiler), summed by layer kind.

Models: the real osnet_x0_25 (MSMT17) and osnet_x1_0 with generated weights (speed does not
depend on the weights). INT8: every Conv and Gemm quantized (symmetric per-channel weights,
per-tensor activations, min-max ranges on 64 real MOT17 boxes): the most INT8 work the graph can
hold, so the fastest INT8 can be; reid-export calibrate keeps fewer layers INT8. Writes
results/int8_cpu_profile.md (--out: another file, for another machine).

    .venv/bin/python benchmarks/int8_cpu_profile.py [--out benchmarks/results/NAME.md]
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnx

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("REID_TRT_DATA", HERE.parent.parent / "shared" / "data"))
BATCH = 32


def graphs(work: Path) -> dict[str, tuple[Path, Path]]:
    """model -> (fp32 graph, all-conv INT8 Q/DQ graph)."""
    from reid_trt.calibration.placement import activation_tensors
    from reid_trt.calibration.quantize import QUANTIZED_OPS, quantize
    from reid_trt.calibration.ranges import Method, tensor_ranges
    from reid_trt.core.preprocess import preprocess_numpy
    from reid_trt.data.mot import mot_crops
    from reid_trt.demo import write_generated_checkpoint
    from reid_trt.export.api import export_onnx

    crops = mot_crops(DATA / "reid/mot17-mini/train/MOT17-04-FRCNN")[0][:64]
    batches = [preprocess_numpy(crops[i:i + 32]) for i in (0, 32)]
    write_generated_checkpoint(work / "osnet_x1_0.pth", "osnet_x1_0")
    out = {}
    for name, weights in (("osnet_x0_25 (real MSMT17)", DATA / "weights/osnet_x0_25_msmt17.pth"),
                          ("osnet_x1_0 (generated)", work / "osnet_x1_0.pth")):
        fp32 = export_onnx(weights, work / f"{weights.stem}.onnx").path
        model = onnx.load(fp32)
        ranges = tensor_ranges(model, batches, Method.MINMAX, activation_tensors(model),
                               QUANTIZED_OPS)
        int8 = work / f"{weights.stem}.int8.onnx"
        onnx.save(quantize(model, ranges), int8)
        out[name] = (fp32, int8)
    return out


def median_ms(fn, runs: int = 15) -> float:
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def openvino_profile(graph: Path, x: np.ndarray) -> tuple[float, dict[str, float]]:
    """(median ms of a plain call, layer kind -> ms in one profiled call). A kind is OpenVINO's
    node type with its kernel (e.g. Convolution/jit_avx2_I8 or brgconv_avx2_FP32)."""
    import openvino as ov

    core = ov.Core()
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32",
              "ENABLE_CPU_PINNING": False}
    plain = core.compile_model(str(graph), "CPU", config).create_infer_request()
    ms = median_ms(lambda: plain.infer({0: x}))
    profiled = core.compile_model(str(graph), "CPU", config | {"PERF_COUNT": True}) \
        .create_infer_request()
    for _ in range(3):
        profiled.infer({0: x})
    kinds: dict[str, float] = defaultdict(float)
    for info in profiled.get_profiling_info():
        if info.real_time.total_seconds() > 0:
            kinds[f"{info.node_type} ({info.exec_type})"] += 1e3 * info.real_time.total_seconds()
    return ms, dict(kinds)


def ort_profile(graph: Path, x: np.ndarray, work: Path) -> tuple[float, dict[str, float]]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.add_session_config_entry("session.force_spinning_stop", "1")
    session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    ms = median_ms(lambda: session.run(None, {name: x}))
    options.enable_profiling = True
    options.profile_file_prefix = str(work / graph.stem)
    profiled = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    for _ in range(3):
        profiled.run(None, {name: x})
    events = json.loads(Path(profiled.end_profiling()).read_text())
    kinds: dict[str, float] = defaultdict(float)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            kinds[e["args"]["op_name"]] += e["dur"] / 1e3 / 3  # per call
    return ms, dict(kinds)


def table(title: str, fp32: dict[str, float], int8: dict[str, float], top: int = 10) -> list[str]:
    lines = [f"#### {title}", "", "| layer kind | FP32 ms | INT8 ms |", "| --- | --- | --- |"]
    kinds = sorted(set(fp32) | set(int8), key=lambda k: -(fp32.get(k, 0) + int8.get(k, 0)))
    for k in kinds[:top]:
        lines.append(f"| {k} | {fp32.get(k, 0):.2f} | {int8.get(k, 0):.2f} |")
    rest = kinds[top:]
    lines.append(f"| {len(rest)} other kinds | {sum(fp32.get(k, 0) for k in rest):.2f} | "
                 f"{sum(int8.get(k, 0) for k in rest):.2f} |")
    lines.append(f"| **sum of layers** | **{sum(fp32.values()):.2f}** | "
                 f"**{sum(int8.values()):.2f}** |")
    return lines + [""]


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "int8_cpu_profile.md")
    out = parser.parse_args().out
    from reid_trt.core.machine import cpu_int8_flags, machine_label
    from reid_trt.core.preprocess import preprocess_numpy
    from reid_trt.data.mot import mot_crops

    crops = mot_crops(DATA / "reid/mot17-mini/train/MOT17-04-FRCNN")[0][:BATCH]
    x = preprocess_numpy(crops)
    flags = cpu_int8_flags()
    lines = [f"# INT8 against FP32 on this CPU, layer by layer: {machine_label()}",
             "", f"INT8 instructions: {', '.join(flags) if flags else 'none (no VNNI, no AMX)'}. "
             "Command: `.venv/bin/python benchmarks/int8_cpu_profile.py`; batch "
             f"{BATCH} of real MOT17 boxes; every Conv/Gemm INT8 (the upper bound of INT8 work). "
             "Whole-call figures are medians of 15 plain calls; per-kind figures come from one "
             "profiled call (profiling adds its own overhead).", ""]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for model, (fp32, int8) in graphs(work).items():
            ov32, ov32_kinds = openvino_profile(fp32, x)
            ov8, ov8_kinds = openvino_profile(int8, x)
            ort32, ort32_kinds = ort_profile(fp32, x, work)
            ort8, ort8_kinds = ort_profile(int8, x, work)
            lines += [f"### {model}", "",
                      "| runtime | FP32 ms | INT8 ms | INT8 speed-up |", "| --- | --- | --- | --- |",
                      f"| OpenVINO | {ov32:.1f} | {ov8:.1f} | {ov32 / ov8:.2f}x |",
                      f"| ONNX Runtime | {ort32:.1f} | {ort8:.1f} | {ort32 / ort8:.2f}x |", ""]
            lines += table(f"{model}: OpenVINO, by node type (kernel)", ov32_kinds, ov8_kinds)
            lines += table(f"{model}: ONNX Runtime, by operator", ort32_kinds, ort8_kinds)
            print("\n".join(lines), flush=True)
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
