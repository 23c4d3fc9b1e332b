"""Log-mel spectrogram as a torch module, numerically matching librosa.

It is a module (not a preprocessing script) so that it runs on the accelerator with the
model and is exported with it: a deployed model takes raw audio. The mel filterbank is
librosa's own (``librosa.filters.mel``); the STFT, magnitude, log and deltas are torch.
Output shape: ``(batch, channels, mel bands, frames)`` with channels = 1 + number of deltas.
"""
from __future__ import annotations

import librosa
import torch
from torch import nn
import torch.nn.functional as F

from . import FRONTENDS

LOG_TYPES = ("db", "log", "none")
NORMALISATIONS = ("none", "zscore", "minmax")


def deltas(x: torch.Tensor, width: int = 9, mode: str = "interp") -> torch.Tensor:
    """Regression deltas along the last axis (librosa's ``feature.delta`` for order 1).

    ``mode="interp"`` repeats the first and last full-window value at the edges, which is what
    librosa's Savitzky-Golay ``interp`` mode gives for a first-order fit; ``mode="valid"``
    drops ``width - 1`` frames instead (no padding, as in Hu et al. 2021).
    """
    if width < 3 or width % 2 == 0:
        raise ValueError(f"delta width must be odd and >= 3, got {width}")
    half = width // 2
    k = torch.arange(-half, half + 1, dtype=x.dtype, device=x.device)
    kernel = (k / (k ** 2).sum()).view(1, 1, -1)  # conv1d correlates: slope
    shape = x.shape
    if shape[-1] < width:
        raise ValueError(f"need at least {width} frames for deltas, got {shape[-1]}")
    y = F.conv1d(x.reshape(-1, 1, shape[-1]), kernel).reshape(*shape[:-1], -1)
    if mode == "valid":
        return y
    if mode != "interp":
        raise ValueError(f"delta mode must be 'interp' or 'valid', got {mode!r}")
    return torch.cat([y[..., :1].expand(*shape[:-1], half), y, y[..., -1:].expand(*shape[:-1], half)], dim=-1)


def zscore(x: torch.Tensor) -> torch.Tensor:
    """Per clip and channel: zero mean, unit standard deviation over (mel bands, frames)."""
    return (x - x.mean(dim=(-2, -1), keepdim=True)) / (x.std(dim=(-2, -1), keepdim=True) + 1e-5)


@FRONTENDS.register("logmel")
class LogMel(nn.Module):
    """Waveform ``(batch, samples)`` -> log-mel ``(batch, 1 + n_deltas, n_mels, frames)``."""

    def __init__(self, sample_rate: int = 16000, n_fft: int = 1024, hop_length: int = 320,
                 win_length: int | None = None, n_mels: int = 64, fmin: float = 0.0, fmax: float | None = None,
                 window: str = "hann", power: float = 2.0, log: str = "db", htk: bool = False,
                 mel_norm: str | None = "slaney", center: bool = True, n_deltas: int = 0, delta_width: int = 9,
                 delta_mode: str = "interp", normalize: str = "none", amin: float = 1e-10):
        super().__init__()
        if log not in LOG_TYPES:
            raise ValueError(f"frontend.log must be one of {LOG_TYPES}, got {log!r}")
        if normalize not in NORMALISATIONS:
            raise ValueError(f"frontend.normalize must be one of {NORMALISATIONS}, got {normalize!r}")
        if n_deltas not in (0, 1, 2):
            raise ValueError(f"frontend.n_deltas must be 0, 1 or 2, got {n_deltas!r}")
        if window not in ("hann", "hamming"):
            raise ValueError(f"frontend.window must be 'hann' or 'hamming', got {window!r}")
        win_length = win_length or n_fft
        self.sample_rate, self.n_fft, self.hop_length, self.win_length = sample_rate, n_fft, hop_length, win_length
        self.power, self.log, self.center, self.amin = power, log, center, amin
        self.n_deltas, self.delta_width, self.delta_mode, self.normalize = n_deltas, delta_width, delta_mode, normalize
        fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk,
                                 norm=mel_norm)
        self.register_buffer("mel_fb", torch.from_numpy(fb).float(), persistent=False)
        win = torch.hann_window(win_length) if window == "hann" else torch.hamming_window(win_length)
        self.register_buffer("window", win, persistent=False)

    @property
    def channels(self) -> int:
        return 1 + self.n_deltas

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.dim() == 3 and wave.shape[1] == 1:           # (batch, 1, samples)
            wave = wave.squeeze(1)
        if wave.dim() > 2:
            raise ValueError(f"log-mel front end: expected waveforms (batch, samples), got a tensor of shape "
                             f"{tuple(wave.shape)}: front-end features already? (a system whose splits hold "
                             f"cached features, train.cache_features, passes its batches through input_features)")
        spec = torch.stft(wave.float(), self.n_fft, self.hop_length, self.win_length, self.window,
                          center=self.center, pad_mode="constant", return_complex=True)
        power = spec.real.square() + spec.imag.square()       # |X|^2: 3x faster than abs().pow(2) on CPU
        mag = power if self.power == 2.0 else power.pow(self.power / 2)
        mel = torch.matmul(self.mel_fb, mag)                 # (batch, n_mels, frames)
        if self.log == "db":
            mel = 10.0 * torch.log10(mel.clamp_min(self.amin))
        elif self.log == "log":
            mel = torch.log(mel + self.amin)
        chans = [mel]
        for _ in range(self.n_deltas):   # delta-delta is the delta of the delta
            chans.append(deltas(chans[-1], self.delta_width, self.delta_mode))
        if self.delta_mode == "valid" and self.n_deltas:
            t = chans[-1].shape[-1]
            chans = [c[..., (c.shape[-1] - t) // 2:(c.shape[-1] - t) // 2 + t] for c in chans]
        x = torch.stack(chans, dim=1)
        if self.normalize == "zscore":
            x = zscore(x)
        elif self.normalize == "minmax":
            lo = x.amin(dim=(2, 3), keepdim=True)
            hi = x.amax(dim=(2, 3), keepdim=True)
            x = (x - lo) / (hi - lo + 1e-8)
        return x
