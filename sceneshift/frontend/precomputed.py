"""The front end of a run on precomputed features (``data.features``): checks the shape, passes them on."""
from __future__ import annotations

import torch
from torch import nn


class PrecomputedFrontend(nn.Module):
    def __init__(self, channels: int = 1):
        super().__init__()
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            raise ValueError("this run was trained on precomputed features (data.features); it takes feature "
                             "arrays (batch, channels, mel bands, frames), not audio waveforms")
        if x.dim() == 3:
            x = x[:, None]
        if x.shape[1] != self.channels:
            raise ValueError(f"frontend.n_deltas: the features have {x.shape[1]} channel(s) but the recipe "
                             f"expects {self.channels} (1 + n_deltas)")
        return x.float()
