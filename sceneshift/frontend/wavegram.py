"""Log-mel + Wavegram, two channels (seed 001, Neri & Carli, ICME 2024 grand challenge).

The Wavegram is a *learned* time-frequency representation: a 1-D convolution of the waveform with
128 filters of 1024 taps, stride 512 (the mel hop) and padding 512, so its frames line up with the
log-mel's (``center=True``). Stacked with the log-mel (128 bands, n_fft 1024, hop 512,
``10 log10(power + 1e-8)``, Slaney-normalised HTK mel scale as the authors' code) it gives a
``(batch, 2, 128, frames)`` input; each channel is z-normalised per clip.

``wavegram: full`` is the paper's convolution (128 x 1024 weights, 131 k parameters);
``wavegram: rank1`` is what the authors' code ran: a depthwise-separable convolution, i.e. one
learned 1024-tap filter whose output is scaled (and shifted) into 128 rows - rank one, 1,281
parameters, so its 128 rows are copies of one filtered signal up to scale and offset.

Unlike the log-mel, this front end has parameters: systems train it with the network (no
gradient-free front end, no feature cache: ``ClassifierSystem.input_features``).
"""
from __future__ import annotations

import torch
from torch import nn

from . import FRONTENDS
from .logmel import LogMel, zscore


@FRONTENDS.register("logmel_wavegram")
class LogMelWavegram(nn.Module):
    def __init__(self, sample_rate: int = 16000, n_fft: int = 1024, hop_length: int = 512, n_mels: int = 128,
                 wavegram: str = "full", kernel: int = 1024):
        super().__init__()
        if wavegram not in ("full", "rank1"):
            raise ValueError(f"frontend.wavegram must be 'full' or 'rank1', got {wavegram!r}")
        if kernel != 2 * hop_length:
            raise ValueError(f"frontend.kernel must be twice hop_length ({2 * hop_length}) so that the Wavegram's "
                             f"frames line up with the log-mel's (got {kernel})")
        self.logmel = LogMel(sample_rate, n_fft, hop_length, n_mels=n_mels, log="none", htk=True)
        if wavegram == "full":
            self.wavegram = nn.Conv1d(1, n_mels, kernel, stride=hop_length, padding=kernel // 2)
        else:
            self.wavegram = nn.Sequential(nn.Conv1d(1, 1, kernel, stride=hop_length, padding=kernel // 2),
                                          nn.Conv1d(1, n_mels, 1))
        self.kind = wavegram

    @property
    def channels(self) -> int:
        return 2

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.dim() == 3:
            wave = wave.squeeze(1)
        mel = 10.0 * torch.log10(self.logmel(wave)[:, 0] + 1e-8)            # (B, mels, frames)
        wg = self.wavegram(wave.float()[:, None])                            # (B, mels, frames)
        frames = min(mel.shape[-1], wg.shape[-1])
        return torch.stack([zscore(mel[..., :frames]), zscore(wg[..., :frames])], dim=1)
