"""Augmentations that combine two clips: mixup (features and labels) and same-scene mixing (audio).

* ``mixup`` (Zhang et al. 2018; alpha 0.4 in seed 003) mixes each row of the feature batch with
  a random other row, features and soft labels alike, with ``lambda ~ Beta(alpha, alpha)`` per
  row. It works on the spectrogram, as in the paper, after the other augmentations.
* ``same_scene_mix`` adds to a clip a second clip of the same scene (the paper's "mix audios":
  the mixture is device-independent, so it helps to simulate a new device). The label stays.
  Partners come from the whole training set when ``fit`` has seen it (so on-the-fly use and
  offline generation draw from the same pool); otherwise from the rows of the batch with the
  same class (rows without one are left as they are). The mixture is rescaled to the first
  clip's RMS level so that loudness does not become a cue.
"""
from __future__ import annotations

import numpy as np
import torch

from . import AUGMENTATIONS
from .base import Augmentation


@AUGMENTATIONS.register
class Mixup(Augmentation):
    name, stage = "mixup", "spec"

    def __init__(self, alpha: float = 0.4, **kw):
        super().__init__(**kw)
        if alpha <= 0:
            raise ValueError(f"mixup.alpha must be > 0, got {alpha}")
        self.alpha = float(alpha)

    def forward(self, x, target, device=None):
        n = x.shape[0]
        if n < 2:
            return x, target
        chosen = self.rows(device, n)
        lam = _beta(self.generator, self.alpha, n)
        lam = torch.where(chosen, lam, torch.ones_like(lam)).to(x.device)
        perm = torch.randperm(n, generator=self.generator).to(x.device)
        mix_x = lam.view(-1, *([1] * (x.dim() - 1))) * x + (1 - lam.view(-1, *([1] * (x.dim() - 1)))) * x[perm]
        mix_t = lam[:, None] * target + (1 - lam[:, None]) * target[perm]
        return mix_x.to(x.dtype), mix_t


def _beta(generator: torch.Generator, alpha: float, n: int) -> torch.Tensor:
    """Beta(alpha, alpha) draws from the given generator (torch's Beta sampler takes none)."""
    seed = int(torch.randint(0, 2 ** 31 - 1, (1,), generator=generator))
    return torch.from_numpy(np.random.default_rng(seed).beta(alpha, alpha, n)).float()


@AUGMENTATIONS.register
class SameSceneMix(Augmentation):
    name, stage = "same_scene_mix", "wave"

    def __init__(self, low: float = 0.3, high: float = 0.7, **kw):
        super().__init__(**kw)
        if not 0 <= low <= high <= 1:
            raise ValueError(f"same_scene_mix: need 0 <= low <= high <= 1, got low={low}, high={high}")
        self.low, self.high = float(low), float(high)
        self.pool_waves, self.pool_by_class = None, {}

    def fit(self, train_data):
        """Remember the training clips of each class as the pool of partners."""
        self.pool_waves = train_data.waves
        self.pool_by_class = {int(c): np.flatnonzero(train_data.labels == c) for c in np.unique(train_data.labels)
                              if c >= 0}

    def partners(self, x: torch.Tensor, cls: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A partner waveform per row and whether the row found one."""
        partner, found = torch.zeros_like(x), torch.zeros(len(x), dtype=torch.bool)
        for i, c in enumerate(cls.tolist()):
            if self.pool_waves is not None and len(self.pool_by_class.get(c, ())):
                pool = self.pool_by_class[c]
                j = int(pool[int(torch.randint(len(pool), (1,), generator=self.generator))])
                partner[i] = torch.from_numpy(np.asarray(self.pool_waves[j], dtype=np.float32)).to(x.device)
                found[i] = True
            elif self.pool_waves is None:
                same = [k for k in range(len(x)) if k != i and int(cls[k]) == c]
                if same:
                    partner[i] = x[same[int(torch.randint(len(same), (1,), generator=self.generator))]]
                    found[i] = True
        return partner, found

    def transform(self, x, target):
        if target is None:
            raise ValueError("same_scene_mix needs the labels of the batch")
        partner, found = self.partners(x, target.argmax(dim=1).cpu())
        weight = self.uniform(len(x), self.low, self.high).to(x.device)[:, None]
        mixed = (1 - weight) * x + weight * partner
        level = x.pow(2).mean(1, keepdim=True).sqrt() / mixed.pow(2).mean(1, keepdim=True).sqrt().clamp_min(1e-8)
        return torch.where(found.to(x.device)[:, None], mixed * level, x)
