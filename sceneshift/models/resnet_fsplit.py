"""Two-path frequency-split ResNet (McDonnell & Gao, ICASSP 2020), the "Resnet" of Hu et al. (seed 003).

The mel axis is cut into a low and a high half, each processed by its own stack of
pre-activation residual blocks; the two are joined again along frequency only at the end.
Why: low and high bands of a scene have different statistics (and different device
colouring), and separate paths keep one band's filters from having to fit the other.
The network never pools along frequency (every stride is along time only), which keeps its
last feature maps at the input's mel resolution - that is what makes its class activation
maps readable (the paper only shows CAMs of this model).

Layout, frequency first ``(batch, channels, mel, frames)``:
  per path: conv 3x3 (time stride 2) -> ``stages`` stages of ``blocks`` residual blocks
  (BN-ReLU-conv3x3 twice; the first block of each stage after the first halves time and doubles
  channels; its shortcut averages over time and zero-pads the new channels, so shortcuts carry no
  weights) -> concatenate paths along frequency -> BN-ReLU-conv1x1 to ``embed_dim`` -> BN-ReLU.
The embedding is the global average of those last maps, so with a linear head the class
activation map is exactly ``head.weight[k] . feature_maps``.
``width`` is the first stage's channel count (the paper's models are about 3 M parameters per
path at width 24-28 with 128 mels; small widths make a model that trains on a laptop CPU).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import MODELS


class PreActBlock(nn.Module):
    def __init__(self, cin: int, cout: int, time_stride: int):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, stride=(1, time_stride), padding=1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.time_stride, self.extra = time_stride, cout - cin

    def forward(self, x):
        y = self.conv1(F.relu(self.bn1(x)))
        y = self.conv2(F.relu(self.bn2(y)))
        short = x
        if self.time_stride > 1:
            short = F.avg_pool2d(short, (1, 3), stride=(1, self.time_stride), padding=(0, 1), count_include_pad=False)
        if self.extra:
            short = F.pad(short, (0, 0, 0, 0, 0, self.extra))
        return y + short[..., :y.shape[-1]]


def _path(in_channels: int, width: int, stages: int, blocks: int) -> nn.Sequential:
    layers = [nn.Conv2d(in_channels, width, 3, stride=(1, 2), padding=1, bias=False)]
    c = width
    for s in range(stages):
        cout = width * 2 ** s
        for b in range(blocks):
            layers.append(PreActBlock(c, cout, 2 if (s > 0 and b == 0) else 1))
            c = cout
    return nn.Sequential(*layers)


class FreqSplitResNet(nn.Module):
    def __init__(self, in_channels: int = 3, width: int = 24, stages: int = 4, blocks: int = 2,
                 embed_dim: int | None = None, split: float = 0.5):
        super().__init__()
        if width < 1 or stages < 1 or blocks < 1:
            raise ValueError(f"model: width, stages and blocks must be >= 1 (got {width}, {stages}, {blocks})")
        if not 0 < split < 1:
            raise ValueError(f"model.split must lie strictly between 0 and 1, got {split}")
        self.split = split
        self.low, self.high = _path(in_channels, width, stages, blocks), _path(in_channels, width, stages, blocks)
        top = width * 2 ** (stages - 1)
        self.embed_dim = embed_dim or 2 * top
        self.fuse = nn.Sequential(nn.BatchNorm2d(top), nn.ReLU(inplace=True),
                                  nn.Conv2d(top, self.embed_dim, 1, bias=False),
                                  nn.BatchNorm2d(self.embed_dim), nn.ReLU(inplace=True))

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        """Last maps ``(batch, embed_dim, mel, frames / 2**stages)``: the input's mel resolution."""
        cut = int(round(x.shape[2] * self.split))
        return self.fuse(torch.cat([self.low(x[:, :, :cut]), self.high(x[:, :, cut:])], dim=2))

    def pool(self, maps: torch.Tensor) -> torch.Tensor:
        return maps.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.feature_maps(x))


@MODELS.register
def resnet_fsplit(in_channels: int = 3, width: int = 24, stages: int = 4, blocks: int = 2,
                  embed_dim: int | None = None, split: float = 0.5) -> FreqSplitResNet:
    return FreqSplitResNet(in_channels, width, stages, blocks, embed_dim, split)
