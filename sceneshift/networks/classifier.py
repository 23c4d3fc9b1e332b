"""The scene classifier: waveform -> front end -> backbone -> head -> scene logits.

This plain ``nn.Module`` is what a run saves (``model.pt``), what evaluation and prediction
load and what export traces. ``adapt`` is an optional feature-level transform between front end
and backbone (e.g. band-wise statistics matching fitted at evaluation time); it is not saved
with the run.
"""
from __future__ import annotations

import torch
from torch import nn

from ..frontend import FRONTENDS
from ..frontend.precomputed import PrecomputedFrontend
from ..heads import HEADS
from ..models import MODELS
from . import NETWORKS


class SceneClassifier(nn.Module):
    def __init__(self, frontend: nn.Module, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.frontend, self.backbone, self.head = frontend, backbone, head
        self.adapt: nn.Module | None = None

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        x = self.frontend(wave)
        return self.adapt(x) if self.adapt is not None else x

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.features(wave))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(wave))


def build_frontend(cfg: dict) -> nn.Module:
    """The recipe's front end at ``data.sample_rate``, or a pass-through on precomputed features."""
    opts = dict(cfg["frontend"])
    if cfg["data"].get("features"):
        return PrecomputedFrontend(channels=1 + int(opts.get("n_deltas", 0)))
    return FRONTENDS.build(opts.pop("name"), opts, where="frontend", sample_rate=cfg["data"]["sample_rate"])


def build_backbone(cfg: dict, in_channels: int) -> nn.Module:
    opts = dict(cfg["model"])
    return MODELS.build(opts.pop("name"), opts, where="model", in_channels=in_channels)


def build_head(cfg: dict, embed_dim: int, num_classes: int) -> nn.Module:
    opts = dict(cfg["head"])
    return HEADS.build(opts.pop("name"), opts, where="head", embed_dim=embed_dim, num_classes=num_classes)


@NETWORKS.register
def classifier(cfg: dict, domain) -> SceneClassifier:
    frontend = build_frontend(cfg)
    backbone = build_backbone(cfg, frontend.channels)
    return SceneClassifier(frontend, backbone, build_head(cfg, backbone.embed_dim, len(domain.classes)))
