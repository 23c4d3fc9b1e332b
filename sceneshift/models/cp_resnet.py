"""CP-ResNet: the receptive-field-regularised ResNet of CPJKU (Koutini et al. 2021), small enough to ship.

Why regularise the receptive field: a CNN whose units see the whole spectrogram overfits the
training devices' colouring; capping the receptive field (Koutini et al. found about 100 x 100
input bins best for scene classification) generalises better, and the cheapest way to cap it is
to make the later convolutions 1 x 1. Here ``max_rf`` sets the cap: every 3 x 3 convolution that
would grow the receptive field beyond ``max_rf`` input bins becomes 1 x 1 (the receptive field is
tracked along both axes; strides and pools are square).

Layout: a 5 x 5 stride-2 input convolution (BN, ReLU), then three stages of basic residual blocks
(two convolutions with BN, ReLU; a 1 x 1 projection on the shortcut where the width changes) of
``width``, ``2 width`` and ``4 width`` channels, with a 2 x 2 max-pool after the blocks listed in
``pool_after`` (indices over all blocks). The embedding is the global average of the last
stage's maps (``4 width`` values); a head (linear) turns it into scene logits, unlike the original's
1 x 1 convolution to classes, so that CP-ResNet plugs into every head and system of the toolkit.
Length-independent. With the defaults (width 24, 2-2-2 blocks, ``max_rf`` 87: the second
convolution of stage 2's last block and all of stage 3 are 1 x 1, receptive field 83 bins): 115,176 parameters (116,146 with
a 10-class linear head: 113 kB in int8) and 57.9 M MACs per 4-s clip of 64 x 201 log-mel frames
(14.5 M per second of audio, under DCASE's 30 M limit).

``norm`` (models/norms.py: ``batch``, ``instance``, ``mixup``, ``resnorm``, ``rfn``) replaces the
batch norm of the stem and the last batch norm of the last block - the first and last
normalisation of the network, where seed 002 puts MixupNorm - so the normalisation comparisons
of docs/seed002.md run on this backbone too.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from . import MODELS
from .norms import build_norm


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, k1: int, k2: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, k1, padding=k1 // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, k2, padding=k2 // 2, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity() if cin == cout else nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False),
                                                                        nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x), inplace=True)


class CPResNet(nn.Module):
    def __init__(self, in_channels: int = 1, width: int = 24, blocks: tuple = (2, 2, 2), max_rf: int = 87,
                 pool_after: tuple = (0, 1), norm: str = "batch", norm_lambda: float | None = None):
        super().__init__()
        if width < 1 or len(blocks) != 3 or min(blocks) < 1:
            raise ValueError(f"cp_resnet: width >= 1 and three stages of >= 1 block each (got {width}, {blocks})")
        self.embed_dim = 4 * width
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 5, stride=2, padding=1, bias=False),
                                  build_norm(norm, width, norm_lambda), nn.ReLU(inplace=True))
        rf, jump = 5, 2                      # receptive field (input bins) and stride product after the stem

        def kernel():
            nonlocal rf
            if rf + 2 * jump <= max_rf:
                rf += 2 * jump
                return 3
            return 1

        layers, cin, i = [], width, 0
        self.kernels = []
        for stage, n in enumerate(blocks):
            cout = width * 2 ** stage
            for _ in range(n):
                k1, k2 = kernel(), kernel()
                self.kernels.append((k1, k2))
                layers.append(BasicBlock(cin, cout, k1, k2))
                cin = cout
                if i in pool_after:
                    layers.append(nn.MaxPool2d(2))
                    rf, jump = rf + jump, jump * 2
                i += 1
        layers[max(i for i, m in enumerate(layers) if isinstance(m, BasicBlock))].bn2 = build_norm(norm, cin, norm_lambda)
        self.blocks = nn.Sequential(*layers)
        self.receptive_field = rf

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))

    def pool(self, maps: torch.Tensor) -> torch.Tensor:
        return maps.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.feature_maps(x))


@MODELS.register
def cp_resnet(in_channels: int = 1, width: int = 24, blocks: tuple[int, int, int] = (2, 2, 2), max_rf: int = 87,
              pool_after: tuple[int, ...] = (0, 1), norm: str = "batch", norm_lambda: float | None = None) -> CPResNet:
    return CPResNet(in_channels, width, tuple(blocks), max_rf, tuple(pool_after), norm, norm_lambda)
