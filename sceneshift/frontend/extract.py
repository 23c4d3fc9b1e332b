"""``sceneshift features extract``: write a recipe's front-end features of a dataset as a feature folder.

The folder mirrors the TAU layout (``audio/x-a.npy`` for the clip ``audio/x-a.wav``) and holds
copies of the clip lists, so it is a complete dataset root itself (see ``data/features.py``).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from ..data.features import feature_path
from ..data.splits import DataSource, iter_batches
from ..io import atomic_save_npy, atomic_write_text
from . import FRONTENDS


def extract_features(data_cfg: dict, frontend_cfg: dict, out: str | Path, splits=("train", "validate", "evaluate"),
                     batch_size: int = 64, log=print) -> Path:
    """Write the front-end features of ``splits`` of the dataset ``data_cfg['root']`` into ``out``."""
    if data_cfg.get("features"):
        raise ValueError("data.features: extraction reads audio; unset data.features")
    source = DataSource(data_cfg, log=log)
    root, out = Path(source.adapter.root), Path(out)
    if source.adapter.name != "tau":
        raise ValueError(f"features extract writes the TAU layout; {root} is a {source.adapter.name} dataset")
    opts = dict(frontend_cfg)
    frontend = FRONTENDS.build(opts.pop("name"), opts, where="frontend", sample_rate=data_cfg["sample_rate"]).eval()
    shape = None
    for split in splits:
        data = source.split(split)
        start = 0
        for w in iter_batches(data.waves, batch_size):
            with torch.no_grad():
                x = frontend(w).numpy()
            shape = x.shape[1:]
            for clip, feats in zip(data.clips[start:start + len(x)], x):
                atomic_save_npy(feature_path(out, clip.filename), feats)
            start += len(x)
        split_file = source.adapter.split_file(split)
        (out / "evaluation_setup").mkdir(parents=True, exist_ok=True)
        shutil.copy(split_file, out / "evaluation_setup" / split_file.name)
        log(f"{split}: {len(data.clips)} clips -> {out}")
    for name in ("meta.csv", "devices.json"):
        if (root / name).is_file():
            shutil.copy(root / name, out / name)
    spec = {"layout": "CFT", "shape": list(shape) if shape is not None else None, "source": str(root),
            "sample_rate": data_cfg["sample_rate"], "clip_seconds": data_cfg["clip_seconds"],
            "frontend": frontend_cfg}
    atomic_write_text(out / "features.json", json.dumps(spec, indent=2) + "\n")
    return out
