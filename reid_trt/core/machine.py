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
# The instruction sets that decide which kernels the CPU runtimes pick, and so every timing and
# the CPU backend choice: a figure names them beside the CPU's name.
KERNEL_CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16",
                    "amx_int8", "amx_fp16", "asimd", "sve")


def _cpuinfo_field(name: str) -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == name:
                return value.strip()
    except OSError:
        pass
    return None


def cpu_flags() -> list[str]:
    """Which of KERNEL_CPU_FLAGS this CPU has (empty where /proc/cpuinfo does not say)."""
    have = set((_cpuinfo_field("flags") or _cpuinfo_field("Features") or "").split())
    return [f for f in KERNEL_CPU_FLAGS if f in have]


def cpu_int8_flags() -> list[str]:
    """Which of INT8_CPU_FLAGS this CPU has (empty elsewhere than Linux x86)."""
    return [f for f in cpu_flags() if f in INT8_CPU_FLAGS]


def cpu_model() -> str:
    """The CPU's name with its family and model numbers where the name alone is vague (a VM's
    'AMD EPYC' is a Zen 3, 4 or 5 by family 25 model 1, family 25 model 17, family 26)."""
    family, model = _cpuinfo_field("cpu family"), _cpuinfo_field("model")
    numbers = f" (family {family}, model {model})" if family and model else ""
    return cpu_name() + numbers


def machine_label() -> str:
    """What every figure names: the CPU, its family and model, the kernel instruction sets it
    has and the CPUs this process may use, e.g. 'AMD EPYC (family 25, model 1), avx2 fma, 2
    CPUs'."""
    flags = " ".join(cpu_flags()) or "no AVX2"
    return f"{cpu_model()}, {flags}, {cpu_count()} CPUs"


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
