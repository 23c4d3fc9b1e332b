"""A recipe's dataset as arrays: each split's clips decoded (cached), with class and device indices.

:class:`DataSource` is what systems, evaluation and adaptation ask for data: it opens the
dataset adapter named by the recipe's ``data`` section and loads each split once, mapping scene
labels through ``data.scene_map`` and the run's :class:`~sceneshift.data.domain.Domain`.
:func:`iter_batches` is the one batched loop over a (memory-mapped) split used everywhere a
network runs over many clips.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .. import paths
from .cache import load_waveforms
from .datasets import Clip, DatasetAdapter, open_dataset
from .domain import Domain


@dataclass
class SplitData:
    waves: np.ndarray            # (N, samples) float16 memory map, or (N, C, F, T) precomputed features
    clips: list[Clip]
    labels: np.ndarray           # class index per clip, -1 where unlabeled or not a class of the run
    devices: np.ndarray          # device index per clip, -1 for a device the run did not train on
    skipped: list                # (filename, reason) of files that could not be used

    def rows(self, labeled: bool = False, device: str | None = None) -> np.ndarray:
        keep = np.ones(len(self.clips), dtype=bool)
        if labeled:
            keep &= self.labels >= 0
        if device is not None:
            keep &= np.array([c.device == device for c in self.clips], dtype=bool)
        return np.flatnonzero(keep)


def iter_batches(waves, batch_size: int, rows=None, device="cpu"):
    """Float32 tensors of ``waves[rows]`` (all rows by default), ``batch_size`` at a time, in order."""
    n = len(waves) if rows is None else len(rows)
    for i in range(0, n, batch_size):
        if rows is None:
            chunk = waves[i:i + batch_size]
        else:
            idx = np.asarray(rows[i:i + batch_size])
            order = np.argsort(idx, kind="stable")          # memory maps read fastest in file order
            chunk = np.empty((len(idx),) + waves.shape[1:], dtype=waves.dtype)
            chunk[order] = waves[idx[order]]
        yield torch.from_numpy(np.array(chunk, dtype=np.float32)).to(device)


class DataSource:
    """The dataset of a recipe's ``data`` section; splits are loaded once and kept."""

    def __init__(self, data_cfg: dict, domain: Domain | None = None, log=print):
        self.cfg, self.domain, self.log = dict(data_cfg), domain, log
        self.adapter: DatasetAdapter = open_dataset(self.cfg["root"], self.cfg.get("dataset", "auto"),
                                                    self.cfg.get("dataset_options"))
        self._splits: dict[str, SplitData] = {}

    def clips(self, split: str) -> list[Clip]:
        return self.adapter.clips(split)

    def split(self, name: str) -> SplitData:
        if name not in self._splits:
            self._splits[name] = self._load(name)
        return self._splits[name]

    def _load(self, split: str) -> SplitData:
        cfg, clips = self.cfg, self.adapter.clips(split)
        if not clips:
            raise ValueError(f"{self.adapter.root}: split {split!r} lists no clip")
        if cfg.get("features"):     # precomputed feature arrays instead of audio (data/features.py)
            from .features import load_features
            waves, kept, skipped = load_features(cfg["features"], clips, log=self.log)
        else:
            n = int(round(cfg["clip_seconds"] * cfg["sample_rate"]))
            files = [self.adapter.audio_path(c) for c in clips]
            waves, kept, skipped = load_waveforms(self.adapter.root, clips, files, cfg["sample_rate"], n,
                                                  paths.data_dir() / "cache", cfg.get("workers"), log=self.log)
        domain = self.domain
        cidx = {c: i for i, c in enumerate(domain.classes if domain else [])}
        didx = {d: i for i, d in enumerate(domain.devices if domain else [])}
        scene_map = cfg.get("scene_map") or {}     # e.g. scene -> broad class for a 3-class model
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


def resolve_root(root: str | Path | None) -> Path:
    """The dataset folder a command works on: the given one, or the built urban-mobile (version-checked)."""
    from .benchmark import check_version
    path = Path(root).expanduser().resolve() if root else paths.default_benchmark().resolve()
    check_version(path)
    return path
