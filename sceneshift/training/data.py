"""Splits of a TAU-layout dataset as cached waveforms, labels and device indices."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .. import paths
from ..data.cache import load_waveforms
from ..data.tau import Clip, read_split


@dataclass
class SplitData:
    waves: np.ndarray            # (N, samples) float16, memory-mapped
    clips: list[Clip]
    labels: np.ndarray           # class index per clip, -1 where unlabeled or unknown
    devices: np.ndarray          # device index per clip, -1 for a device the run does not know
    skipped: list                # (filename, reason) of files that could not be used


def load_split(root: str | Path, split: str, data_cfg: dict, classes: list[str] | None = None,
               devices: list[str] | None = None, log=print) -> SplitData:
    clips = read_split(root, split)
    if data_cfg.get("features"):     # precomputed feature arrays instead of audio (data/features.py)
        from ..data.features import load_features
        waves, kept, skipped = load_features(data_cfg["features"], clips, log=log)
    else:
        n = int(round(data_cfg["clip_seconds"] * data_cfg["sample_rate"]))
        waves, kept, skipped = load_waveforms(root, clips, data_cfg["sample_rate"], n,
                                              paths.data_dir() / "cache", data_cfg.get("workers"), log=log)
    cidx = {c: i for i, c in enumerate(classes or [])}
    didx = {d: i for i, d in enumerate(devices or [])}
    scene_map = data_cfg.get("scene_map") or {}     # e.g. scene -> broad class for a 3-class model
    labels = np.array([cidx.get(scene_map.get(c.scene, c.scene), -1) for c in kept], dtype=np.int64)
    devs = np.array([didx.get(c.device, -1) for c in kept], dtype=np.int64)
    return SplitData(waves, kept, labels, devs, skipped)


class WaveDataset(Dataset):
    """Items ``(waveform float32 [samples], class index, device index, row)``."""

    def __init__(self, data: SplitData, indices: np.ndarray | None = None):
        self.data = data
        self.indices = np.arange(len(data.clips)) if indices is None else np.asarray(indices)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        row = int(self.indices[i])
        wave = torch.from_numpy(np.array(self.data.waves[row], dtype=np.float32))  # a copy: the split is read-only
        return wave, int(self.data.labels[row]), int(self.data.devices[row]), row


def loader(data: SplitData, batch_size: int, shuffle: bool, seed: int = 0, indices=None) -> DataLoader:
    g = torch.Generator()
    g.manual_seed(seed)
    return DataLoader(WaveDataset(data, indices), batch_size=batch_size, shuffle=shuffle, generator=g,
                      drop_last=False, num_workers=0)
