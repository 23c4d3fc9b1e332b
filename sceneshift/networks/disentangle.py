"""Seed 000's network: core -> normalised embedding z -> binary mask m -> scene and device heads.

Figure 1 of Abesser et al. (ICASSP 2022): a core model f (the Kaggle CNN, whose last dense
layer gives the embedding z, followed by LayerNorm) feeds ``z * m`` to two dense heads, one for
the acoustic scene (A classes) and one for the recording device (D classes). In the masked
configurations (C2M, C3M) the embedding has 2E values; mask ``+`` keeps the first half
(meant for the scene), mask ``-`` the second half (meant for the device). Without masking
the mask is all ones. The softmax of both heads lives in the losses and at scoring.

The class is a ``SceneClassifier`` so that everything built for deployable classifiers
(``model.pt``, evaluation, band-wise adaptation through ``adapt``, prediction) works with it:
``forward(wave)`` gives scene logits under the evaluation mask.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from . import NETWORKS
from .classifier import SceneClassifier, build_backbone, build_frontend

MASKS = ("+", "-", "all")


class DisentangleNet(SceneClassifier):
    def __init__(self, frontend: nn.Module, backbone: nn.Module, num_classes: int, num_devices: int,
                 masked: bool, eval_mask: str | None = None):
        embed_dim = backbone.embed_dim
        if masked and embed_dim % 2:
            raise ValueError(f"model.embed_dim: the masked configurations split the embedding in two halves, "
                             f"so it must be even (got {embed_dim})")
        super().__init__(frontend, backbone, nn.Linear(embed_dim, num_classes))
        self.device_head = nn.Linear(embed_dim, num_devices)
        self.masked = masked
        self.eval_mask = eval_mask or ("+" if masked else "all")
        if self.eval_mask not in MASKS:
            raise ValueError(f"network.eval_mask: expected one of {MASKS}, got {self.eval_mask!r}")
        half = embed_dim // 2
        plus = torch.zeros(embed_dim)
        plus[:half] = 1.0
        self.register_buffer("mask_plus", plus, persistent=False)
        self.register_buffer("mask_minus", 1.0 - plus, persistent=False)
        self.register_buffer("mask_all", torch.ones(embed_dim), persistent=False)

    def mask(self, name: str) -> torch.Tensor:
        """The binary mask ``+`` (first half ones), ``-`` (second half ones) or ``all``."""
        if name not in MASKS:
            raise ValueError(f"mask must be one of {MASKS}, got {name!r}")
        return {"+": self.mask_plus, "-": self.mask_minus, "all": self.mask_all}[name]

    def heads(self, z: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scene and device logits of embeddings ``z`` (B, E) under ``mask`` (E,) or per row (B, E)."""
        zm = z * mask
        return self.head(zm), self.device_head(zm)

    def outputs(self, wave: torch.Tensor, mask: str = "+") -> tuple[torch.Tensor, torch.Tensor]:
        """Scene and device logits of a batch under one mask setting (Table 1's + and -)."""
        return self.heads(self.embed(wave), self.mask(mask))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(wave) * self.mask(self.eval_mask))


@NETWORKS.register
def disentangle(cfg: dict, domain, masked: bool = False, eval_mask: Literal["+", "-", "all"] | None = None):
    """Set by the disentangle system from its configuration (``masked`` for C2M and C3M)."""
    if cfg["head"]["name"] != "linear":
        raise ValueError(f"head.name: the disentangle network uses dense (linear) heads, got {cfg['head']['name']!r}")
    frontend = build_frontend(cfg)
    backbone = build_backbone(cfg, frontend.channels)
    return DisentangleNet(frontend, backbone, len(domain.classes), len(domain.devices), masked, eval_mask)
