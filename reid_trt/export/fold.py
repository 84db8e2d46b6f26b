"""Graph-ready copies of a model: BatchNorm folded away (the input formats are folded into the
stem of the traced graph, core/pixel_input.py)."""

from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from reid_trt.models.layers import Conv1x1Linear, ConvLayer, LightConv3x3


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of `model` (eval mode) with every BatchNorm folded into the conv or linear before it.

    Done in PyTorch rather than left to the exporter, so that the graph is BN-free whichever
    exporter or optimiser runs, and the fc's BatchNorm1d (which exporters leave alone) goes too.
    """
    model = copy.deepcopy(model).eval()
    for m in model.modules():
        if isinstance(m, (ConvLayer, Conv1x1Linear)) and isinstance(m.bn, nn.BatchNorm2d):
            m.conv, m.bn = fuse_conv_bn_eval(m.conv, m.bn), nn.Identity()
        elif isinstance(m, LightConv3x3):
            # The BN follows the depthwise conv, the second of the pair.
            m.conv2, m.bn = fuse_conv_bn_eval(m.conv2, m.bn), nn.Identity()
    linear, bn, relu = model.fc
    model.fc = nn.Sequential(fuse_linear_bn_eval(linear, bn), relu)
    remaining = [n for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if remaining:  # a new layer type that this function does not know yet
        raise RuntimeError(f"BatchNorm left unfolded in {remaining}")
    return model
