"""``one_of``: each chosen row gets exactly one augmentation from a list - the on-the-fly form of "extra data".

Why: Hu et al. generate extra data offline, one augmented copy per method, so a training clip
is either original or carries exactly one augmentation; stacking every augmentation on every
clip would be a different (and harsher) distribution. With ``p = k / (k + 1)`` for ``k``
methods, a source clip is original or each augmentation with the same probability, as in a
training set made of device A plus one extra copy of device A per method; ``sceneshift augment
generate`` writes the same kind of clips to disk (it calls the same modules).

A row is chosen with probability ``p``, then one entry of ``choices`` uniformly. An entry that
does not apply to the row (``source_only`` augmentations on a non-source clip, as spectrum
correction and reverberation) leaves the row as it is. The entries' own ``p`` is ignored.
"""
from __future__ import annotations

import torch

from . import AUGMENTATIONS
from .base import Augmentation


@AUGMENTATIONS.register
class OneOf(Augmentation):
    name, stage = "one_of", "wave"
    nested = ("choices",)      # a list of augmentation specs (checked like the recipe's augment list)

    def __init__(self, choices: list | None = None, **kw):
        super().__init__(**kw)
        from . import build_augmentations
        if not choices:
            raise ValueError("one_of.choices: give a non-empty list of augmentations ({name: ..., options})")
        wave, spec = build_augmentations(choices, self.run_domain, self.sample_rate)
        if wave and spec:
            raise ValueError("one_of.choices: mix only waveform or only spectrogram augmentations, not both")
        self.choices = wave or spec
        self.stage = "wave" if wave else "spec"

    def fit(self, train_data):
        for child in self.choices:
            if hasattr(child, "fit"):
                child.fit(train_data)

    def forward(self, x, target, device=None):
        n = x.shape[0]
        chosen = self.rows(device, n)
        pick = torch.randint(len(self.choices), (n,), generator=self.generator)
        out = None
        for k, child in enumerate(self.choices):
            rows = chosen & (pick == k)
            if child.source_only:
                rows &= (device.cpu() == child.source_index) if device is not None else torch.zeros_like(rows)
            if rows.any():
                out = x.clone() if out is None else out
                rows = rows.to(x.device)
                out[rows] = child.transform(x[rows], target[rows] if target is not None else None).to(x.dtype)
        return (x if out is None else out), target
