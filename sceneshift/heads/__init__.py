"""Heads map an embedding to class scores (logits); losses live beside them."""
from torch import nn


class LinearHead(nn.Linear):
    """A dense layer to class logits (the softmax is in the loss or at scoring)."""

    def __init__(self, embed_dim: int, num_classes: int):
        super().__init__(embed_dim, num_classes)


HEADS = {"linear": LinearHead}


def create_head(name: str, embed_dim: int, num_classes: int) -> nn.Module:
    if name not in HEADS:
        raise ValueError(f"head.name: unknown head {name!r}; available: {', '.join(sorted(HEADS))}")
    return HEADS[name](embed_dim, num_classes)
