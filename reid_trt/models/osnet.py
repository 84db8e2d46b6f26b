"""OSNet and OSNet-IBN (torchreid's osnet.py family: blocks with conv2a..conv2d)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reid_trt.models.layers import (
    ChannelGate,
    Conv1x1,
    Conv1x1Linear,
    LightConv3x3,
    OSNetBase,
    transition,
)


class OSBlock(nn.Module):
    """Omni-scale residual block: four streams of 1-4 light 3x3 convs, fused by a shared gate."""

    def __init__(self, cin: int, cout: int, instance_norm: bool = False, reduction: int = 4):
        super().__init__()
        mid = cout // reduction
        self.conv1 = Conv1x1(cin, mid)
        self.conv2a = LightConv3x3(mid, mid)
        self.conv2b = nn.Sequential(*(LightConv3x3(mid, mid) for _ in range(2)))
        self.conv2c = nn.Sequential(*(LightConv3x3(mid, mid) for _ in range(3)))
        self.conv2d = nn.Sequential(*(LightConv3x3(mid, mid) for _ in range(4)))
        self.gate = ChannelGate(mid)
        self.conv3 = Conv1x1Linear(mid, cout)
        self.downsample = Conv1x1Linear(cin, cout) if cin != cout else None
        # IBN variant: InstanceNorm after the residual sum.
        self.IN = nn.InstanceNorm2d(cout, affine=True) if instance_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv1(x)
        streams = (self.conv2a, self.conv2b, self.conv2c, self.conv2d)
        x2 = sum(self.gate(stream(x1)) for stream in streams)
        identity = self.downsample(x) if self.downsample is not None else x
        out = self.conv3(x2) + identity
        if self.IN is not None:
            out = self.IN(out)
        return F.relu(out)


class OSNet(OSNetBase):
    def __init__(self, channels: tuple[int, int, int, int], ibn: bool = False,
                 feature_dim: int = 512, num_classes: int | None = None):
        super().__init__(channels, ibn, feature_dim, num_classes)
        c = channels
        self.conv2 = nn.Sequential(OSBlock(c[0], c[1], ibn), OSBlock(c[1], c[1], ibn),
                                   transition(c[1]))
        self.conv3 = nn.Sequential(OSBlock(c[1], c[2]), OSBlock(c[2], c[2]), transition(c[2]))
        self.conv4 = nn.Sequential(OSBlock(c[2], c[3]), OSBlock(c[3], c[3]))

    def stages(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv4(self.conv3(self.conv2(x)))
