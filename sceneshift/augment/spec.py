"""Spectrogram augmentations of seed 003: random crop in time and SpecAugment masks.

* ``random_crop`` keeps ``frames`` consecutive frames at a random offset per clip (McDonnell &
  Gao; 423 -> 400 frames in the paper, about 95 %). Training only: evaluation sees the whole
  clip, which the fully convolutional models with global pooling accept.
* ``random_shift`` (seed 002's Keras ``ImageDataGenerator(width_shift_range=0.6,
  height_shift_range=3)``): each clip's spectrogram is shifted by up to ``time_fraction`` of its
  frames and up to ``freq_bins`` mel bins, in either direction, the vacated edge filled with the
  nearest remaining column or row (Keras' default ``fill_mode="nearest"``).
* ``spec_augment`` (Park et al. 2019) sets ``n_time_masks`` bands of frames and
  ``n_freq_masks`` bands of mel bins to zero, each up to ``time_fraction`` / ``freq_fraction``
  of the axis wide (10 % in the paper), on all channels.
"""
from __future__ import annotations

import torch

from . import AUGMENTATIONS
from .base import Augmentation


@AUGMENTATIONS.register
class RandomCrop(Augmentation):
    name, stage = "random_crop", "spec"

    def __init__(self, frames: int = 180, **kw):
        super().__init__(**kw)
        if int(frames) < 1:
            raise ValueError(f"random_crop.frames must be >= 1, got {frames}")
        self.frames = int(frames)

    def forward(self, x, target, device=None):
        n_frames = x.shape[-1]
        if n_frames <= self.frames:
            return x, target
        start = torch.randint(0, n_frames - self.frames + 1, (x.shape[0],), generator=self.generator).to(x.device)
        idx = start[:, None] + torch.arange(self.frames, device=x.device)[None]
        idx = idx.view(x.shape[0], *([1] * (x.dim() - 2)), self.frames).expand(*x.shape[:-1], self.frames)
        return torch.gather(x, -1, idx), target


def _band_masks(n_rows: int, size: int, n_masks: int, fraction: float, generator) -> torch.Tensor:
    """``(n_rows, size)`` True where some of the ``n_masks`` random bands covers the position."""
    covered = torch.zeros(n_rows, size, dtype=torch.bool)
    widest = int(fraction * size)
    pos = torch.arange(size)[None]
    for _ in range(n_masks):
        width = torch.randint(0, widest + 1, (n_rows, 1), generator=generator)
        start = (torch.rand(n_rows, 1, generator=generator) * (size - width + 1)).long()
        covered |= (pos >= start) & (pos < start + width)
    return covered


@AUGMENTATIONS.register
class SpecAugment(Augmentation):
    name, stage = "spec_augment", "spec"

    def __init__(self, n_time_masks: int = 1, n_freq_masks: int = 1, time_fraction: float = 0.1,
                 freq_fraction: float = 0.1, **kw):
        super().__init__(**kw)
        for key, v in (("time_fraction", time_fraction), ("freq_fraction", freq_fraction)):
            if not 0 <= v <= 1:
                raise ValueError(f"spec_augment.{key} must lie in [0, 1], got {v}")
        self.n_time, self.n_freq = int(n_time_masks), int(n_freq_masks)
        self.time_fraction, self.freq_fraction = float(time_fraction), float(freq_fraction)

    def transform(self, x, target):
        n, f, t = x.shape[0], x.shape[-2], x.shape[-1]
        time = _band_masks(n, t, self.n_time, self.time_fraction, self.generator).to(x.device)
        freq = _band_masks(n, f, self.n_freq, self.freq_fraction, self.generator).to(x.device)
        keep = ~(freq[:, :, None] | time[:, None, :])                       # (n, F, T)
        return x * keep.view(n, *([1] * (x.dim() - 3)), f, t)


@AUGMENTATIONS.register
class RandomShift(Augmentation):
    name, stage = "random_shift", "spec"

    def __init__(self, time_fraction: float = 0.6, freq_bins: int = 3, **kw):
        super().__init__(**kw)
        if not 0 <= time_fraction <= 1 or freq_bins < 0:
            raise ValueError(f"random_shift: time_fraction in [0, 1] and freq_bins >= 0 (got {time_fraction}, {freq_bins})")
        self.time_fraction, self.freq_bins = float(time_fraction), int(freq_bins)

    def transform(self, x, target):
        n, f, t = x.shape[0], x.shape[-2], x.shape[-1]
        dt = torch.round(self.uniform(n, -self.time_fraction, self.time_fraction) * t).long()
        df = torch.randint(-self.freq_bins, self.freq_bins + 1, (n,), generator=self.generator)
        ti = (torch.arange(t)[None] - dt[:, None]).clamp(0, t - 1).to(x.device)         # (n, T)
        fi = (torch.arange(f)[None] - df[:, None]).clamp(0, f - 1).to(x.device)         # (n, F)
        lead = [1] * (x.dim() - 3)
        x = torch.gather(x, -1, ti.view(n, *lead, 1, t).expand(*x.shape))
        return torch.gather(x, -2, fi.view(n, *lead, f, 1).expand(*x.shape))
