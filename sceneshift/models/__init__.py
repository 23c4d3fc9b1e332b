"""Model registry: a recipe names a backbone by string (``model.name: kaggle_cnn``).

A backbone takes a plain tensor ``(batch, channels, mel bands, frames)`` and returns an
embedding ``(batch, embed_dim)``; it knows nothing of datasets, labels or training. Backbones
that support class activation maps also provide ``feature_maps(x)`` (the last convolutional
maps before pooling) and ``pool(maps)``. One file per model family registers its builders
with ``@MODELS.register``; a builder's keyword parameters are the recipe's ``model`` options.
"""
from __future__ import annotations

from torch import nn

from ..registry import Registry

MODELS = Registry("model", __name__, injected=("in_channels",),
                  injected_from={"in_channels": "the front end's channel count"})


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def count_macs(module: nn.Module, *inputs) -> int:
    """Multiply-accumulates of one forward pass per example, counted by hooks on Conv1d / Conv2d / Linear.

    Why hooks: they count what actually runs (frequency splits, skipped branches, any input
    length) without a per-model formula. Batch norm, activations and pooling are not counted
    (they are a few percent of a CNN's cost), as in the usual DCASE complexity reports.
    """
    import torch
    total = [0]

    def conv_hook(m, inp, out):     # Conv1d (a learned front end such as the Wavegram) and Conv2d
        taps = m.kernel_size[0] * (m.kernel_size[1] if len(m.kernel_size) > 1 else 1)
        total[0] += out[0].numel() * (m.in_channels // m.groups) * taps

    def linear_hook(m, inp, out):
        total[0] += out[0].numel() * m.in_features

    hooks = [m.register_forward_hook(conv_hook if isinstance(m, (nn.Conv1d, nn.Conv2d)) else linear_hook)
             for m in module.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]
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
