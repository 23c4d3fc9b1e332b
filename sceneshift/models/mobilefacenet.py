"""MobileFaceNet with seed 001's attention module (Neri & Carli, ICME 2024 grand challenge).

* **Attention** (``attention: true``): two separable convolution blocks (depthwise 3x3 +
  pointwise, BN, ReLU) of 16 and 64 filters, a 1x1 projection to the input's channels and a
  sigmoid; the map multiplies the input element-wise. The authors' code put BN + ReLU before the
  sigmoid, which made every attention value >= 0.5 (sigmoid of a non-negative number); here the
  projection feeds the sigmoid directly, so the weights span (0, 1) (test).
* **MobileFaceNet** (Chen et al. 2018) as the seed's table: a 3x3 stride-2 convolution (64) and a
  3x3 depthwise convolution, inverted-residual bottlenecks ``(expansion t, channels c, repeats n,
  stride s)`` = (2, 128, 2, 2), (4, 128, 2, 2), (4, 128, 2, 2), a 1x1 convolution to 512, a global
  depthwise convolution (GDConv) and a linear 1x1 projection to the 128-d embedding (BN, no ReLU).
* **Length independence**: the authors hard-coded the GDConv kernel to the map of a 10-s clip
  ((8, 20) at 16 kHz). Here the last maps are first average-pooled to ``gd_size`` (default
  (8, 8): exactly the map of a 4-s clip of 128 x 126, so nothing is pooled there), then the GDConv
  with that kernel sees a fixed size whatever the clip length.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from . import MODELS


def _conv_bn(cin, cout, k=1, stride=1, groups=1, act=True, padding=None):
    padding = k // 2 if padding is None else padding
    layers = [nn.Conv2d(cin, cout, k, stride=stride, padding=padding, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.PReLU(cout)) if act else nn.Sequential(*layers)


class Attention(nn.Module):
    """Input ``(B, C, F, T)`` -> the input times a learned map in (0, 1) of the same shape."""

    def __init__(self, channels: int = 2, filters: tuple = (16, 64)):
        super().__init__()
        blocks, cin = [], channels
        for cout in filters:
            blocks += [nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False), nn.Conv2d(cin, cout, 1, bias=False),
                       nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.project = nn.Conv2d(cin, channels, 1)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.project(self.blocks(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights(x)


class Bottleneck(nn.Module):
    def __init__(self, cin, cout, stride, expansion):
        super().__init__()
        hidden = cin * expansion
        self.residual = stride == 1 and cin == cout
        self.body = nn.Sequential(_conv_bn(cin, hidden), _conv_bn(hidden, hidden, 3, stride, groups=hidden),
                                  _conv_bn(hidden, cout, act=False))

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


class MobileFaceNet(nn.Module):
    def __init__(self, in_channels: int = 2, attention: bool = True, embed_dim: int = 128,
                 bottlenecks: tuple = ((2, 128, 2, 2), (4, 128, 2, 2), (4, 128, 2, 2)), gd_size: tuple = (8, 8)):
        super().__init__()
        self.embed_dim, self.gd_size = embed_dim, tuple(gd_size)
        self.attention = Attention(in_channels) if attention else nn.Identity()
        self.stem = nn.Sequential(_conv_bn(in_channels, 64, 3, 2), _conv_bn(64, 64, 3, 1, groups=64))
        layers, cin = [], 64
        for t, c, n, s in bottlenecks:
            for i in range(n):
                layers.append(Bottleneck(cin, c, s if i == 0 else 1, t))
                cin = c
        self.bottlenecks = nn.Sequential(*layers)
        self.expand = _conv_bn(cin, 512)
        self.gdconv = _conv_bn(512, 512, self.gd_size, groups=512, act=False, padding=0)
        self.project = nn.Sequential(nn.Conv2d(512, embed_dim, 1, bias=False), nn.BatchNorm2d(embed_dim))

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        return self.expand(self.bottlenecks(self.stem(self.attention(x))))

    def pool(self, maps: torch.Tensor) -> torch.Tensor:
        if tuple(maps.shape[-2:]) != self.gd_size:
            maps = F.adaptive_avg_pool2d(maps, self.gd_size)
        return self.project(self.gdconv(maps)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.feature_maps(x))


@MODELS.register
def mobilefacenet(in_channels: int = 2, attention: bool = True, embed_dim: int = 128,
                  bottlenecks: list[list[int]] = [[2, 128, 2, 2], [4, 128, 2, 2], [4, 128, 2, 2]],  # noqa: B006
                  gd_size: tuple[int, int] = (8, 8)) -> MobileFaceNet:
    return MobileFaceNet(in_channels, attention, embed_dim, tuple(tuple(b) for b in bottlenecks), tuple(gd_size))
