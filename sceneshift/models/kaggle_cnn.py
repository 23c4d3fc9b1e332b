"""The "Kaggle" CNN core used by Mezza et al. (EUSIPCO 2021) and Abesser et al. (ICASSP 2022).

Five convolutions and two dense layers; the second dense layer's output (before any
activation) is the embedding, followed by LayerNorm as in seed 000. Layer sizes follow the
paper (given there for ``time x frequency`` inputs; here the tensor is ``(channels, mel, time)``
so every 2-D stride and pool is written frequency first). An adaptive average pool before the
dense layers fixes their input at 128 x 1 x 12, which makes the model independent of the clip
length and reproduces the published size: about 1.4 M parameters with E = 256 and 2.0 M with
the doubled embedding (E = 512) of the masked configurations.

``attention: true`` puts seed 001's attention module (a learned (0, 1) map multiplying the input,
``mobilefacenet.Attention``) in front of the convolutions, so that seed 001's parts can be measured
one at a time on this cheaper network (docs/seed001.md).
"""
from __future__ import annotations

import torch
from torch import nn

from . import MODELS
from .mobilefacenet import Attention


def _conv(cin, cout, k, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2), nn.ReLU(inplace=True))


class KaggleCNN(nn.Module):
    def __init__(self, in_channels: int = 1, embed_dim: int = 256, hidden: int = 256, layer_norm: bool = True,
                 pooled_frames: int = 12, attention: bool = False):
        super().__init__()
        self.embed_dim = embed_dim
        self.attention = Attention(in_channels) if attention else nn.Identity()
        self.features = nn.Sequential(
            _conv(in_channels, 48, 11, stride=(3, 2)), nn.MaxPool2d(3, stride=(2, 1), padding=1), nn.BatchNorm2d(48),
            _conv(48, 128, 5, stride=(3, 2)), nn.MaxPool2d(3, stride=2, padding=1), nn.BatchNorm2d(128),
            _conv(128, 192, 3), _conv(192, 192, 3), _conv(192, 128, 3),
            nn.MaxPool2d((2, 1), ceil_mode=True), nn.BatchNorm2d(128),
        )
        self.squeeze = nn.AdaptiveAvgPool2d((1, pooled_frames))
        self.embedding = nn.Sequential(nn.Flatten(), nn.Linear(128 * pooled_frames, hidden), nn.ReLU(inplace=True),
                                       nn.Linear(hidden, embed_dim))
        self.norm = nn.LayerNorm(embed_dim) if layer_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.embedding(self.squeeze(self.features(self.attention(x)))))


@MODELS.register
def kaggle_cnn(in_channels: int = 1, embed_dim: int = 256, hidden: int = 256, layer_norm: bool = True,
               pooled_frames: int = 12, attention: bool = False) -> KaggleCNN:
    return KaggleCNN(in_channels, embed_dim, hidden, layer_norm, pooled_frames, attention)
