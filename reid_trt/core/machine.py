"""What machine this is, as benchmarks, the CPU backend choice and the engine build see it."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# Instructions that make INT8 convolutions fast on x86 CPUs (oneDNN, which OpenVINO and ONNX
# Runtime use): without them INT8 runs on AVX2 multiply-adds and rarely beats FP32.
INT8_CPU_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def cpu_int8_flags() -> list[str]:
    """Which of INT8_CPU_FLAGS this CPU has (empty elsewhere than Linux x86)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return [f for f in INT8_CPU_FLAGS if f in have]
    except OSError:
        pass
    return []


def int8_kernels_unsafe() -> bool:
    """An x86 CPU without VNNI or AMX, where OpenVINO's CPU INT8 kernels (AVX2 multiply-adds into
    saturating 16-bit sums) were measured wrong on reid-trt's Q/DQ graphs: mean cosine 0.55-0.58
    to FP32 on a 2-core AMD EPYC (Zen 3), against 0.9996 with VNNI (issue #28)."""
    return platform.machine().lower() in ("x86_64", "amd64") and not cpu_int8_flags()


def cpu_count() -> int:
    """Logical CPUs this process may run on (a container's or taskset's share, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def cuda_present() -> bool:
    """Whether a CUDA device answers (through cuda-python; False without it or a driver)."""
    try:
        from cuda.bindings import runtime as cudart

        err, count = cudart.cudaGetDeviceCount()
        return int(err) == 0 and count > 0
    except Exception:  # no cuda-python or no driver: the CPU it is
        return False


def cuda_compute_capability(index: int = 0) -> tuple[int, int] | None:
    """(major, minor) of CUDA device `index`, or None where none answers."""
    try:
        from cuda.bindings import runtime as cudart

        err, props = cudart.cudaGetDeviceProperties(index)
        return (int(props.major), int(props.minor)) if int(err) == 0 else None
    except Exception:
        return None
