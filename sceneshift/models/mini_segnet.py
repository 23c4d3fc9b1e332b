"""Mini-SegNet with Mixup Normalization and the event extraction block (seed 002).

The paper gives no code, and its text disagrees with itself; every choice is listed in
docs/seed002.md. In short (tensors are ``(batch, channels, frequency, time)``; the paper's
``2 x 3`` kernels and pools are 2 frequency bins by 3 frames):

* **Encoder**: conv 2x3 @64 -> ``norm`` -> ReLU -> max-pool 2x3 (indices kept) -> conv 2x3 @128 ->
  BN -> ReLU -> conv 2x3 @128 -> BN -> ReLU.
* **Decoder** (default ``upsample: unpool``, SegNet's way, which the text names: "upsamples its
  input using the transferred pool indices"): max-unpool with the stored indices -> conv 2x3 @64 ->
  ``norm`` -> ReLU. The pool saw 64 channels and the unpool gets 128, so channels ``i`` and
  ``i + 64`` share the indices of pooled channel ``i``. ``upsample: nearest`` is the Keras
  ``UpSampling2D(2, 3)`` the text also names. One upsampling, matching the one pooling (the text's
  two 2x3 upsamplings would leave the output larger than the input); ``decoder_blocks: 2`` adds the
  text's second decoder block as a conv 2x3 @128 -> BN -> ReLU before the last one (without a
  second upsampling).
* ``width`` (default 64, the paper's) scales every layer: ``width``, ``2 width``, ``2 width``, ...;
  the paper's width costs 0.9 G MACs per 4-s clip of 64 mel bands, too much for a 2-core CPU, so
  the short-schedule recipe (seed002) uses 16.
* ``norm`` (``batch``, ``instance``, ``mixup``, ``resnorm``, ``rfn``: models/norms.py) sits after
  the first encoder and the last decoder convolution, the two places the paper puts MixupNorm
  (``norm_at: both``). ``norm_at: encoder`` keeps it after the first convolution only and puts BN
  after the last one: a channel-wise instance norm right before global average pooling makes
  every channel's map zero-mean and unit-variance per clip, which removes what pooling reads.
* **Pooling**: global average over frequency and time (``C = 64`` values) or, with
  ``event_block: true``, those plus the event extraction block's ``k`` values.
* **Embedding**: dense ``hidden`` -> ReLU -> dropout (the first of the paper's two dense layers; the
  second is the toolkit's linear head). Length-independent.

The **event extraction block** is not differentiable, by design: the argmax and the counting are
integer operations under ``torch.no_grad``, so the ``k`` values enter the dense layer as constants
and the gradient reaches the network through the pooled path only. Ties are broken
deterministically: the argmax over channels takes the lowest channel index among equal maxima
(``torch.argmax``), and among channel indices with equal counts the lowest index ranks first (a
stable sort); when fewer than ``k`` channels win anywhere, zero-count channels fill the list in
index order.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from . import MODELS
from .norms import build_norm


def event_extraction(maps: torch.Tensor, k: int = 4) -> torch.Tensor:
    """``(B, C, F, T)`` -> ``(B, k)``: the ``k`` channels that win the argmax most often, divided by ``C``."""
    with torch.no_grad():
        b, c = maps.shape[:2]
        winners = maps.argmax(dim=1).reshape(b, -1)                         # (B, F*T), lowest index on ties
        counts = torch.zeros(b, c, dtype=torch.long, device=maps.device)
        counts.scatter_add_(1, winners, torch.ones_like(winners))
        order = torch.sort(counts, dim=1, descending=True, stable=True).indices   # equal counts: lower index first
        return order[:, :k].to(maps.dtype) / c


def _conv(cin: int, cout: int) -> nn.Sequential:
    """A 2x3 convolution that keeps the size ("same" padding: the extra row of the even kernel at the bottom)."""
    return nn.Sequential(nn.ZeroPad2d((1, 1, 0, 1)), nn.Conv2d(cin, cout, (2, 3)))


class MiniSegNet(nn.Module):
    def __init__(self, in_channels: int = 3, width: int = 64, norm: str = "mixup", norm_lambda: float | None = None,
                 norm_affine: bool = False, upsample: str = "unpool", decoder_blocks: int = 1,
                 event_block: bool = False, k: int = 4, hidden: int = 512, dropout: float = 0.5,
                 norm_at: str = "both"):
        super().__init__()
        if norm_at not in ("both", "encoder"):
            raise ValueError(f"model.norm_at must be 'both' or 'encoder', got {norm_at!r}")
        if upsample not in ("unpool", "nearest"):
            raise ValueError(f"model.upsample must be 'unpool' or 'nearest', got {upsample!r}")
        if decoder_blocks not in (1, 2):
            raise ValueError(f"model.decoder_blocks must be 1 or 2, got {decoder_blocks}")
        if width < 1 or (event_block and not 1 <= k <= width):
            raise ValueError(f"model: width >= 1 and 1 <= k <= width (got width {width}, k {k})")
        self.upsample, self.event_block, self.k, self.width = upsample, bool(event_block), int(k), int(width)
        w = self.width
        self.conv1, self.norm1 = _conv(in_channels, w), build_norm(norm, w, norm_lambda, norm_affine)
        self.pool = nn.MaxPool2d((2, 3), return_indices=True)
        self.conv2, self.bn2 = _conv(w, 2 * w), nn.BatchNorm2d(2 * w)
        self.conv3, self.bn3 = _conv(2 * w, 2 * w), nn.BatchNorm2d(2 * w)
        self.unpool = nn.MaxUnpool2d((2, 3))
        self.decoder_extra = (nn.Sequential(_conv(2 * w, 2 * w), nn.BatchNorm2d(2 * w), nn.ReLU(inplace=True))
                              if decoder_blocks == 2 else nn.Identity())
        self.conv5 = _conv(2 * w, w)
        self.norm5 = build_norm(norm, w, norm_lambda, norm_affine) if norm_at == "both" else nn.BatchNorm2d(w)
        pooled = w + (self.k if self.event_block else 0)
        self.embedding = nn.Sequential(nn.Linear(pooled, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.embed_dim = hidden

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        """The last decoder maps ``(B, width, F, T)``."""
        x = F.relu(self.norm1(self.conv1(x)))
        size = x.shape[-2:]
        x, idx = self.pool(x)
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.bn3(self.conv3(x)))
        if self.upsample == "unpool":
            # 128 channels come back through the indices of the 64-channel pool: each half of the channels
            # reuses them (SegNet pairs encoder and decoder layers of equal width; here they differ)
            x = torch.cat([self.unpool(part, idx, output_size=size) for part in x.split(self.width, dim=1)], dim=1)
        else:
            x = F.interpolate(x, size=size, mode="nearest")
        x = self.decoder_extra(x)
        return F.relu(self.norm5(self.conv5(x)))

    def pool_maps(self, maps: torch.Tensor) -> torch.Tensor:
        pooled = maps.mean(dim=(2, 3))
        return torch.cat([pooled, event_extraction(maps, self.k)], dim=1) if self.event_block else pooled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding(self.pool_maps(self.feature_maps(x)))


@MODELS.register
def mini_segnet(in_channels: int = 3, width: int = 64, norm: str = "mixup", norm_lambda: float | None = None,
                norm_affine: bool = False, upsample: str = "unpool", decoder_blocks: int = 1, event_block: bool = False,
                k: int = 4, hidden: int = 512, dropout: float = 0.5, norm_at: str = "both") -> MiniSegNet:
    return MiniSegNet(in_channels, width, norm, norm_lambda, norm_affine, upsample, decoder_blocks, event_block, k,
                      hidden, dropout, norm_at)
