"""Seed 000's training system: configurations C0 ... C3M of Abesser et al. (ICASSP 2022).

Everything that distinguishes the six configurations of Figure 2 is in ``CONFIGS`` below:
how a batch is composed, whether the embedding is masked, which scene labels the
configuration may see and which loss terms over which batch rows make up L_A (scene) and
L_D (device). The total loss is eq. (1), ``L = L_A + w_D * L_D``; variance terms carry the
weight ``w_v``. Defaults follow the paper: w_D = 10 (the authors' code used 100), w_v = 500.

Batches (Section 3.3 and the authors' code): B/2 random clips of the source device and B/2
random clips of the target devices, shuffled across batch positions. The mask goes by
*position*: rows in the first half of the batch get ``m+`` (first embedding half), rows in the
second half ``m-``. In urban-mobile the source is device ``a`` and the targets are the seen
devices of the training split (b, c, s1-s3); in DCASE 2018 Task 1B they are A and B, C.

Configurations that may not use target scene labels (C2, C2M) never receive them: the
training dataset replaces them by -1 before they reach the module, and a loss term that
selects a row without a label raises. Checkpoints are chosen on the validation split with
the labels the configuration may use (``train.monitor`` in the recipes: source-device
accuracy ``val/acc_source`` for C0, C2, C2M; all devices ``val/acc`` for C1, C3, C3M).

Options (recipe section ``system_options``, the keyword parameters of ``DisentangleSystem``):
config, w_device, w_var, source_device (default: the dataset's source device, from the run's
domain), eval_mask, batches_per_epoch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from ..data.splits import SplitData, WaveDataset, first_item
from ..heads.losses import cross_entropy, variance_loss
from . import SYSTEMS
from .classifier import ClassifierSystem


@dataclass(frozen=True)
class Term:
    kind: str    # "ce": cross-entropy against the labels; "var": variance loss (weight w_v)
    rows: str    # which batch rows: all, source, target, first, second, first_source


@dataclass(frozen=True)
class Config:
    batch: str                  # "source": B source clips; "half": B/2 source + B/2 target, shuffled
    masked: bool                # m+ on the first batch half, m- on the second; embedding 2E
    target_scene_labels: bool   # whether target clips' scene labels are given to training at all
    scene: tuple                # terms of L_A (scene head)
    device: tuple = ()          # terms of L_D (device head)


CONFIGS = {
    "C0": Config("source", False, False, scene=(Term("ce", "all"),)),
    "C1": Config("half", False, True, scene=(Term("ce", "target"), Term("ce", "source"))),
    "C2": Config("half", False, False, scene=(Term("ce", "source"),), device=(Term("ce", "all"),)),
    "C3": Config("half", False, True, scene=(Term("ce", "all"),), device=(Term("ce", "all"),)),
    "C2M": Config("half", True, False, scene=(Term("ce", "first_source"),),
                  device=(Term("ce", "second"), Term("var", "first"))),
    "C3M": Config("half", True, True, scene=(Term("ce", "first"), Term("var", "second")),
                  device=(Term("ce", "second"), Term("var", "first"))),
}

def row_sets(is_source: torch.Tensor, first: torch.Tensor) -> dict:
    return {"all": None, "source": is_source, "target": ~is_source, "first": first, "second": ~first,
            "first_source": first & is_source}


def config_loss(config: Config, scene_logits, device_logits, y, d, is_source, first, w_device: float,
                w_var: float) -> tuple[torch.Tensor, dict]:
    """Eq. (1) for one configuration: ``L_A + w_D * L_D`` and its parts (for logging)."""
    rows = row_sets(is_source, first)

    def total(terms, logits, target):
        out = scene_logits.new_zeros(())
        for t in terms:
            if t.kind == "ce":
                out = out + cross_entropy(logits, target, rows[t.rows])
            else:
                out = out + w_var * variance_loss(logits, rows[t.rows])
        return out

    loss_a = total(config.scene, scene_logits, y)
    loss_d = total(config.device, device_logits, d)
    return loss_a + w_device * loss_d, {"loss_scene": loss_a.detach(), "loss_device": loss_d.detach()}


class DomainBatches(Sampler):
    """Batches of indices: ``B/2`` source then ``B/2`` target clips, shuffled together (or B source).

    Each domain is drawn without replacement from a fresh permutation, continuing across
    epochs, so every clip is seen equally often. The RNG is seeded: runs repeat exactly, and
    ``set_epoch`` (called by training before each epoch) replays the stream up to that epoch, so a
    resumed run draws the batches the uninterrupted one would.
    """

    def __init__(self, source: np.ndarray, target: np.ndarray | None, batch_size: int, n_batches: int,
                 seed: int = 0):
        if batch_size < 2 or batch_size % 2:
            raise ValueError(f"train.batch_size: half-source/half-target batches need an even size >= 2, "
                             f"got {batch_size}")
        if not len(source):
            raise ValueError("the training split has no clip of the source device")
        self.source, self.target = np.asarray(source), None if target is None else np.asarray(target)
        self.batch_size, self.n_batches = batch_size, n_batches
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int):
        self.rng, self._streams = np.random.default_rng(self.seed), {}
        for _ in range(int(epoch) * self.n_batches):
            self._batch()

    def _take(self, name: str, pool: np.ndarray, k: int) -> list[int]:
        buf = self._streams.get(name, np.zeros(0, dtype=np.int64))
        while len(buf) < k:
            buf = np.concatenate([buf, self.rng.permutation(pool)])
        self._streams[name] = buf[k:]
        return buf[:k].tolist()

    def __len__(self):
        return self.n_batches

    def _batch(self) -> list[int]:
        if self.target is None:
            return self._take("source", self.source, self.batch_size)
        half = self.batch_size // 2
        batch = np.array(self._take("source", self.source, half) + self._take("target", self.target, half))
        return batch[self.rng.permutation(len(batch))].tolist()

    def __iter__(self):
        for _ in range(self.n_batches):
            yield self._batch()


class SourceLabelsOnly(WaveDataset):
    """Training items whose target-device clips carry no scene label (-1): C2 and C2M."""

    def __init__(self, data: SplitData, source_index: set[int]):
        super().__init__(data)
        self.source_index = source_index

    def labels_of(self, rows):
        return np.where(np.isin(self.data.devices[rows], sorted(self.source_index)), self.data.labels[rows], -1)


def split_domains(data: SplitData, devices: list[str], source_names: list[str]) -> tuple[np.ndarray, np.ndarray, set[int]]:
    """Row indices of source and target clips in ``data`` and the source device indices."""
    src = {devices.index(n) for n in source_names}
    is_src = np.isin(data.devices, sorted(src))
    return np.flatnonzero(is_src), np.flatnonzero(~is_src & (data.devices >= 0)), src


@SYSTEMS.register("disentangle")
class DisentangleSystem(ClassifierSystem):
    monitors = ClassifierSystem.monitors + ("val/acc_source", "val/acc_target", "val/device_acc")

    @classmethod
    def network_spec(cls, options: dict) -> dict:
        config = CONFIGS[str(options["config"]).upper()]
        return {"name": "disentangle", "masked": config.masked, "eval_mask": options.get("eval_mask")}

    def __init__(self, cfg: dict, domain, data, config: Literal["C0", "C1", "C2", "C3", "C2M", "C3M"] = "C3M",
                 w_device: float = 10.0, w_var: float = 500.0, source_device: str | list[str] | None = None,
                 eval_mask: Literal["+", "-", "all"] | None = None, batches_per_epoch: int | None = None):
        if cfg.get("augment"):
            raise ValueError("augment: the disentangle system trains without augmentation, as seed 000 does "
                             "(remove the recipe's augment list)")
        if batches_per_epoch is not None and batches_per_epoch < 1:
            raise ValueError(f"system_options.batches_per_epoch must be >= 1, got {batches_per_epoch}")
        self.config = CONFIGS[config]
        if cfg["network"]["name"] != "disentangle" or bool(cfg["network"].get("masked")) != self.config.masked:
            raise ValueError(f"network: configuration {config} trains the disentangle network with masked="
                             f"{self.config.masked}; leave the recipe's network section out")
        super().__init__(cfg, domain, data)
        self.opts = {"config": config, "w_device": float(w_device), "w_var": float(w_var),
                     "batches_per_epoch": batches_per_epoch}
        names = source_device or domain.source
        if names is None:
            raise ValueError("system_options.source_device: the dataset names no source device; give one")
        self.source_names = [names] if isinstance(names, str) else list(names)
        unknown = [n for n in self.source_names if n not in domain.devices]
        if unknown:
            raise ValueError(f"system_options.source_device: {unknown[0]!r} is not a device of the training split "
                             f"({', '.join(domain.devices)})")
        self.source_index = torch.tensor(sorted({domain.devices.index(n) for n in self.source_names}))
        self._val_extra = []

    def trained_devices(self) -> tuple[str, ...]:
        """C0 trains on the source device's clips only; the others on all training devices."""
        return tuple(self.source_names) if self.config.batch == "source" else tuple(self.domain.devices)

    def train_dataloader(self):
        config, t = self.config, self.cfg["train"]
        source, target, src_index = split_domains(self.train_data, list(self.domain.devices), self.source_names)
        if config.batch == "half" and not len(target):
            raise ValueError(f"system_options.config {self.opts['config']}: the training split has no target-device "
                             f"clips (devices other than {', '.join(self.source_names)})")
        used = len(source) + (len(target) if config.batch == "half" else 0)
        n_batches = int(self.opts["batches_per_epoch"] or math.ceil(used / t["batch_size"]))
        sampler = DomainBatches(source, target if config.batch == "half" else None, t["batch_size"], n_batches,
                                seed=t["seed"])
        dataset = WaveDataset(self.train_data) if config.target_scene_labels else \
            SourceLabelsOnly(self.train_data, src_index)
        return DataLoader(dataset, batch_sampler=sampler, num_workers=0, collate_fn=first_item)

    def batch_masks(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(first-half flag per row, mask per row): m+ / m- by position, or all ones unmasked."""
        first = torch.arange(n, device=self.device) < n // 2
        if not self.config.masked:
            return first, self.net.mask("all").expand(n, -1)
        return first, torch.where(first[:, None], self.net.mask("+"), self.net.mask("-"))

    def training_step(self, batch, batch_idx):
        wave, y, d, _ = batch
        z = self.train_backbone(self.input_features(wave))
        first, mask = self.batch_masks(len(y))
        scene_logits, device_logits = self.net.heads(z, mask)
        is_source = torch.isin(d, self.source_index.to(d.device))
        loss, parts = config_loss(self.config, scene_logits, device_logits, y, d, is_source, first,
                                  float(self.opts["w_device"]), float(self.opts["w_var"]))
        n = len(y)
        self.log("train/loss", loss, prog_bar=True, on_epoch=True, on_step=False, batch_size=n)
        for k, v in parts.items():
            self.log(f"train/{k}", v, on_epoch=True, on_step=False, batch_size=n)
        return loss

    def validation_step(self, batch, batch_idx):
        wave, y, d, _ = batch
        z = self.net.backbone(self.input_features(wave))
        scene_logits, _ = self.net.heads(z, self.net.mask(self.net.eval_mask))
        _, device_logits = self.net.heads(z, self.net.mask("-" if self.net.masked else "all"))
        self._val.append((scene_logits.float().cpu(), y.cpu()))
        self._val_extra.append((scene_logits.argmax(1).cpu(), device_logits.argmax(1).cpu(), y.cpu(), d.cpu()))

    def on_validation_epoch_end(self):
        if self._val_extra:
            pa, pd, y, d = (torch.cat(x) for x in zip(*self._val_extra))
            self._val_extra.clear()
            src = torch.isin(d, self.source_index)
            for name, rows in (("source", src & (y >= 0)), ("target", ~src & (d >= 0) & (y >= 0))):
                if rows.any():
                    self.log(f"val/acc_{name}", (pa[rows] == y[rows]).float().mean())
            if self.config.device and (d >= 0).any():
                self.log("val/device_acc", (pd[d >= 0] == d[d >= 0]).float().mean())
        super().on_validation_epoch_end()
