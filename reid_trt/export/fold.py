"""Graph-ready copies of a model: BatchNorm folded away, preprocessing folded into the stem."""

from __future__ import annotations

import copy

import torch
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


@torch.no_grad()
def fold_pixel_input(model: nn.Module, mean, std, pixel_max: float = 255.0,
                     bgr: bool = False) -> torch.Tensor:
    """Makes the stem take pixel values (0..pixel_max, RGB or BGR); returns the per-channel
    shift to add before it.

    normalised_rgb[c] = (x[c'] / pixel_max - mean[c]) / std[c] = a[c] * (x[c'] + shift), with
    a = 1 / (pixel_max std), shift = -pixel_max mean and c' = 2 - c for BGR. The channel swap and
    the scale a go into the conv weights; the shift stays as one Add before the conv. That is
    exact even at the borders: the conv's zero padding sits where the normalised image is zero,
    just as in PyTorch.
    """
    conv = model.conv1.conv
    rgb_scale = 1.0 / (pixel_max * torch.tensor(std, dtype=conv.weight.dtype))
    weight = conv.weight * rgb_scale.view(1, 3, 1, 1)
    conv.weight.copy_(weight.flip(1) if bgr else weight)  # BGR: input channel 0 is now blue
    shift = -pixel_max * torch.tensor(mean, dtype=conv.weight.dtype)
    return (shift.flip(0) if bgr else shift).view(1, 3, 1, 1)
