"""Optimisers and learning-rate schedules named in a recipe's ``train`` section."""
from __future__ import annotations

import math

import torch


def _cycle_position(epoch: int, first: int, mult: int) -> float:
    """Where ``epoch`` lies in its warm-restart cycle, in [0, 1): cycles of first, first*mult, ... epochs."""
    length = first
    while epoch >= length:
        epoch -= length
        length *= mult
    return epoch / length


def restart_epochs(first: int, mult: int, upto: int) -> list[int]:
    """The epochs (0-based) at which the rate jumps back to its maximum, below ``upto``."""
    out, e, length = [], first, first
    while e < upto:
        out.append(e)
        length *= mult
        e += length
    return out


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
    elif sched == "warm_restarts":   # SGDR (Loshchilov & Hutter): cosine cycles of restart_epochs, x restart_mult
        floor = t["min_lr"] / t["lr"]
        factor = lambda e: floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * _cycle_position(
            e, t["restart_epochs"], t["restart_mult"])))
    else:
        raise ValueError(f"train.scheduler: unknown schedule {sched!r} (none, step, cosine, warm_restarts)")
    lam = (lambda e: factor(e) * min(1.0, (e + 1) / warm)) if warm else factor
    return {"optimizer": opt, "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.LambdaLR(opt, lam),
                                               "interval": "epoch"}}
