"""Writing files so that an interrupted run never leaves a half-written one behind.

Every file sceneshift writes for later use (checkpoints, caches, reports, figures, recipes) goes
through :func:`atomic_path`: the content is written to a temporary name beside the target and
renamed over it only when complete, so a reader sees the old file or the new one, never a torn
one; on failure the temporary is removed.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path`` (same suffix); rename it over ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | Path, text: str):
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _finite(obj):
    """NaN and infinities become null: JSON has no spelling for them."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def atomic_write_json(path: str | Path, obj):
    atomic_write_text(path, json.dumps(_finite(obj), indent=2, sort_keys=False, allow_nan=False) + "\n")


def atomic_torch_save(obj, path: str | Path):
    import torch
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def atomic_savefig(fig, path: str | Path, **kw):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, **kw)


def atomic_save_npy(path: str | Path, array):
    import numpy as np
    with atomic_path(path) as tmp:
        np.save(tmp, array)
