"""Semi-supervised training under domain shift (seed 001): pre-train, fine-tune, pseudo-label.

One system, three kinds of stage (``system_options.stage``), each an ordinary run folder; the
pipeline (:func:`semi_stages`, run by ``sceneshift semi``) chains them, each stage starting from
the previous stage's weights (``init_from``):

* ``pretrain``: the **source set** - the labeled training clips of the dataset's source device
  (urban-mobile: device ``a``, all labeled). A dataset without a source device (ICME 2024) pre-trains
  on its labeled clips. Pre-training on another dataset (TAU) is a run of its own: a recipe that
  sets ``system_options.init_from`` skips the pre-training stage and fine-tunes from that run.
* ``finetune``: the **labeled target set** only, with the head re-initialised (``reset_head``), as
  the paper's fine-tuning iterations. On urban-mobile the target set is every non-source training
  clip, of which ``labeled_fraction`` (20 %) per class is labeled, chosen deterministically (the
  clips of a class ordered by a hash of their file name); the rest are unlabeled. A dataset without
  a source device keeps its own labels: its labeled clips are the labeled set and the clips with an
  empty label (ICME) the unlabeled set (``labeled_fraction`` is not applied).
* ``pseudo``: the labeled target set plus the **unlabeled** clips with labels from the starting
  network: its softmax over the (cosine) scores, the confidence ``max p`` min-max normalised over the
  unlabeled clips. ``pseudo_labels: weighted`` (the paper) trains on the arg-max class with the
  confidence as the clip's loss weight; ``hard`` on the arg-max with weight 1 (the challenge
  baseline); ``soft`` on the probabilities, weighted. ``threshold`` drops clips whose normalised
  confidence is below it.

The loss is the mean over the batch of ``weight x cross-entropy`` (labeled clips weigh 1), the
authors' ``mean(CE * confidence)``. Validation and model selection use the validation split only.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from ..data.splits import loader
from ..networks.predictor import load_weights
from . import SYSTEMS
from .classifier import ClassifierSystem


def labeled_subset(rows: np.ndarray, labels: np.ndarray, names: list[str], fraction: float) -> np.ndarray:
    """``fraction`` of ``rows`` per class (at least one), chosen by a hash of the file name: deterministic."""
    chosen = []
    for c in np.unique(labels[rows]):
        of_class = [r for r in rows if labels[r] == c]
        of_class.sort(key=lambda r: hashlib.blake2b(names[r].encode(), digest_size=8).hexdigest())
        chosen += of_class[:max(1, int(round(fraction * len(of_class))))]
    return np.array(sorted(chosen), dtype=np.int64)


@SYSTEMS.register("semi_supervised")
class SemiSupervisedSystem(ClassifierSystem):
    def __init__(self, cfg: dict, domain, data, stage: Literal["pretrain", "finetune", "pseudo"] = "pretrain",
                 init_from: str = "", reset_head: bool = False, labeled_fraction: float = 0.2,
                 pseudo_labels: Literal["weighted", "hard", "soft"] = "weighted", threshold: float = 0.0,
                 finetune_iterations: int = 3, pseudo_rounds: int = 1, finetune_epochs: int = 0,
                 pseudo_epochs: int = 0):
        if finetune_epochs < 0 or pseudo_epochs < 0:
            raise ValueError("system_options: finetune_epochs and pseudo_epochs must be >= 0 (0: train.epochs)")
        if not 0 < labeled_fraction <= 1 or not 0 <= threshold < 1:
            raise ValueError(f"system_options: labeled_fraction in (0, 1] and threshold in [0, 1) "
                             f"(got {labeled_fraction}, {threshold})")
        if stage != "pretrain" and not init_from:
            raise ValueError(f"system_options.init_from: the {stage} stage starts from an earlier stage's run folder")
        super().__init__(cfg, domain, data)
        self.stage, self.init_from, self.reset_head = stage, init_from, bool(reset_head)
        self.labeled_fraction, self.pseudo_kind, self.threshold = float(labeled_fraction), pseudo_labels, float(threshold)
        if init_from:
            self.load_start(Path(init_from))
        self.targets: torch.Tensor | None = None      # (training clips, classes) soft targets, zero rows unused
        self.weights: torch.Tensor | None = None      # (training clips,) loss weights
        self.stage_rows: np.ndarray | None = None

    def load_start(self, run: Path):
        weights = run / "model.pt"
        if not weights.is_file():
            raise FileNotFoundError(f"system_options.init_from: {weights} does not exist (did that stage finish?)")
        state = load_weights(weights)
        if self.reset_head:
            state = {k: v for k, v in state.items() if not k.startswith("head.")}
        own = self.net.state_dict()
        wrong = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
        if wrong:
            raise ValueError(f"system_options.init_from: {run} has another network ({wrong[0]}: "
                             f"{tuple(state[wrong[0]].shape)} vs {tuple(own[wrong[0]].shape)})")
        if not self.reset_head:             # the head is kept: its classes must be ours, in our order
            from ..data.domain import Domain
            theirs = list(Domain.load(run / "domain.json").classes)
            if theirs != list(self.domain.classes):
                raise ValueError(f"system_options.init_from: {run} predicts {theirs}, this stage "
                                 f"{list(self.domain.classes)}; set system_options.reset_head=true")
        missing, _ = self.net.load_state_dict(state, strict=False)
        lacking = [k for k in missing if not k.startswith("head.")]
        if lacking:
            raise ValueError(f"system_options.init_from: {run} lacks {lacking[0]}")

    def trained_devices(self) -> tuple[str, ...]:
        if self.stage == "pretrain" and self.domain.source is not None:
            return (self.domain.source,)
        return tuple(self.domain.devices)

    def partition(self, split) -> dict[str, np.ndarray]:
        """Row indices of the source, labeled-target and unlabeled clips of the training split."""
        names = [c.filename for c in split.clips]
        labeled = split.labels >= 0
        src = self.domain.source_index
        is_source = (split.devices == src) if src >= 0 else np.zeros(len(names), dtype=bool)
        target = np.flatnonzero(labeled & ~is_source)
        if src >= 0 and len(target):         # a source device: hide the labels of most target clips
            chosen = labeled_subset(target, split.labels, names, self.labeled_fraction)
        else:                                # no source device: the dataset's own labeled / unlabeled parts
            chosen = target
        unlabeled = np.setdiff1d(np.flatnonzero(~is_source), chosen)
        source = np.flatnonzero(labeled & is_source)
        return {"source": source if len(source) else chosen, "labeled": chosen, "unlabeled": unlabeled}

    def setup(self, stage: str):
        if stage == "fit" and self.stage_rows is None:
            self.prepare_stage()
        super().setup(stage)

    def prepare_stage(self):
        d = self.cfg["data"]
        split = self.data.split(d["train_split"])
        parts = self.partition(split)
        n, k = len(split.clips), len(self.domain.classes)
        targets, weights = torch.zeros(n, k), torch.zeros(n)
        base = parts["source"] if self.stage == "pretrain" else parts["labeled"]
        targets[base] = F.one_hot(torch.from_numpy(split.labels[base]), k).float()
        weights[base] = 1.0
        rows = base
        if self.stage == "pseudo" and len(parts["unlabeled"]):
            proba = self.score(split.waves, parts["unlabeled"])
            conf = proba.max(dim=1).values
            span = (conf.max() - conf.min()).clamp_min(1e-12)
            norm = (conf - conf.min()) / span
            keep = norm >= self.threshold
            sel = parts["unlabeled"][keep.numpy()]
            hard = F.one_hot(proba[keep].argmax(1), k).float()
            targets[sel] = proba[keep] if self.pseudo_kind == "soft" else hard
            weights[sel] = 1.0 if self.pseudo_kind == "hard" else norm[keep]
            rows = np.concatenate([base, sel])
            self.data.log(f"pseudo-labels: {len(sel)} of {len(parts['unlabeled'])} unlabeled clips "
                          f"({self.pseudo_kind}, threshold {self.threshold})")
        if not len(rows):
            raise ValueError(f"{self.data.adapter.root}: the {self.stage} stage has no training clip "
                             f"(source {len(parts['source'])}, labeled {len(parts['labeled'])})")
        self.targets, self.weights, self.stage_rows = targets, weights, np.sort(rows)
        self.data.log(f"{self.stage}: {len(rows)} training clips (source {len(parts['source'])}, labeled target "
                      f"{len(parts['labeled'])}, unlabeled {len(parts['unlabeled'])})")

    @torch.no_grad()
    def score(self, waves, rows: np.ndarray, batch_size: int = 64) -> torch.Tensor:
        from ..data.splits import iter_batches
        was = self.net.training
        self.net.eval()
        out = [F.softmax(self.net(x).float(), dim=1) for x in iter_batches(waves, batch_size, rows)]
        self.net.train(was)
        return torch.cat(out)

    def train_dataloader(self):
        t = self.cfg["train"]
        return loader(self.train_data, t["batch_size"], shuffle=True, seed=t["seed"], indices=self.stage_rows,
                      drop_last=t["drop_last"])

    def training_step(self, batch, batch_idx):
        wave, _, device, rows = batch
        target, weight = self.targets[rows.cpu()].to(wave.device), self.weights[rows.cpu()].to(wave.device)
        x, target = self.augmented_features(wave, target, device)
        logits = self.training_logits(self.train_backbone(x), target)
        loss = (weight * torch.sum(-target * F.log_softmax(logits, dim=1), dim=1)).mean()
        self.log("train/loss", loss, prog_bar=True, on_epoch=True, on_step=False, batch_size=len(rows))
        return loss


def semi_stages(options: dict, out: Path) -> list[tuple[str, list[str]]]:
    """The pipeline's stages as (folder name, overrides): pretrain, fine-tuning iterations, pseudo-label rounds.

    A given ``init_from`` (a run pre-trained elsewhere) replaces the pre-training stage.
    ``finetune_epochs`` / ``pseudo_epochs`` (0: ``train.epochs``) give those stages their own length:
    a fine-tuning set is a fifth of the target clips, so its epochs are short and it needs fewer.
    """
    ft, rounds = int(options.get("finetune_iterations", 3)), int(options.get("pseudo_rounds", 1))
    if ft < 0 or rounds < 0:
        raise ValueError("system_options: finetune_iterations and pseudo_rounds must be >= 0")
    start = options.get("init_from") or None
    names = ([] if start else ["1-pretrain"]) + [f"2-finetune-{i}" for i in range(1, ft + 1)] + \
        [f"3-pseudo-{r}" for r in range(1, rounds + 1)]
    if not names:
        raise ValueError("system_options: no stage to run (finetune_iterations and pseudo_rounds are 0)")
    stages, previous = [], start
    for name in names:
        kind = name.split("-")[1]
        over = [f"system_options.stage={kind}"]
        if previous:
            over.append(f"system_options.init_from={previous if previous == start else out / previous}")
        over.append(f"system_options.reset_head={'true' if kind == 'finetune' else 'false'}")
        epochs = int(options.get(f"{kind}_epochs", 0) or 0)
        if epochs:
            over.append(f"train.epochs={epochs}")
        stages.append((name, over))
        previous = name
    return stages
