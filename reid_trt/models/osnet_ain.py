"""OSNet-AIN (torchreid's osnet_ain.py family: streams in a ModuleList, IN inside the residual)."""

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


class LightConvStream(nn.Module):
    def __init__(self, cin: int, cout: int, depth: int):
        super().__init__()
        convs = [LightConv3x3(cin, cout)] + [LightConv3x3(cout, cout) for _ in range(depth - 1)]
        self.layers = nn.Sequential(*convs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class OSBlockAIN(nn.Module):
    """Omni-scale block; with `instance_norm` the residual branch ends in InstanceNorm, not BN."""

    def __init__(self, cin: int, cout: int, instance_norm: bool, reduction: int = 4,
                 streams: int = 4):
        super().__init__()
        mid = cout // reduction
        self.conv1 = Conv1x1(cin, mid)
        self.conv2 = nn.ModuleList(LightConvStream(mid, mid, t) for t in range(1, streams + 1))
        self.gate = ChannelGate(mid)
        self.conv3 = Conv1x1Linear(mid, cout, bn=not instance_norm)
        self.downsample = Conv1x1Linear(cin, cout) if cin != cout else None
        self.IN = nn.InstanceNorm2d(cout, affine=True) if instance_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv1(x)
        x3 = self.conv3(sum(self.gate(stream(x1)) for stream in self.conv2))
        if self.IN is not None:
            x3 = self.IN(x3)
        identity = self.downsample(x) if self.downsample is not None else x
        return F.relu(x3 + identity)


# Which blocks of each stage carry InstanceNorm (torchreid's osnet_ain_x1_0 layout).
AIN_BLOCKS = ((True, True), (False, True), (True, False))


class OSNetAIN(OSNetBase):
    def __init__(self, channels: tuple[int, int, int, int], feature_dim: int = 512,
                 num_classes: int | None = None):
        super().__init__(channels, True, feature_dim, num_classes)

        def stage(cin: int, cout: int, instance_norm: tuple[bool, bool]) -> nn.Sequential:
            first, second = instance_norm
            return nn.Sequential(OSBlockAIN(cin, cout, first), OSBlockAIN(cout, cout, second))

        c = channels
        self.conv2 = stage(c[0], c[1], AIN_BLOCKS[0])
        self.pool2 = transition(c[1])
        self.conv3 = stage(c[1], c[2], AIN_BLOCKS[1])
        self.pool3 = transition(c[2])
        self.conv4 = stage(c[2], c[3], AIN_BLOCKS[2])

    def stages(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv4(self.pool3(self.conv3(self.pool2(self.conv2(x)))))
