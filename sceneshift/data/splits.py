"""A recipe's dataset as arrays: each split's clips decoded (cached), with class and device indices.

:class:`DataSource` is what systems, evaluation and adaptation ask for data: it opens the
dataset adapter named by the recipe's ``data`` section and loads each split once, mapping scene
labels through ``data.scene_map`` and the run's :class:`~sceneshift.data.domain.Domain`.
:func:`iter_batches` is the one batched loop over a (memory-mapped) split used everywhere a
network runs over many clips.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .. import paths
from ..io import atomic_path, npy_bytes, open_memmap_allocated
from .cache import build_lock, load_waveforms
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
        """The clips of ``split``; the training split without the devices of ``data.exclude_devices``."""
        clips = self.adapter.clips(split)
        held_out = self.cfg.get("exclude_devices") or []
        if not held_out or split != self.cfg.get("train_split", "train"):
            return clips
        present = {c.device for c in clips}
        unknown = [d for d in held_out if d not in present]
        if unknown:
            raise ValueError(f"data.exclude_devices: {', '.join(unknown)} not a device of split {split!r} "
                             f"(devices: {', '.join(sorted(present, key=str))})")
        if self.adapter.source_device in held_out:
            raise ValueError(f"data.exclude_devices: {self.adapter.source_device} is the source device; "
                             f"training and adaptation need its clips")
        kept = [c for c in clips if c.device not in held_out]
        if not kept:
            raise ValueError(f"data.exclude_devices: excludes every device of split {split!r}")
        return kept

    def split(self, name: str) -> SplitData:
        if name not in self._splits:
            self._splits[name] = self._load(name)
        return self._splits[name]

    def _load(self, split: str) -> SplitData:
        cfg, clips = self.cfg, self.clips(split)
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


def cached_transform(waves, transform, key: str, batch_size: int = 64, log=print):
    """``transform`` applied once to every row of a cached split, stored as a float16 memory map.

    Used for front-end features when nothing random happens before the front end: each epoch then
    reads features instead of recomputing the STFT and filterbank. The cache is keyed by the
    waveform cache file (itself keyed by the audio files) and ``key`` (the front end's
    configuration), written atomically. Returns None when the features do not fit float16.
    """
    source = getattr(waves, "filename", None)
    if source is None:
        return None
    digest = hashlib.sha1(f"{Path(source).name}|{tuple(waves.shape)}|{key}".encode()).hexdigest()[:16]
    path = Path(source).with_name(f"{digest}.features.npy")
    if path.is_file():
        return np.load(path, mmap_mode="r")
    with build_lock(path, log=log):         # the processes of a distributed run: one computes, the others wait
        if path.is_file():
            return np.load(path, mmap_mode="r")
        return _write_transform(waves, transform, path, batch_size, log)


def _write_transform(waves, transform, path: Path, batch_size: int, log):
    first = transform(next(iter_batches(waves, 1)))
    log(f"caching front-end features {tuple(first.shape[1:])} of {len(waves)} clips ...")
    try:
        shape = (len(waves),) + tuple(first.shape[1:])
        with atomic_path(path, needed_bytes=npy_bytes(np.float16, shape)) as tmp:
            out = open_memmap_allocated(tmp, np.float16, shape)
            start = 0
            for x in iter_batches(waves, batch_size):
                y = transform(x).float().numpy()
                if not np.isfinite(y).all() or np.abs(y).max() > np.finfo(np.float16).max:
                    raise OverflowError
                out[start:start + len(y)] = y
                start += len(y)
            out.flush()
            del out
    except OverflowError:       # the temporary file is removed by atomic_path
        log("front-end features out of float16 range: computed per batch instead of cached")
        return None
    return np.load(path, mmap_mode="r")


def with_features(data: SplitData, frontend, key: str, batch_size: int = 64, log=print) -> SplitData | None:
    """The split with its waveforms replaced by cached ``frontend`` features (None if not cacheable)."""
    def transform(x):
        with torch.no_grad():
            return frontend(x)
    feats = cached_transform(data.waves, transform, key, batch_size, log)
    return None if feats is None else dataclasses.replace(data, waves=feats)


class WaveDataset(Dataset):
    """Items ``(waveform float32 [samples], class index, device index, row)``; batches read in one go.

    ``__getitems__`` is the DataLoader's batched fetch: a whole batch is one sorted read of the
    memory map and one conversion to float32, instead of a copy per clip and a stack (the per-clip
    path allocated and freed hundreds of kilobytes per clip, every epoch). Use :func:`loader` or
    pass ``collate_fn=first_item`` to a DataLoader of this dataset.
    """

    def __init__(self, data: SplitData, indices: np.ndarray | None = None):
        self.data = data
        self.indices = np.arange(len(data.clips)) if indices is None else np.asarray(indices)

    def __len__(self):
        return len(self.indices)

    def labels_of(self, rows: np.ndarray) -> np.ndarray:
        """Class indices the system may see for ``rows`` (a subclass can hide some)."""
        return self.data.labels[rows]

    def __getitem__(self, i):
        wave, y, d, row = self.__getitems__([i])[0]
        return wave[0], int(y[0]), int(d[0]), int(row[0])

    def __getitems__(self, items):
        rows = self.indices[np.asarray(items, dtype=np.int64)]
        order = np.argsort(rows, kind="stable")
        waves = np.empty((len(rows),) + self.data.waves.shape[1:], dtype=np.float32)
        waves[order] = self.data.waves[rows[order]]          # a copy: the split is read-only
        return [(torch.from_numpy(waves), torch.from_numpy(self.labels_of(rows).astype(np.int64)),
                 torch.from_numpy(self.data.devices[rows].astype(np.int64)), torch.from_numpy(rows.astype(np.int64)))]


def first_item(items):
    """The collate function of batched fetches: the dataset already returned the batch."""
    return items[0]


class EpochShuffle(torch.utils.data.Sampler):
    """A random order of ``n`` rows that depends only on (seed, epoch).

    Lightning calls ``set_epoch`` before every epoch (also after a resume), so a resumed run sees
    the same batches as an uninterrupted one; a sampler drawing from one running generator would
    replay epoch 0's order after every resume.
    """

    def __init__(self, n: int, seed: int = 0):
        self.n, self.seed, self.epoch = int(n), int(seed), 0

    def set_epoch(self, epoch: int):
        self.epoch = int(epoch)

    def __len__(self):
        return self.n

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())


class ShardedBatches(torch.utils.data.Sampler):
    """One process's share of the batches of ``batches`` (a batch sampler) in a run on ``replicas`` processes.

    Process ``rank`` takes batches ``rank, rank + replicas, ...`` of the order a single process
    would draw, so one step of all processes covers ``replicas`` consecutive batches of the
    single-process epoch, and every clip of the epoch is seen once by one process. Every process
    draws the whole order from the same seeded stream (``EpochShuffle`` or a system's own batch
    sampler, given ``set_epoch`` as before), so the shares are disjoint and a resumed run draws
    the same ones. When the batch count is not a multiple of ``replicas`` the last round is filled
    with the epoch's first batches (as torch's ``DistributedSampler`` pads), because every process
    must take the same number of steps.

    Sharding whole batches works for any batch sampler, also a system's own (seed 000's
    source/target batches), which Lightning's ``use_distributed_sampler`` cannot split.
    """

    def __init__(self, batches, rank: int, replicas: int):
        if not 0 <= rank < replicas:
            raise ValueError(f"rank {rank} is not one of {replicas} processes")
        self.batches, self.rank, self.replicas = batches, int(rank), int(replicas)

    def set_epoch(self, epoch: int):
        for s in (self.batches, getattr(self.batches, "sampler", None)):
            if callable(getattr(s, "set_epoch", None)):
                s.set_epoch(epoch)

    def __len__(self):
        return math.ceil(len(self.batches) / self.replicas)

    def __iter__(self):
        # a generator: the order is drawn at the first batch, after ``set_epoch`` (Lightning may create
        # the iterator before it calls ``set_epoch``, as it does on resuming)
        order = [list(b) for b in self.batches]
        if order:
            order += [order[i % len(order)] for i in range(len(self) * self.replicas - len(order))]
        yield from order[self.rank::self.replicas]


def shard_loader(dl: DataLoader, rank: int, replicas: int) -> DataLoader:
    """``dl`` with its batches shared among ``replicas`` processes (:class:`ShardedBatches`); itself for one."""
    if replicas <= 1:
        return dl
    if dl.batch_sampler is None or isinstance(dl.dataset, torch.utils.data.IterableDataset):
        raise ValueError("a distributed run needs a training loader with batches drawn by a sampler "
                         "(not an iterable dataset, not batch_size=None)")
    return DataLoader(dl.dataset, batch_sampler=ShardedBatches(dl.batch_sampler, rank, replicas),
                      num_workers=dl.num_workers, collate_fn=dl.collate_fn, pin_memory=dl.pin_memory,
                      timeout=dl.timeout, worker_init_fn=dl.worker_init_fn,
                      multiprocessing_context=dl.multiprocessing_context, generator=dl.generator,
                      prefetch_factor=dl.prefetch_factor if dl.num_workers else None,
                      persistent_workers=dl.persistent_workers)


def loader(data: SplitData, batch_size: int, shuffle: bool, seed: int = 0, indices=None,
           drop_last: bool = False) -> DataLoader:
    """Batches of ``data``'s clips (``indices``: a subset); ``drop_last`` drops an incomplete last batch
    when there is a full one (a set smaller than one batch is still one batch)."""
    dataset = WaveDataset(data, indices)
    sampler = EpochShuffle(len(dataset), seed) if shuffle else None
    # its own generator: creating an iterator then draws nothing from the global stream (dropout's),
    # wherever Lightning happens to create it
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=0,
                      drop_last=drop_last and len(dataset) > batch_size,
                      collate_fn=first_item, generator=torch.Generator().manual_seed(seed))


def resolve_root(root: str | Path | None) -> Path:
    """The dataset folder a command works on: the given one, or the built urban-mobile (version-checked)."""
    from .benchmark import check_version
    path = Path(root).expanduser().resolve() if root else paths.default_benchmark().resolve()
    check_version(path)
    return path
