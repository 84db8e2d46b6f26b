"""TensorRT-RTX engine builds on a machine without a GPU: time and size per variant and precision.

Run: .venv/bin/python benchmarks/engine_builds.py > benchmarks/results/engine_builds_cpu.md
osnet_x0_25 uses the real MSMT17 weights from ../shared/data; osnet_ain_x1_0 generated weights.
"""

import os
import tempfile
from pathlib import Path

from reid_trt.core.machine import machine_label
from reid_trt.demo import write_generated_checkpoint
from reid_trt.engine.build import engine_from_onnx
from reid_trt.export.api import ExportConfig, export_onnx

DATA = Path(os.environ.get("REID_TRT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def main() -> None:
    work = Path(tempfile.mkdtemp())
    sources = {"osnet_x0_25 (real, MSMT17)": DATA / "weights" / "osnet_x0_25_msmt17.pth",
               "osnet_ain_x1_0 (generated)": write_generated_checkpoint(
                   work / "ain.pth", "osnet_ain_x1_0")}
    print(f"Machine: {machine_label()}, no GPU\n")
    print("| model | precision | ONNX parity (min cosine) | engine MiB | build s | TensorRT |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, weights in sources.items():
        for precision in ("fp32", "fp16"):
            exported = export_onnx(weights, work / f"m.{precision}.onnx",
                                   ExportConfig(precision=precision))
            built = engine_from_onnx(exported.path, work / f"m.{precision}.plan")
            m = built.manifest
            print(f"| {label} | {precision} | {exported.parity.min_cosine:.6f} | "
                  f"{m.engine_bytes / 2**20:.1f} | {m.build_seconds:.1f} | {built.trt_label} |")


if __name__ == "__main__":
    main()
