"""The deployable classifier: waveform -> front end -> backbone -> head -> scene logits.

This plain ``nn.Module`` is what a run saves (``model.pt``), what evaluation and prediction
load and what export traces. Training wraps it in a Lightning module; it knows nothing of
training. ``adapt`` is an optional feature-level transform between front end and backbone
(e.g. band-wise statistics matching fitted at evaluation time); it is not saved with the run.
"""
from __future__ import annotations

import torch
from torch import nn

from .frontend import create_frontend
from .heads import create_head
from .models import create_model


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
    """The recipe's front end, or a pass-through when the run reads precomputed features."""
    if cfg["data"].get("features"):
        from .data.features import PrecomputedFrontend
        return PrecomputedFrontend(channels=1 + int(cfg["frontend"].get("n_deltas", 0)))
    return create_frontend(cfg["frontend"])


def build_classifier(cfg: dict, num_classes: int) -> SceneClassifier:
    frontend = build_frontend(cfg)
    model_cfg = dict(cfg["model"])
    backbone = create_model(model_cfg.pop("name"), in_channels=frontend.channels, **model_cfg)
    head = create_head(cfg["head"]["name"], backbone.embed_dim, num_classes)
    return SceneClassifier(frontend, backbone, head)
