"""ONNX Runtime backend: the CUDA provider when present and asked for, else the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reid_trt.errors import MissingDependencyError


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(self, path: Path, device: str):
        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingDependencyError("onnxruntime", "ort", "running .onnx models") from None
        from reid_trt.contract import contract_of
        from reid_trt.export.api import load_onnx
        from reid_trt.export.precision import ort_disabled_optimizers
        from reid_trt.runtime.planning import device_index

        model = load_onnx(path)
        self.contract = contract_of(model, str(path))
        providers: list = ["CPUExecutionProvider"]
        self.device = "cpu"
        if device != "cpu" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": device_index(device)}))
            self.device = device
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # InferenceSession.run is thread-safe: no lock needed around it.
        self.session = ort.InferenceSession(model.SerializeToString(), options, providers=providers,
                                            disabled_optimizers=ort_disabled_optimizers(model))
        self.input = self.session.get_inputs()[0]
        batch = self.input.shape[0]
        self.static_batch = batch if isinstance(batch, int) else None
        self.min_batch, self.max_batch = 1, None
        self.input_dtype = np.float16 if self.input.type == "tensor(float16)" else None

    def run(self, batch: np.ndarray) -> np.ndarray:
        if self.input_dtype is not None:
            batch = batch.astype(self.input_dtype)
        return self.session.run(None, {self.input.name: batch})[0].astype(np.float32, copy=False)

    def compute_fn(self, batch: np.ndarray):
        """One inference on an already preprocessed batch, for timing. With the CUDA provider it
        includes the host<->device copies (ONNX Runtime makes them inside run)."""
        feed = {self.input.name: batch if self.input_dtype is None else batch.astype(self.input_dtype)}
        return lambda: self.session.run(None, feed)

    def device_memory_bytes(self) -> int | None:
        return None  # ONNX Runtime exposes no per-session figure

    def close(self) -> None:
        self.session = None
