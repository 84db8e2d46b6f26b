"""The module that is exported: folded OSNet plus optional input handling and L2 normalisation."""

from __future__ import annotations

import torch
from torch import nn

from reid_trt.core import defaults
from reid_trt.core.contract import Contract
from reid_trt.export.fold import fold_batchnorm, fold_pixel_input


class ExportGraph(nn.Module):
    def __init__(self, model: nn.Module, contract: Contract):
        super().__init__()
        self.model = fold_batchnorm(model)
        self.uint8_bgr = contract.uint8_input
        self.pixels = contract.uint8_input or contract.pixel_scale is not None
        self.normalize = contract.normalized
        if self.pixels:  # normalisation folded into the stem: one Add of a shift before it
            pixel_max = 255.0 if self.uint8_bgr else 255.0 * contract.pixel_scale
            self.register_buffer("shift", fold_pixel_input(
                self.model, contract.mean, contract.std, pixel_max, bgr=self.uint8_bgr))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.uint8_bgr:
            # N,H,W,3 uint8 BGR (OpenCV crops) -> N,3,H,W float; the rest is folded into conv1.
            # Cast before Transpose: TensorRT allows UINT8 only into a Cast. contiguous(): with
            # channels-last strides the exporter would emit as_strided gathers.
            x = x.float().permute(0, 3, 1, 2).contiguous()
        if self.pixels:
            x = x + self.shift
        v = self.model(x)
        if self.normalize:
            v = v / torch.linalg.vector_norm(v, dim=1, keepdim=True).clamp_min(defaults.L2_EPS)
        return v


def example_input(contract: Contract, batch: int = 2) -> torch.Tensor:
    shape = contract.input_shape(batch)
    if contract.input_format == "uint8-bgr":
        return torch.randint(0, 256, shape, dtype=torch.uint8)
    return torch.randn(shape)
