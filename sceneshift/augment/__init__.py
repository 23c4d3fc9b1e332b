"""Augmentations: separate, composable, seeded modules named in a recipe's ``augment`` list.

Each augmentation is an ``nn.Module`` with ``stage = "wave"`` (applied to the waveform batch
``(B, samples)`` before the front end) or ``stage = "spec"`` (applied to the front end's output
``(B, C, F, T)``), and ``forward(x, target, device) -> (x, target)`` where ``target`` holds soft
(one-hot) labels, so that label-mixing augmentations such as mixup fit the same interface, and
``device`` the device index of each clip in the run's :class:`~sceneshift.data.domain.Domain`.
The domain (which device is the source, ...) and the recipe's sample rate are injected when the
augmentation is built; an augmentation that needs the training data (a reference spectrum, say)
defines ``fit(train_data)``, called once before training. They run in training only.

An option that holds a list of augmentation specs (``one_of``'s ``choices``) is named in the
class's ``nested`` tuple, so recipe checking descends into it.
"""
from __future__ import annotations

from torch import nn

from ..registry import Registry, RecipeError

AUGMENTATIONS = Registry("augmentation", __name__, injected=("domain", "sample_rate"),
                         injected_from={"domain": "the dataset (the run's domain)",
                                        "sample_rate": "data.sample_rate (one sample rate per recipe)"})


def check_augmentations(specs, where: str = "augment") -> list[dict]:
    """Validated specs ``[{name, options...}]`` with defaults filled in, nested lists included."""
    if specs is None:
        return []
    if not isinstance(specs, list):
        raise RecipeError(f"{where}: expected a list of {{name: ..., options}} entries, got {specs!r}")
    out = []
    for i, spec in enumerate(specs):
        here = f"{where}[{i}]"
        if not isinstance(spec, dict) or "name" not in spec:
            raise RecipeError(f"{here}: expected a mapping with a 'name' (one of {', '.join(AUGMENTATIONS.names())})")
        opts = dict(spec)
        name = opts.pop("name")
        cls = AUGMENTATIONS.get(name, where=f"{here}.name")
        nested = {k: opts.pop(k) for k in getattr(cls, "nested", ()) if k in opts}
        checked = AUGMENTATIONS.check(name, opts, here)
        for k, v in nested.items():
            checked[k] = check_augmentations(v, f"{here}.{k}")
        out.append({"name": name, **checked})
    return out


def build_augmentations(specs: list, domain=None, sample_rate: int = 16000) -> tuple[nn.ModuleList, nn.ModuleList]:
    """``[{name: mixup, alpha: 0.4}, ...]`` -> (waveform augmentations, spectrogram augmentations)."""
    wave, spec = nn.ModuleList(), nn.ModuleList()
    for i, s in enumerate(specs or []):
        opts = dict(s)
        name = opts.pop("name", None)
        AUGMENTATIONS.get(name, where=f"augment[{i}].name")     # an unknown name says which entry
        aug = AUGMENTATIONS.build(name, opts, where=f"augment[{i}]", domain=domain, sample_rate=sample_rate)
        (wave if aug.stage == "wave" else spec).append(aug)
    return wave, spec
