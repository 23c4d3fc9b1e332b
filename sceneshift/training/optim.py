"""Optimisers and learning-rate schedules named in a recipe's ``train`` section."""
from __future__ import annotations

import math

import torch


def build_optimizer(params, t: dict):
    name = t["optimizer"].lower()
    if name == "adam":
        opt = torch.optim.Adam(params, lr=t["lr"], weight_decay=t["weight_decay"])
    elif name == "adamw":
        opt = torch.optim.AdamW(params, lr=t["lr"], weight_decay=t["weight_decay"])
    elif name == "sgd":
        opt = torch.optim.SGD(params, lr=t["lr"], momentum=t["momentum"], weight_decay=t["weight_decay"])
    else:
        raise ValueError(f"train.optimizer: unknown optimiser {t['optimizer']!r} (adam, adamw, sgd)")
    sched = t["scheduler"]
    epochs, warm = t["epochs"], t.get("warmup_epochs", 0)
    if sched in (None, "none"):
        factor = lambda e: 1.0
    elif sched == "step":      # halve (gamma) every step_epochs, as in seed 000
        factor = lambda e: t["gamma"] ** (e // t["step_epochs"])
    elif sched == "cosine":
        factor = lambda e: 0.5 * (1 + math.cos(math.pi * min(e, epochs) / max(1, epochs)))
    else:
        raise ValueError(f"train.scheduler: unknown schedule {sched!r} (none, step, cosine)")
    lam = (lambda e: factor(e) * min(1.0, (e + 1) / warm)) if warm else factor
    return {"optimizer": opt, "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.LambdaLR(opt, lam),
                                               "interval": "epoch"}}
