"""Loss terms of seed 000 (Abesser et al., ICASSP 2022), each over a chosen subset of batch rows.

Every configuration of the paper (C0 ... C3M) is a sum of two kinds of term, each computed
on some rows of the batch only (source rows, the first half of the batch, ...):

* ``cross_entropy``: eq. (2), mean categorical cross-entropy of the softmax over the rows.
* ``variance_loss``: eq. (3), the mean over rows of the variance of the softmax output across
  classes. A one-hot prediction has the largest variance, a uniform one zero, so *minimising*
  this term pushes the head towards uniform predictions ("maximises the uncertainty", as the
  paper's text says and the authors' code does). Eq. (3) as printed carries a leading minus
  sign, which would reward confident predictions instead and contradicts the text; we
  implement the intended, positive variance and document the discrepancy here.

A term over an empty row subset (a batch whose first half happens to hold no source clip, say)
is zero but stays connected to the graph, so the training step never breaks on it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _select(rows: torch.Tensor | None, n: int, device) -> torch.Tensor:
    if rows is None:
        return torch.ones(n, dtype=torch.bool, device=device)
    if rows.dtype != torch.bool or rows.shape != (n,):
        raise ValueError(f"rows must be a boolean mask of shape ({n},), got {rows.dtype} {tuple(rows.shape)}")
    return rows


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
    """Mean cross-entropy of ``softmax(logits)`` against class indices ``target`` over ``rows``.

    A selected row whose target is negative (a hidden label) is an error: it means a
    configuration tried to learn from a label it must not see.
    """
    rows = _select(rows, len(logits), logits.device)
    if not rows.any():
        return logits.sum() * 0.0
    t = target[rows]
    if (t < 0).any():
        raise ValueError("cross_entropy: a selected row has no label (target < 0); "
                         "the configuration uses labels it was not given")
    return F.cross_entropy(logits[rows], t)


def variance_loss(logits: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over ``rows`` of the (population) variance across classes of ``softmax(logits)``."""
    rows = _select(rows, len(logits), logits.device)
    if not rows.any():
        return logits.sum() * 0.0
    p = torch.softmax(logits[rows], dim=1)
    return p.var(dim=1, unbiased=False).mean()
