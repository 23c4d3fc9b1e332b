"""Band-wise statistics matching (Mezza et al., EUSIPCO 2021; seed 000's "C0[12]").

Unsupervised feature-level adaptation: for every frequency band (and feature channel), the
mean and standard deviation over all clips and frames are measured once on the source
device's training clips and once on the unlabeled clips of a target device; target features
are then standardised with the target statistics and rescaled with the source ones:

    x' = (x - mean_T) / std_T * std_S + mean_S

The authors' code divided by the variance instead of the standard deviation and overwrote the
target features in place, so every later configuration was scored on already matched data.
Here the division is by the std and the transform is an ``nn.Module`` returning a new tensor,
set as the classifier's ``adapt`` step only while that device's clips are scored: the cached
arrays (read-only memory maps) are never touched.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data.splits import iter_batches
from . import ADAPTATIONS

STD_FLOOR = 1e-8   # a constant band (std 0) is shifted only, not blown up


@torch.no_grad()
def band_statistics(frontend: nn.Module, waves, rows=None, batch_size: int = 128,
                    device="cpu") -> tuple[np.ndarray, np.ndarray]:
    """Per-channel, per-band mean and std ``(C, F)`` of ``frontend(waves[rows])`` over clips and frames.

    Accumulated in float64 sums, so the result does not depend on the batch size.
    """
    total = total_sq = None
    count = 0
    for w in iter_batches(waves, batch_size, rows, device):
        x = frontend(w).double()                                   # (B, C, F, T)
        s, sq = x.sum(dim=(0, 3)), (x * x).sum(dim=(0, 3))
        total, total_sq = (s, sq) if total is None else (total + s, total_sq + sq)
        count += x.shape[0] * x.shape[3]
    if total is None:
        raise ValueError("band statistics need at least one clip")
    mean = total / count
    var = (total_sq / count - mean * mean).clamp_min(0.0)
    return mean.cpu().numpy(), var.sqrt().cpu().numpy()


class BandwiseMatch(nn.Module):
    """``x (B, C, F, T)`` -> target statistics replaced by source statistics, band by band."""

    def __init__(self, source_mean, source_std, target_mean, target_std):
        super().__init__()
        for name, v in (("source_mean", source_mean), ("source_std", source_std),
                        ("target_mean", target_mean), ("target_std", target_std)):
            t = torch.as_tensor(np.asarray(v), dtype=torch.float32)
            if t.dim() == 1:          # (F,) -> one channel
                t = t[None]
            self.register_buffer(name, t[..., None])                # (C, F, 1) broadcasts over frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.source_std / self.target_std.clamp_min(STD_FLOOR)
        return (x - self.target_mean) * scale + self.source_mean


@ADAPTATIONS.register("bandwise")
def fit_bandwise(net: nn.Module, source, targets: dict, batch_size: int = 128, device="cpu") -> dict:
    """``{device: BandwiseMatch}`` matching each ``targets[device] = (waves, rows)`` to ``source = (waves, rows)``
    in the output of ``net.frontend``."""
    frontend = net.frontend
    sm, ss = band_statistics(frontend, *source, batch_size=batch_size, device=device)
    out = {}
    for name, (waves, rows) in targets.items():
        tm, ts = band_statistics(frontend, waves, rows, batch_size=batch_size, device=device)
        out[name] = BandwiseMatch(sm, ss, tm, ts).to(device)
    return out
