"""The module that is traced: OSNet with its BatchNorms folded, normalised float N,3,H,W RGB in,
raw embeddings out. Every input format, the L2 normalisation, the tensor names and a static batch
are added to the traced graph afterwards (onnx_export.with_contract), so that one trace serves
every export of a checkpoint at a size."""

from __future__ import annotations

import torch
from torch import nn

from reid_trt.core.contract import Contract
from reid_trt.export.fold import fold_batchnorm


class ExportGraph(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = fold_batchnorm(model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def example_input(contract: Contract, batch: int = 2) -> torch.Tensor:
    return torch.randn(contract.input_shape(batch))
