"""Model registry: a recipe names a backbone by string (``model.name: kaggle_cnn``).

A backbone takes a plain tensor ``(batch, channels, mel bands, frames)`` and returns an
embedding ``(batch, embed_dim)``; it knows nothing of datasets, labels or training. Backbones
that support class activation maps also provide ``feature_maps(x)`` (the last convolutional
maps before pooling) and ``pool(maps)``. One file per model family registers its builders.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil

from torch import nn

MODELS: dict = {}


def register_model(fn):
    """Decorator: register a builder under its function name."""
    if fn.__name__ in MODELS:
        raise ValueError(f"model {fn.__name__!r} registered twice")
    MODELS[fn.__name__] = fn
    return fn


def _import_all():
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


def list_models() -> list[str]:
    _import_all()
    return sorted(MODELS)


def create_model(name: str, in_channels: int, **kwargs) -> nn.Module:
    """Build the backbone ``name``; unknown names and options give an error naming them."""
    _import_all()
    if name not in MODELS:
        raise ValueError(f"model.name: unknown model {name!r}; registered: {', '.join(sorted(MODELS))}")
    fn = MODELS[name]
    params = inspect.signature(fn).parameters
    unknown = [k for k in kwargs if k not in params]
    if unknown:
        known = [p for p in params if p != "in_channels"]
        raise ValueError(f"model.{unknown[0]}: not an option of {name!r} (options: {', '.join(known)})")
    return fn(in_channels=in_channels, **kwargs)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def count_macs(module: nn.Module, *inputs) -> int:
    """Multiply-accumulates of one forward pass per example, counted by hooks on Conv2d / Linear.

    Why hooks: they count what actually runs (frequency splits, skipped branches, any input
    length) without a per-model formula. Batch norm, activations and pooling are not counted
    (they are a few percent of a CNN's cost), as in the usual DCASE complexity reports.
    """
    import torch
    total = [0]

    def conv_hook(m, inp, out):
        total[0] += out[0].numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def linear_hook(m, inp, out):
        total[0] += out[0].numel() * m.in_features

    hooks = [m.register_forward_hook(conv_hook if isinstance(m, nn.Conv2d) else linear_hook)
             for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = module.training
    try:
        module.eval()
        with torch.no_grad():
            module(*inputs)
    finally:
        module.train(was_training)
        for h in hooks:
            h.remove()
    return total[0]
