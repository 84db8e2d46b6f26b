"""PyTorch backend: the checkpoint itself, for reference and for machines without an engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reid_trt.contract import Contract
from reid_trt.errors import MissingDependencyError, ReidTrtError


class TorchBackend:
    name = "torch"

    def __init__(self, path: Path, device: str, variant: str = "auto", trust: bool = False):
        try:
            import torch
        except ImportError:
            raise MissingDependencyError("torch", "export", "running .pth checkpoints") from None
        from reid_trt.models.checkpoint import load_model

        if device != "cpu" and not torch.cuda.is_available():
            raise ReidTrtError(f"device '{device}': this torch has no CUDA device; "
                               "pass device='cpu'")
        self.torch = torch
        self.device = device
        loaded = load_model(path, variant, trust=trust)
        self.model = loaded.model.to(device)
        self.contract = Contract(variant=loaded.variant)
        self.static_batch, self.min_batch, self.max_batch = None, 1, None

    def run(self, batch: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            out = self.model(self.torch.from_numpy(batch).to(self.device))
        return out.float().cpu().numpy()

    def run_tensor(self, batch):
        """A preprocessed torch tensor (N,3,H,W float) already on this backend's device."""
        with self.torch.inference_mode():
            return self.model(batch.to(self.device, self.torch.float32)).float()

    def compute_fn(self, batch: np.ndarray):
        """One forward pass on a batch already on the device, synchronised, for timing."""
        torch = self.torch
        x = torch.from_numpy(batch).to(self.device)
        cuda = x.is_cuda

        def forward():
            with torch.inference_mode():
                self.model(x)
            if cuda:
                torch.cuda.synchronize(x.device)

        if cuda:
            torch.cuda.reset_peak_memory_stats(x.device)
        return forward

    def device_memory_bytes(self) -> int | None:
        """Peak CUDA memory torch allocated since the last compute_fn (None on the CPU)."""
        if self.device == "cpu":
            return None
        return int(self.torch.cuda.max_memory_allocated(self.torch.device(self.device)))

    def close(self) -> None:
        self.model = None
