"""Waveform augmentations of seed 003 that are not device-specific: pitch shift, speed change, noise.

All three run on the whole batch at once in torch (no per-clip librosa call), so that on-the-fly
use costs little next to a training step on two CPU cores (``benchmarks/augment_throughput.py``
measures it). Each row draws its own factor from a uniform distribution, as in the paper.

* ``pitch_shift``: phase-vocoder time stretch by ``f`` followed by reading the result ``f`` times
  faster (librosa's recipe for ``effects.pitch_shift``), ``f = 2**(semitones / 12)``.
* ``speed_change``: read the clip ``rate`` times faster (pitch and tempo change together); the
  paper drops what runs past the clip and pads what falls short - here the clip is padded by
  continuing from its start (wrapping), like ``data.audio.fit_length``, so no stretch of digital
  silence becomes a cue.
* ``gaussian_noise``: white Gaussian noise at a signal-to-noise ratio drawn in dB per clip.
"""
from __future__ import annotations

import math

import torch

from . import AUGMENTATIONS
from .base import Augmentation


def lowpass_rows(x: torch.Tensor, cutoff: torch.Tensor) -> torch.Tensor:
    """Zero every frequency above ``cutoff`` (fraction of Nyquist, per row) with one FFT."""
    spec = torch.fft.rfft(x, dim=-1)
    bins = torch.arange(spec.shape[-1], device=x.device) / (spec.shape[-1] - 1)
    spec = spec * (bins[None] <= cutoff[:, None].to(x.device))
    return torch.fft.irfft(spec, n=x.shape[-1], dim=-1)


def read_rows(x: torch.Tensor, rates: torch.Tensor, n_out: int, n_valid: torch.Tensor | None = None) -> torch.Tensor:
    """Row ``i`` read ``rates[i]`` times faster by linear interpolation, ``n_out`` samples long.

    Reading faster than 1 decimates, so those rows are low-passed to ``1 / rate`` of Nyquist first.
    Positions past ``n_valid[i]`` (default: the row length) wrap to the start.
    """
    rates = rates.to(x.device, x.dtype)
    if bool((rates > 1).any()):
        x = lowpass_rows(x, torch.where(rates > 1, 1.0 / rates, torch.ones_like(rates)))
    n_valid = torch.full_like(rates, x.shape[-1]) if n_valid is None else n_valid.to(x.device, x.dtype)
    n_valid = n_valid.clamp(1, x.shape[-1])
    pos = torch.arange(n_out, device=x.device, dtype=x.dtype)[None] * rates[:, None]
    pos = torch.remainder(pos, n_valid[:, None])
    i0 = pos.floor().long()
    frac = pos - i0
    i1 = torch.where(i0 + 1 < n_valid[:, None].long(), i0 + 1, torch.zeros_like(i0))
    return torch.gather(x, 1, i0) * (1 - frac) + torch.gather(x, 1, i1) * frac


def phase_vocoder(x: torch.Tensor, stretch: torch.Tensor, n_fft: int = 512, hop: int = 128) -> torch.Tensor:
    """Make row ``i`` ``stretch[i]`` times longer without changing its pitch (zero-padded to the longest)."""
    window = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    spec = torch.stft(x, n_fft, hop, window=window, return_complex=True)           # (B, K, T)
    n_frames = spec.shape[-1]
    n_out = int(math.ceil(n_frames * float(stretch.max())))
    t = torch.arange(n_out, device=x.device, dtype=x.dtype)[None] / stretch.to(x.device, x.dtype)[:, None]
    t = t.clamp(max=n_frames - 1.001)
    i0 = t.floor().long()
    frac = (t - i0)[:, None]
    idx = i0[:, None].expand(-1, spec.shape[1], -1)
    mag, angle = spec.abs(), spec.angle()
    mag = (1 - frac) * torch.gather(mag, 2, idx) + frac * torch.gather(mag, 2, idx + 1)
    # the phase advance of output frame j depends only on the input frame it reads: compute per input frame
    expected = (2 * math.pi * hop / n_fft) * torch.arange(spec.shape[1], device=x.device, dtype=x.dtype)[None, :, None]
    dphi = angle[..., 1:] - angle[..., :-1] - expected
    dphi = dphi - 2 * math.pi * torch.round(dphi / (2 * math.pi)) + expected
    dphi = torch.gather(dphi, 2, idx)
    phase = angle[:, :, :1] + torch.cumsum(torch.cat([torch.zeros_like(dphi[..., :1]), dphi[..., :-1]], -1), -1)
    return torch.istft(torch.polar(mag, phase), n_fft, hop, window=window, length=(n_out - 1) * hop)


@AUGMENTATIONS.register
class PitchShift(Augmentation):
    name, stage = "pitch_shift", "wave"

    def __init__(self, semitones: float = 2.0, **kw):
        super().__init__(**kw)
        if semitones <= 0:
            raise ValueError(f"pitch_shift.semitones must be > 0 (shifts are drawn in [-s, s]), got {semitones}")
        self.semitones = float(semitones)

    def transform(self, x, target):
        factor = 2.0 ** (self.uniform(len(x), -self.semitones, self.semitones) / 12.0)
        longer = phase_vocoder(x.float(), factor)
        return read_rows(longer, factor, x.shape[-1], n_valid=(x.shape[-1] * factor).floor())


@AUGMENTATIONS.register
class SpeedChange(Augmentation):
    name, stage = "speed_change", "wave"

    def __init__(self, low: float = 0.9, high: float = 1.1, **kw):
        super().__init__(**kw)
        if not 0 < low <= high:
            raise ValueError(f"speed_change: need 0 < low <= high, got low={low}, high={high}")
        self.low, self.high = float(low), float(high)

    def transform(self, x, target):
        return read_rows(x.float(), self.uniform(len(x), self.low, self.high), x.shape[-1])


@AUGMENTATIONS.register
class GaussianNoise(Augmentation):
    name, stage = "gaussian_noise", "wave"

    def __init__(self, snr_low: float = 15.0, snr_high: float = 40.0, **kw):
        super().__init__(**kw)
        if snr_low > snr_high:
            raise ValueError(f"gaussian_noise: snr_low ({snr_low}) must not exceed snr_high ({snr_high})")
        self.snr_low, self.snr_high = float(snr_low), float(snr_high)

    def transform(self, x, target):
        snr_db = self.uniform(len(x), self.snr_low, self.snr_high).to(x.device)
        power = x.float().pow(2).mean(dim=1).clamp_min(1e-12)
        noise = torch.randn(x.shape, generator=self.generator).to(x.device)
        return x + noise * torch.sqrt(power / 10 ** (snr_db / 10))[:, None]
