"""ArcFace head (Deng et al. 2019), as seed 001 uses it: scaled cosines, an angular margin in training only.

Scores are ``s * cos(theta_c)`` between the L2-normalised embedding and the L2-normalised weight of
class ``c``. In training the true class's score becomes ``s * cos(theta_y + m)`` (insightface's
fall-back ``cos(theta) - m sin(m)`` where ``theta + m`` would pass pi, so the score stays monotonic).
The authors applied the margin with the true labels at validation and test time too, which uses
the label to score; here ``forward`` (evaluation, prediction, export) returns the plain scaled
cosines and only ``training_logits`` applies the margin.

Soft targets (mixup): the margin is applied to each class in proportion to its target weight,
``s * ((1 - t_c) cos(theta_c) + t_c phi(theta_c))``, which is ArcFace exactly for one-hot targets.
"""
from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

from . import HEADS


@HEADS.register("arcface")
class ArcFaceHead(nn.Module):
    def __init__(self, embed_dim: int, num_classes: int, s: float = 8.0, m: float = 0.2):
        super().__init__()
        if s <= 0 or not 0 <= m < math.pi / 2:
            raise ValueError(f"head: arcface needs s > 0 and 0 <= m < pi/2 (got s={s}, m={m})")
        self.s, self.m = float(s), float(m)
        self.weight = nn.Parameter(torch.empty(num_classes, embed_dim))
        nn.init.xavier_uniform_(self.weight)
        self.out_features = num_classes

    def cosines(self, embedding: torch.Tensor) -> torch.Tensor:
        return F.linear(F.normalize(embedding.float(), dim=1), F.normalize(self.weight.float(), dim=1))

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.s * self.cosines(embedding)

    def training_logits(self, embedding: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Scores with the margin on the target classes (``target``: one-hot or soft, ``(B, classes)``)."""
        cos = self.cosines(embedding).clamp(-1 + 1e-7, 1 - 1e-7)
        sin = torch.sqrt(1 - cos * cos)
        phi = cos * math.cos(self.m) - sin * math.sin(self.m)                 # cos(theta + m)
        phi = torch.where(cos > math.cos(math.pi - self.m), phi, cos - self.m * math.sin(self.m))
        return self.s * ((1 - target) * cos + target * phi)
