"""What every backend provides: the contract `Embedder` is written against.

Backends run a batch already preprocessed into the graph's input format and return (N, D)
float32. They know nothing of crops, chunking or L2 normalisation (Embedder does that). Those that
can time their compute alone, staged where they compute, are also `Profiled` (reid-bench's
compute columns and device memory); any other backend is timed by `run`. Those fed otherwise
than their model file says are also `PreprocessingCompiledIn`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from reid_trt.core.batching import BatchLimits
from reid_trt.core.contract import Contract


@runtime_checkable
class Backend(Protocol):
    name: str  # "tensorrt", "onnxruntime" or "torch"
    device: str  # "cpu" or "cuda:N": where it actually runs
    contract: Contract  # how to feed it
    limits: BatchLimits  # batch sizes it can run
    accepts_device_tensors: bool  # run_device takes a torch CUDA tensor in place

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, ...) in the graph's input layout -> (N, D) float32; N within `limits`."""
        ...

    def run_device(self, tensor) -> np.ndarray:
        """A torch CUDA tensor in the input layout -> (N, D) float32, with no host round trip.
        Only called when `accepts_device_tensors`."""
        ...

    def close(self) -> None:
        """Frees what the backend holds; safe to call twice."""
        ...


@runtime_checkable
class Profiled(Protocol):
    def compute_call(self, batch: np.ndarray) -> Callable[[], object]:
        """A call that runs only the model on `batch`, staged once where the backend computes
        (device buffers, tensors) and waiting for the result."""
        ...

    def device_memory_bytes(self) -> int | None:
        """Device memory the backend holds, where it can tell (None on the CPU)."""
        ...


@runtime_checkable
class PreprocessingCompiledIn(Protocol):
    """A backend that compiled part of the preprocessing into the model it runs (OpenVINO; ONNX
    Runtime on the CPU takes the resized uint8 batch): `contract` says how it is fed,
    `model_contract` what the model file itself states."""

    model_contract: Contract
