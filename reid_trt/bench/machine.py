"""The machine a benchmark ran on, as its report names it."""

from __future__ import annotations

import platform
import sys

import numpy as np

from reid_trt.bench.subjects import Subject
from reid_trt.core.machine import cpu_count, cpu_flags, cpu_model, machine_label
from reid_trt.core.options import parse_device
from reid_trt.core.trt_compat import loaded_trt


def machine_info(subjects: list[Subject]) -> dict:
    # The CPU's family, model and instruction sets decide which kernels every CPU runtime runs:
    # a figure without them cannot be compared with another machine's.
    info = {"cpu": cpu_model(), "cpu_flags": cpu_flags(), "cpu_count": cpu_count(),
            "machine": machine_label(), "os": platform.platform(),
            "python": platform.python_version(), "numpy": np.__version__}
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    openvino = sys.modules.get("openvino")
    if openvino is not None:
        info["openvino"] = openvino.__version__
    torch = sys.modules.get("torch")  # loaded by a PyTorch subject; never imported for this
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    for trt in loaded_trt():  # loaded in this process (by an engine subject); never for this
        info["tensorrt"] = trt.label
    for s in subjects:
        if s.embedder.backend.device.startswith("cuda"):
            info["gpu"] = _gpu_name(s.embedder.backend.device)
    return info


def _gpu_name(device: str) -> str | None:
    try:
        from cuda.bindings import runtime as cudart

        err, props = cudart.cudaGetDeviceProperties(parse_device(device).index)
        return props.name.decode().rstrip("\x00") if int(err) == 0 else None
    except Exception:  # informational only
        return None
