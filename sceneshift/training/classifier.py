"""The default system: one scene classifier trained with cross-entropy.

The whole training of a recipe reads here: the data it uses (labeled clips of the training
split, the validation split for selection), front end (no gradient), augmentations (training
only), backbone, head, loss; validation accuracy and log loss select the checkpoint. Other
systems (seed 000's disentanglement, ...) subclass this and change what differs.

Speed: when the recipe has no waveform-stage augmentation the front end is deterministic, so its
output is computed once per split and cached (``train.cache_features``); ``train.channels_last``
runs the convolutions in channels-last memory format, ``train.precision: bf16-mixed`` under
bf16 autocast (Lightning's precision plugin) and ``train.compile`` the backbone's training
forward and backward as torch.compile'd (inductor) code, which fuses the element-wise work
(normalisation, activation, shortcuts) between the convolutions. benchmarks/throughput.py measures each.
"""
from __future__ import annotations

import json

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from ..augment import build_augmentations
from ..data.splits import loader, with_features
from ..networks import build_network
from . import SYSTEMS
from .optim import build_optimizer


def compiled(backbone: torch.nn.Module):
    """``torch.compile`` of a backbone for training steps (inductor, static shapes).

    Static shapes: a training run sees two batch shapes (full batches and the epoch's last one), so
    two graphs are compiled per run (per stage of ``sceneshift semi``), each kept for every later
    epoch. Validation and evaluation stay eager (one more graph per mode would cost more compile
    time than a short run's validation takes); QAT (export/qat.py) never compiles. Compiling takes
    tens of seconds to minutes on a small CPU with a cold cache, which a run of a few epochs does
    not pay back: it is an option, off by default.
    """
    return torch.compile(backbone, dynamic=False)


