"""FCNN and fsFCNN (Hu et al., ICASSP 2021, seed 003): VGG-like fully convolutional networks.

FCNN: 9 convolutions - blocks of 2, 2 and 4 conv3x3-BN-ReLU layers, each block followed by a
2x2 max pool (dropout after the deeper blocks) - then a 1x1 convolution to ``embed_dim``
channels, channel attention and global average pooling. fsFCNN ("frequency sub-sampling"):
2 more convolutions (a fourth block) and half the frequency pooling (blocks 2 and 4 pool
along time only), which the paper found to over-fit less. Both are fully convolutional, so
they take clips of any length; ``width`` is the first block's channel count (channels double
per block up to 4x), which is what makes small variants that train on a CPU.

Channel attention (Bi et al. 2020, as CBAM's channel branch): a shared two-layer MLP scores the
average- and max-pooled channel descriptors; their sum through a sigmoid rescales each channel.
The embedding is the global average of the rescaled maps, so with a linear head the class
activation map is ``head.weight[k] . feature_maps`` (the per-clip channel weights are inside).
"""
from __future__ import annotations

import torch
from torch import nn

from . import MODELS


class ChannelAttention(nn.Module):
    def __init__(self, channels: int, ratio: int = 2):
        super().__init__()
        hidden = max(1, channels // ratio)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))

    def forward(self, x):
        score = self.mlp(x.mean(dim=(2, 3))) + self.mlp(x.amax(dim=(2, 3)))
        return x * torch.sigmoid(score)[:, :, None, None]


def _conv(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class FCNN(nn.Module):
    """``blocks``: (convolutions, channels, (frequency pool, time pool)) per block."""

    def __init__(self, in_channels: int, blocks: list, embed_dim: int, dropout: float, attention_ratio: int):
        super().__init__()
        if not 0 <= dropout < 1:
            raise ValueError(f"model.dropout must lie in [0, 1), got {dropout}")
        layers, c = [], in_channels
        for i, (n, cout, pool) in enumerate(blocks):
            for _ in range(n):
                layers += _conv(c, cout)
                c = cout
            layers.append(nn.MaxPool2d(pool))
            if i > 0 and dropout:
                layers.append(nn.Dropout(dropout))
        self.body = nn.Sequential(*layers)
        self.embed_dim = embed_dim
        self.project = nn.Sequential(nn.Conv2d(c, embed_dim, 1, bias=False), nn.BatchNorm2d(embed_dim),
                                     nn.ReLU(inplace=True))
        self.attention = ChannelAttention(embed_dim, attention_ratio)

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(self.project(self.body(x)))

    def pool(self, maps: torch.Tensor) -> torch.Tensor:
        return maps.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.feature_maps(x))


def _check_width(width):
    if width < 1:
        raise ValueError(f"model.width must be >= 1, got {width}")


@MODELS.register
def fcnn(in_channels: int = 3, width: int = 48, embed_dim: int | None = None, dropout: float = 0.3,
         attention_ratio: int = 2) -> FCNN:
    _check_width(width)
    blocks = [(2, width, (2, 2)), (2, 2 * width, (2, 2)), (4, 4 * width, (2, 2))]
    return FCNN(in_channels, blocks, embed_dim or 4 * width, dropout, attention_ratio)


@MODELS.register
def fsfcnn(in_channels: int = 3, width: int = 48, embed_dim: int | None = None, dropout: float = 0.3,
           attention_ratio: int = 2) -> FCNN:
    _check_width(width)
    blocks = [(2, width, (2, 2)), (2, 2 * width, (1, 2)), (4, 4 * width, (2, 2)), (2, 4 * width, (1, 2))]
    return FCNN(in_channels, blocks, embed_dim or 4 * width, dropout, attention_ratio)
