"""Building blocks shared by both OSNet families.

Attribute names (conv, bn, conv1, conv2, gate, fc1, fc2, IN) are part of the checkpoint format:
they must stay exactly as torchreid names them, or its state dicts no longer load.
"""

from __future__ import annotations

import torch
from torch import nn


def _norm(channels: int, instance: bool) -> nn.Module:
    # torchreid's IN layers are affine and keep no running statistics.
    return nn.InstanceNorm2d(channels, affine=True) if instance else nn.BatchNorm2d(channels)


class ConvLayer(nn.Module):
    """k x k convolution, then BatchNorm (or InstanceNorm) and ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0,
                 instance_norm: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = _norm(cout, instance_norm)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class Conv1x1(ConvLayer):
    """Pointwise convolution, BatchNorm, ReLU."""

    def __init__(self, cin: int, cout: int):
        super().__init__(cin, cout, 1)


class Conv1x1Linear(nn.Module):
    """Pointwise convolution and (optionally) BatchNorm, no activation."""

    def __init__(self, cin: int, cout: int, bn: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout) if bn else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return self.bn(x) if self.bn is not None else x


class LightConv3x3(nn.Module):
    """Pointwise (linear) convolution, then depthwise 3x3, BatchNorm and ReLU."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False, groups=cout)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv2(self.conv1(x))))


class ChannelGate(nn.Module):
    """Squeeze-and-excitation style gate, shared by the streams of one block."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=True)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=True)
        self.gate_activation = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.fc2(self.relu(self.fc1(self.global_avgpool(x))))
        return x * self.gate_activation(w)


def transition(channels: int) -> nn.Sequential:
    """Pointwise conv and 2x2 average pooling between stages."""
    return nn.Sequential(Conv1x1(channels, channels), nn.AvgPool2d(2, stride=2))


def embedding_head(cin: int, dim: int) -> nn.Sequential:
    """torchreid's `fc`: Linear, BatchNorm1d, ReLU (the 512-d re-ID embedding)."""
    return nn.Sequential(nn.Linear(cin, dim), nn.BatchNorm1d(dim), nn.ReLU())


class OSNetBase(nn.Module):
    """What both families share: stem, head and the eval-mode forward returning the embedding."""

    conv1: ConvLayer
    fc: nn.Sequential

    def __init__(self, channels: tuple[int, int, int, int], conv1_instance_norm: bool,
                 feature_dim: int, num_classes: int | None):
        super().__init__()
        self.channels = channels
        self.feature_dim = feature_dim
        self.conv1 = ConvLayer(3, channels[0], 7, stride=2, padding=3,
                               instance_norm=conv1_instance_norm)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv5 = Conv1x1(channels[3], channels[3])
        self.fc = embedding_head(channels[3], feature_dim)
        # Only present to load training checkpoints strictly; never used by forward.
        self.classifier = nn.Linear(feature_dim, num_classes) if num_classes else None

    def stages(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        x = self.conv5(self.stages(x))
        # Global average pooling as one mean over H, W: exactly torchreid's pool + view, and it
        # exports as a single ReduceMean with no Shape/Gather/Concat/Reshape arithmetic.
        return self.fc(x.mean(dim=(2, 3)))
