"""Batch-norm statistics re-estimated on a target device (AdaBN; Li et al., ICLR-W 2017 / Pattern
Recognition 2018), alone or after band-wise matching.

A network trained with batch normalisation normalises every layer with running statistics of its
training devices. A device the run never trained on shifts those statistics layer by layer, not
only at the input where band-wise matching acts. AdaBN recomputes the running mean and variance
of every batch-norm layer after the front end from the target device's unlabeled clips (labels are
never read, weights never change), so the deployed network sees that device's statistics where it
expects its training ones. ``bandwise+adabn`` first matches the input bands, then recomputes the
layers' statistics on the matched features.

The statistics are measured in one pass over the target clips with every other layer in evaluation
mode (dropout off); see :func:`target_norm_state`. An adapter carries them as
``norm_state``; :func:`sceneshift.adaptation.adapted` swaps them in while the device is scored and
restores the network's own afterwards, and an adapted export writes them into the file.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data.splits import iter_batches
from . import ADAPTATIONS, adapted
from .bandwise import fit_bandwise


class NormStatistics(nn.Module):
    """One device's adapter: an optional feature transform (``features``, e.g. band-wise matching)
    applied between front end and backbone, and ``norm_state``: the running statistics of every
    batch-norm layer after the front end, by state-dict name."""

    def __init__(self, features: nn.Module | None, norm_state: dict[str, torch.Tensor]):
        super().__init__()
        self.features = features
        self.norm_state = norm_state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.features is None else self.features(x)


def norm_layers(net: nn.Module) -> dict[str, nn.modules.batchnorm._BatchNorm]:
    """Batch-norm layers after the front end (a learned front end is what band-wise statistics are
    measured through, so it is left as trained), by module name."""
    skip = {id(m) for m in net.frontend.modules()} if hasattr(net, "frontend") else set()
    return {name: m for name, m in net.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats and id(m) not in skip}


def batches_of_two_or_more(n: int, batch_size: int, device_name: str = "the target device") -> list[np.ndarray]:
    """Row indices ``0..n-1`` in batches of ``batch_size``, a last batch of one merged into the one before
    (batch norm in training mode cannot normalise a single clip's pooled features)."""
    if n < 2:
        raise ValueError(f"adabn: {device_name} needs at least two clips to measure statistics on, got {n}")
    chunks = [np.arange(i, min(i + batch_size, n)) for i in range(0, n, max(batch_size, 2))]
    if len(chunks[-1]) == 1:
        chunks[-2:] = [np.concatenate(chunks[-2:])]
    return chunks


@torch.no_grad()
def target_norm_state(net: nn.Module, waves, rows, batch_size: int = 128, device="cpu",
                      device_name: str = "the target device") -> dict[str, torch.Tensor]:
    """Running statistics of every batch-norm layer after the front end, measured on ``waves[rows]``
    through ``net`` as it is (with its ``adapt`` step); the network is left unchanged.

    Each layer's statistics are the exact mean and (population) variance of its input over all clips
    and positions, summed in float64, so the first layer's do not depend on the batch size; while
    they are measured every batch-norm layer normalises with its batch's own statistics (deeper
    layers' inputs therefore depend a little on how clips are batched; in order, so deterministic).
    """
    layers = norm_layers(net)
    if not layers:
        raise ValueError("adabn: the network has no batch-norm layer after its front end to re-estimate")
    sums = {name: [0.0, 0.0, 0] for name in layers}

    def record(name):
        def hook(module, inputs):
            x = inputs[0].detach().double().transpose(0, 1).flatten(1)      # (channels, batch * positions)
            acc = sums[name]
            acc[0], acc[1], acc[2] = acc[0] + x.sum(1), acc[1] + (x * x).sum(1), acc[2] + x.shape[1]
        return hook

    chunks = batches_of_two_or_more(len(waves) if rows is None else len(rows), batch_size, device_name)
    was_training = net.training
    keep = {name: {b: t.clone() for b, t in m.named_buffers()} for name, m in layers.items()}
    net.eval()
    hooks = [m.register_forward_pre_hook(record(name)) for name, m in layers.items()]
    try:
        for m in layers.values():
            m.train()                      # batch statistics, as in training; running buffers restored below
        for chunk in chunks:
            for w in iter_batches(waves, len(chunk), chunk if rows is None else np.asarray(rows)[chunk], device):
                net(w)
    finally:
        for h in hooks:
            h.remove()
        for name, m in layers.items():
            for b, t in m.named_buffers():
                t.copy_(keep[name][b])
        net.train(was_training)
    state = {}
    for name, (total, total_sq, count) in sums.items():
        mean = total / count
        m = layers[name]
        state[f"{name}.running_mean"] = mean.to(m.running_mean.dtype)
        state[f"{name}.running_var"] = (total_sq / count - mean * mean).clamp_min(0.0).to(m.running_var.dtype)
    return state


@ADAPTATIONS.register("adabn")
def fit_adabn(net: nn.Module, source, targets: dict, batch_size: int = 128, device="cpu") -> dict:
    """``{device: NormStatistics}``: each target's batch-norm statistics; features unchanged (``source`` unused)."""
    return {name: NormStatistics(None, target_norm_state(net, waves, rows, batch_size, device, f"device {name}"))
            for name, (waves, rows) in targets.items()}


@ADAPTATIONS.register("bandwise+adabn")
def fit_bandwise_adabn(net: nn.Module, source, targets: dict, batch_size: int = 128, device="cpu") -> dict:
    """Band-wise matching to ``source``, then each target's batch-norm statistics on the matched features."""
    out = {}
    for name, match in fit_bandwise(net, source, targets, batch_size, device).items():
        waves, rows = targets[name]
        with adapted(net, match):
            out[name] = NormStatistics(match, target_norm_state(net, waves, rows, batch_size, device,
                                                                f"device {name}"))
    return out
