"""Augmentations: separate, composable, seeded modules named in a recipe's ``augment`` list.

Each augmentation is an ``nn.Module`` with ``domain = "wave"`` (applied to the waveform batch
``(B, samples)`` before the front end) or ``domain = "spec"`` (applied to the front end's output
``(B, C, F, T)``), and ``forward(x, target, device) -> (x, target)`` where ``target`` holds soft
(one-hot) labels, so that label-mixing augmentations such as mixup fit the same interface, and
``device`` the device index of each clip (``labels["devices"]``). An augmentation that needs
the training data (a reference spectrum, say) defines ``fit(train_data, cfg, labels)``, called
once before training. They run in training only.
"""
from __future__ import annotations

from torch import nn

AUGMENTATIONS: dict = {}


def register_augmentation(cls):
    AUGMENTATIONS[cls.name] = cls
    return cls


def build_augmentations(specs: list, cfg: dict, labels: dict) -> tuple[nn.ModuleList, nn.ModuleList]:
    """``[{name: mixup, alpha: 0.4}, ...]`` -> (waveform augmentations, spectrogram augmentations)."""
    import importlib
    import pkgutil
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    wave, spec = nn.ModuleList(), nn.ModuleList()
    for i, s in enumerate(specs):
        s = dict(s)
        name = s.pop("name", None)
        if name not in AUGMENTATIONS:
            raise ValueError(f"augment[{i}].name: unknown augmentation {name!r}; "
                             f"available: {', '.join(sorted(AUGMENTATIONS)) or 'none'}")
        try:
            aug = AUGMENTATIONS[name](**s, context={"cfg": cfg, "labels": labels}) \
                if getattr(AUGMENTATIONS[name], "needs_context", False) else AUGMENTATIONS[name](**s)
        except TypeError as e:
            raise ValueError(f"augment[{i}] ({name}): {e}") from None
        (wave if aug.domain == "wave" else spec).append(aug)
    return wave, spec
