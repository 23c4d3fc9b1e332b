"""Heads map an embedding to class scores (logits); losses live beside them (``losses.py``).

A head's constructor takes the embedding width and the class count (injected by the network
builder from the backbone and the run's domain); its other keyword parameters are the recipe's
``head`` options.
"""
from torch import nn

from ..registry import Registry

HEADS = Registry("head", __name__, injected=("embed_dim", "num_classes"),
                 injected_from={"embed_dim": "the backbone", "num_classes": "the dataset's classes"})


@HEADS.register("linear")
class LinearHead(nn.Linear):
    """A dense layer to class logits (the softmax is in the loss or at scoring)."""

    def __init__(self, embed_dim: int, num_classes: int):
        super().__init__(embed_dim, num_classes)
