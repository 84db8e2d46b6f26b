"""Timing hooks: one inference on an already preprocessed batch, per backend, and what device
memory it holds. They live here, on the benchmark side, so backends stay an app's API.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from reid_trt.runtime.backends.base import Backend


def compute_call(backend: Backend, batch: np.ndarray) -> Callable[[], object]:
    """A call that runs only the model on `batch`, staged where the backend computes.

    TensorRT: the batch is copied to the device once; the call runs the engine and waits for it.
    PyTorch: the batch is moved to the device once; the call runs forward and synchronises.
    ONNX Runtime: one `run` (with the CUDA provider it includes ORT's own copies).
    Triton: one request of the preprocessed batch.
    """
    if backend.name == "tensorrt":
        with backend.lock:
            backend.stage(batch)

        def execute():
            with backend.lock:
                backend.execute(batch.shape)

        return execute
    if backend.name == "torch":
        torch, x = backend.torch, backend.to_device(batch)
        if x.is_cuda:
            torch.cuda.reset_peak_memory_stats(x.device)

        def forward():
            with torch.inference_mode():
                backend.model(x)
            if x.is_cuda:
                torch.cuda.synchronize(x.device)

        return forward
    if backend.name == "onnxruntime":
        feed = backend.feed(batch)
        return lambda: backend.session.run(None, feed)
    return lambda: backend.run(batch)  # a served model: one request, the network included


def device_memory_bytes(backend: Backend) -> int | None:
    """Device memory the backend holds, where it tells (None on the CPU).

    TensorRT: an estimate of activations + the engine's serialised size (resident weights and
    kernels) + the I/O buffers. PyTorch on CUDA: peak allocated since the last compute_call."""
    if backend.name == "tensorrt":
        engine = backend.engine
        activations = (engine.get_device_memory_size_v2()
                       if hasattr(engine, "get_device_memory_size_v2") else engine.device_memory_size)
        return int(activations) + int(backend.manifest.engine_bytes) + backend.io_bytes
    if backend.name == "torch" and backend.device != "cpu":
        torch = backend.torch
        return int(torch.cuda.max_memory_allocated(torch.device(backend.device)))
    return None