@SYSTEMS.register("classifier")
class ClassifierSystem(L.LightningModule):
    monitors = ("val/acc", "val/loss", "val/macro_acc")

    @classmethod
    def network_spec(cls, options: dict) -> dict:
        return {"name": "classifier"}

    def trained_devices(self) -> tuple[str, ...]:
        """The devices whose clips this system trains on (saved in the run's domain.json)."""
        return tuple(self.domain.devices)

    def __init__(self, cfg: dict, domain, data):
        super().__init__()
        self.cfg, self.domain, self.data = cfg, domain, data
        self.net = build_network(cfg, domain)
        self.wave_augment, self.spec_augment = build_augmentations(cfg.get("augment"), domain,
                                                                   cfg["data"]["sample_rate"])
        self.channels_last = bool(cfg["train"].get("channels_last"))
        if self.channels_last:
            self.net.to(memory_format=torch.channels_last)
        # compiled for training steps only; kept out of the module tree, so checkpoints are unchanged
        self._compiled = {"backbone": compiled(self.net.backbone)} if cfg["train"].get("compile") else {}
        self.features_cached = False       # True once the splits hold front-end features, not waveforms
        self.frontend_learned = any(p.requires_grad for p in self.net.frontend.parameters())
        self._val = []

    def __getstate__(self) -> dict:
        """A copy of the system (the weight average of ``train.ema_decay``) holds its modules, not the data
        source with its cached splits, nor the compiled training graphs."""
        return {**super().__getstate__(), "data": None, "_compiled": {}}

    # ---- data: the system says what it trains and selects on -------------------------------------
    def setup(self, stage: str):
        d = self.cfg["data"]
        train, val = self.data.split(d["train_split"]), self.data.split(d["val_split"])
        if stage == "fit":
            self.fit_augmentations(train)
        if self.cfg["train"].get("cache_features") and self.frontend_learned:
            self.data.log("train.cache_features: the front end is learned, so its output cannot be cached; ignored")
        elif self.cfg["train"].get("cache_features") and not self.wave_augment and not d.get("features"):
            # nothing random happens before the front end: compute it once per split, not every epoch
            key = json.dumps([self.cfg["frontend"], d["sample_rate"]], sort_keys=True)
            cached = [with_features(s, self.net.frontend, key, log=self.data.log) for s in (train, val)]
            if all(c is not None for c in cached):
                train, val = cached
                self.features_cached = True
        self.train_data, self.val_data = train, val

    def train_dataloader(self):
        t = self.cfg["train"]
        rows = self.train_data.rows(labeled=True)       # unlabeled clips are for semi-supervised systems
        if not len(rows):
            raise ValueError(f"{self.data.adapter.root}: the training split has no labeled clip")
        return loader(self.train_data, t["batch_size"], shuffle=True, seed=t["seed"], indices=rows,
                      drop_last=t["drop_last"])

    def val_dataloader(self):
        # a device held out of training (data.exclude_devices) stands for an unseen one: it is not selected on
        held_out = set(self.cfg["data"].get("exclude_devices") or [])
        rows = [i for i, c in enumerate(self.val_data.clips) if c.device not in held_out] if held_out else None
        return loader(self.val_data, self.cfg["train"]["eval_batch_size"], shuffle=False, indices=rows)

    def fit_augmentations(self, train_data):
        """Let augmentations that need the training data (e.g. a reference spectrum) see it once."""
        for aug in [*self.wave_augment, *self.spec_augment]:
            if hasattr(aug, "fit"):
                aug.fit(train_data)

    # ---- the step -----------------------------------------------------------------------------------
    def forward(self, wave):
        return self.net(wave)

    def input_features(self, batch: torch.Tensor) -> torch.Tensor:
        """The backbone's input for a batch: the front end of waveforms, or features read from the cache.

        A fixed front end (log-mel) runs without gradient; a learned one (seed 001's Wavegram) trains
        with the network.
        """
        if not self.features_cached:
            with torch.set_grad_enabled(self.frontend_learned and torch.is_grad_enabled()):
                batch = self.net.features(batch)
        return batch.contiguous(memory_format=torch.channels_last) if self.channels_last else batch

    def augmented_features(self, wave, target, device):
        """Waveform augmentations, front end, spectrogram augmentations (training only)."""
        for aug in self.wave_augment:
            wave, target = aug(wave, target, device)
        x = self.input_features(wave)
        for aug in self.spec_augment:
            x, target = aug(x, target, device)
        return x, target

    def train_backbone(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone in a training step: the compiled one with ``train.compile``, else the module itself."""
        return self._compiled.get("backbone", self.net.backbone)(x)

    def training_logits(self, embedding: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The head's scores in training: a margin head (ArcFace) uses the targets, others ignore them."""
        head = self.net.head
        return head.training_logits(embedding, target) if hasattr(head, "training_logits") else head(embedding)

    def training_step(self, batch, batch_idx):
        wave, y, device, _ = batch
        target = F.one_hot(y, len(self.domain.classes)).float()
        x, target = self.augmented_features(wave, target, device)
        logits = self.training_logits(self.train_backbone(x), target)
        loss = torch.sum(-target * F.log_softmax(logits, dim=1), dim=1).mean()
        self.log("train/loss", loss, prog_bar=True, on_epoch=True, on_step=False, batch_size=len(y))
        return loss

    def validation_step(self, batch, batch_idx):
        wave, y, _, _ = batch
        logits = self.net.head(self.net.backbone(self.input_features(wave)))
        self._val.append((logits.float().cpu(), y.cpu()))

    def on_validation_epoch_end(self):
        if not self._val:
            return
        logits = torch.cat([a for a, _ in self._val])
        y = torch.cat([b for _, b in self._val])
        self._val.clear()
        ok = y >= 0
        logits, y = logits[ok], y[ok]
        pred = logits.argmax(1)
        acc = (pred == y).float().mean()
        n_cls = len(self.domain.classes)
        per_class = [(pred[y == c] == c).float().mean().item() for c in range(n_cls) if (y == c).any()]
        self.log("val/acc", acc, prog_bar=True)
        self.log("val/loss", F.cross_entropy(logits, y), prog_bar=True)
        self.log("val/macro_acc", float(np.mean(per_class)))

    def configure_optimizers(self):
        return build_optimizer(self.parameters(), self.cfg["train"])
