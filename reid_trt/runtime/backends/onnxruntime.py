"""ONNX Runtime backend: the CUDA provider when asked for (and present), else the CPU."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from reid_trt.core.batching import BatchLimits
from reid_trt.core.contract import contract_of
from reid_trt.core.errors import ReidTrtError
from reid_trt.core.machine import int8_kernels_unsafe
from reid_trt.core.onnxio import has_cuda_provider, load_onnx, ort_session
from reid_trt.core.options import Device, InputFormat
from reid_trt.core.pixel_input import with_uint8_bgr_input
from reid_trt.core.threads import RUNTIME, ThreadSettings


class OnnxRuntimeBackend:
    name = "onnxruntime"
    accepts_device_tensors = False

    def __init__(self, path: Path, device: Device, device_chosen: bool = True, graph=None,
                 threads: ThreadSettings = RUNTIME):
        """`device_chosen`: the caller asked for `device` (a CUDA device without ONNX Runtime's
        CUDA provider is then an error, not a silent fallback to the CPU). `graph`: the .onnx at
        `path`, where the caller has loaded it already. `threads`: how the CPU worker threads
        wait and how many there are (core/threads.py)."""
        model = load_onnx(path, "model") if graph is None else graph
        self.model_contract = self.contract = contract_of(model, str(path))
        cuda = device.is_cuda and has_cuda_provider()
        if device.is_cuda and not cuda and device_chosen:
            raise ReidTrtError(f"device '{device}': this onnxruntime has no CUDA provider; "
                               "pip install onnxruntime-gpu, or pass device='cpu'")
        self.device = str(device) if cuda else "cpu"
        # InferenceSession.run is thread-safe: no lock needed around it.
        # INT8 on an x86 CPU without VNNI/AMX: ONNX Runtime's fused integer kernels saturate
        # there, so the Q/DQ pairs run as written, in float (what TensorRT computes).
        exact = not cuda and self.contract.precision == "int8" and int8_kernels_unsafe()
        # On the CPU, an FP32 graph takes the resized uint8 batch and normalises in its own
        # threads (core/pixel_input.py), as the OpenVINO backend does; `contract` then says so,
        # and the file's own contract is `model_contract`.
        takes_uint8 = None if cuda else with_uint8_bgr_input(model, self.contract)
        if takes_uint8 is not None:
            model = takes_uint8
            self.contract = replace(self.contract, input_format=InputFormat.UINT8_BGR)
        self.session = ort_session(model, device.index if cuda else None, str(path), threads,
                                   int8_in_float=exact)
        self.input = self.session.get_inputs()[0]
        batch = self.input.shape[0]
        self.limits = BatchLimits(static=batch if isinstance(batch, int) else None)
        self.input_dtype = np.float16 if self.input.type == "tensor(float16)" else None

    def feed(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        if self.input_dtype is not None:
            batch = batch.astype(self.input_dtype, copy=False)
        return {self.input.name: batch}

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, self.feed(batch))[0].astype(np.float32, copy=False)

    def compute_call(self, batch: np.ndarray):
        """One session run on the fed batch (with the CUDA provider it includes ORT's copies)."""
        feed = self.feed(batch)
        return lambda: self.session.run(None, feed)

    def device_memory_bytes(self) -> None:
        return None  # ONNX Runtime does not tell

    def run_device(self, tensor) -> np.ndarray:
        raise ReidTrtError("the ONNX Runtime backend takes host arrays; pass tensor.cpu().numpy()")

    def close(self) -> None:
        self.session = None
