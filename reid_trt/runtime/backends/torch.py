"""PyTorch backend: the checkpoint itself, for reference and for machines without an engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reid_trt.core.batching import BatchLimits
from reid_trt.core.contract import Contract
from reid_trt.core.errors import MissingDependencyError, ReidTrtError
from reid_trt.core.options import Device


class TorchBackend:
    name = "torch"
    limits = BatchLimits()

    def __init__(self, path: Path, device: Device, variant: str = "auto", trust: bool = False):
        try:
            import torch
        except ImportError:
            raise MissingDependencyError("torch", "export", "running .pth checkpoints") from None
        from reid_trt.models.checkpoint import load_model

        if device.is_cuda and not torch.cuda.is_available():
            raise ReidTrtError(f"device '{device}': this torch has no CUDA device; "
                               "pass device='cpu'")
        if device.is_cuda and device.index >= torch.cuda.device_count():
            raise ReidTrtError(f"device '{device}': this machine has {torch.cuda.device_count()} "
                               "CUDA devices")
        self.torch = torch
        self.device = str(device)
        self.accepts_device_tensors = device.is_cuda
        loaded = load_model(path, variant, trust=trust)
        self.model = loaded.model.to(self.device)
        self.contract = Contract(variant=loaded.variant)

    def to_device(self, batch: np.ndarray):
        return self.torch.from_numpy(batch).to(self.device)

    def run(self, batch: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            out = self.model(self.to_device(batch))
        return out.float().cpu().numpy()

    def run_device(self, tensor) -> np.ndarray:
        """A preprocessed torch tensor (N,3,H,W float), moved to this backend's device if needed."""
        with self.torch.inference_mode():
            return self.model(tensor.to(self.device, self.torch.float32)).float().cpu().numpy()

    def compute_call(self, batch: np.ndarray):
        """The batch moved to the device once; the call runs forward and synchronises."""
        torch, x = self.torch, self.to_device(batch)
        if x.is_cuda:
            torch.cuda.reset_peak_memory_stats(x.device)

        def forward():
            with torch.inference_mode():
                self.model(x)
            if x.is_cuda:
                torch.cuda.synchronize(x.device)

        return forward

    def device_memory_bytes(self) -> int | None:
        """Peak CUDA memory allocated since the last compute_call (None on the CPU)."""
        if self.device == "cpu":
            return None
        return int(self.torch.cuda.max_memory_allocated(self.torch.device(self.device)))

    def close(self) -> None:
        self.model = None
