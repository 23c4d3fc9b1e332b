"""Training: one Lightning module per system, selected by the recipe's ``system`` key."""
from __future__ import annotations

import importlib

SYSTEMS = {
    "classifier": "sceneshift.training.module:ClassifierModule",
    "disentangle": "sceneshift.training.disentangle:DisentangleModule",
}


def get_system(name: str):
    if name not in SYSTEMS:
        raise ValueError(f"system: unknown system {name!r}; available: {', '.join(sorted(SYSTEMS))}")
    module, cls = SYSTEMS[name].split(":")
    return getattr(importlib.import_module(module), cls)
