"""Freq-MixStyle (Schmid et al., CPJKU DCASE 2022-2025 systems): mix per-frequency statistics between clips.

A recording device mostly changes the spectrum's per-frequency level and spread (its frequency
response, gain, noise floor). Freq-MixStyle normalises each clip's spectrogram by its own mean
and standard deviation per frequency band (over channels and frames), then re-scales it with a
convex mix of its own statistics and those of another clip of the batch, ``lambda ~ Beta(alpha,
alpha)`` per clip: the scene content stays, the "device colouring" is swapped in part. The
statistics are detached (no gradient flows through them), as in the reference implementation.

As published, ``p`` is the probability that a *batch* is mixed (not each row), and labels are
unchanged. Defaults: ``alpha = 0.3``, ``p = 0.4`` (theMoro/DIRAugmentation, cpjku_dcase23).
"""
from __future__ import annotations

import torch

from . import AUGMENTATIONS
from .base import Augmentation
from .mixing import _beta


def mix_frequency_statistics(x: torch.Tensor, lam: torch.Tensor, perm: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``x (batch, channels, freq, time)`` with its per-frequency mean/std replaced by their mix with ``x[perm]``'s."""
    mu = x.mean(dim=(1, 3), keepdim=True).detach()
    sig = (x.var(dim=(1, 3), keepdim=True) + eps).sqrt().detach()
    lam = lam.view(-1, 1, 1, 1).to(x)
    mu_mix = lam * mu + (1 - lam) * mu[perm]
    sig_mix = lam * sig + (1 - lam) * sig[perm]
    return (x - mu) / sig * sig_mix + mu_mix


@AUGMENTATIONS.register
class FreqMixStyle(Augmentation):
    name, stage = "freq_mixstyle", "spec"

    def __init__(self, alpha: float = 0.3, p: float = 0.4, eps: float = 1e-6, **kw):
        super().__init__(p=p, **kw)
        if alpha <= 0:
            raise ValueError(f"freq_mixstyle.alpha must be > 0, got {alpha}")
        self.alpha, self.eps = float(alpha), float(eps)

    def forward(self, x, target, device=None):
        n = x.shape[0]
        if n < 2 or float(torch.rand(1, generator=self.generator)) >= self.p:
            return x, target
        lam = _beta(self.generator, self.alpha, n)
        perm = torch.randperm(n, generator=self.generator).to(x.device)
        return mix_frequency_statistics(x.float(), lam, perm, self.eps).to(x.dtype), target
