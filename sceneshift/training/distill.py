"""Knowledge distillation: a small student learns from a teacher run or ensemble (CPJKU DCASE 2022-2025).

The teacher is any run folder or system file (``ensemble: [...]`` of runs, e.g. the seed 003
ensembles; a two-stage system too). Its class probabilities of every training clip are computed
once, on the clips as they are (no augmentation, as the CPJKU systems precompute their teachers'
logits), and cached next to the teacher (``TEACHER/eval/proba/``, keyed by the clips' content and
the weights), so the three seeds of a student share one pass of the teacher.

Loss per batch: ``(1 - kd_weight) * CE(student, labels) + kd_weight * T^2 * KL(q_T || p_T)`` where
``p_T = softmax(student logits / T)`` and ``q_T = softmax(log teacher probabilities / T)``: for a
single run the teacher's log-probabilities are its logits up to a constant, so ``q_T`` is the usual
temperature-softened teacher; for an ensemble it is the softened average of its members. ``T^2``
keeps the gradient scale independent of ``T`` (Hinton et al. 2015). Defaults as cpjku_dcase23:
``T = 2``, labels weighted 0.02 (``kd_weight = 0.98``). Label-mixing augmentations (mixup) mix the
teacher's targets with the same weights as the labels: both travel in one target tensor.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..networks.ensemble import CachedRun, is_system_file, load_system
from ..networks.predictor import RunPredictor
from . import SYSTEMS
from .classifier import ClassifierSystem


def load_teacher(path: str | Path):
    """A run folder or a system file, scored through the probability cache."""
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"system_options.teacher: {p} is neither a run folder nor a system file")
    return load_system(p) if is_system_file(p) else CachedRun(RunPredictor(p))


@SYSTEMS.register("distill")
class DistillSystem(ClassifierSystem):
    def __init__(self, cfg: dict, domain, data, teacher: str = "", kd_weight: float = 0.98, temperature: float = 2.0):
        if not teacher:
            raise ValueError("system_options.teacher: name the teacher's run folder or system file "
                             "(e.g. system_options.teacher=runs/ensemble.yaml)")
        if not 0.0 <= kd_weight <= 1.0 or temperature <= 0:
            raise ValueError(f"system_options: kd_weight must lie in [0, 1] and temperature be > 0 "
                             f"(got {kd_weight}, {temperature})")
        super().__init__(cfg, domain, data)
        self.teacher_path, self.kd_weight, self.temperature = str(teacher), float(kd_weight), float(temperature)
        self.teacher_log_proba: torch.Tensor | None = None     # (training clips, classes), row order of the split

    def setup(self, stage: str):
        if stage == "fit" and self.teacher_log_proba is None:
            self.teacher_log_proba = self.teacher_targets()
        super().setup(stage)

    def teacher_targets(self) -> torch.Tensor:
        d = self.cfg["data"]
        teacher = load_teacher(self.teacher_path)
        if list(teacher.classes) != list(self.domain.classes):
            raise ValueError(f"system_options.teacher: {self.teacher_path} predicts {list(teacher.classes)}, "
                             f"the student {list(self.domain.classes)}")
        n = int(round(d["clip_seconds"] * d["sample_rate"]))
        if (teacher.sample_rate, teacher.n_samples) != (d["sample_rate"], n):
            raise ValueError(f"system_options.teacher: {self.teacher_path} takes {teacher.n_samples} samples at "
                             f"{teacher.sample_rate} Hz, the student {n} at {d['sample_rate']} Hz")
        train = self.data.split(d["train_split"])
        if train.waves.ndim != 2:
            raise ValueError("system_options.teacher: distillation needs waveforms (not precomputed features)")
        self.data.log(f"teacher {self.teacher_path}: scoring {len(train.clips)} training clips (cached after the first run)")
        proba = teacher.probabilities(train.waves)
        return torch.from_numpy(np.log(np.clip(proba, 1e-12, 1.0))).float()

    def training_step(self, batch, batch_idx):
        wave, y, device, rows = batch
        n_cls = len(self.domain.classes)
        soft = F.softmax(self.teacher_log_proba[rows.cpu()].to(wave.device) / self.temperature, dim=1)
        target = torch.cat([F.one_hot(y, n_cls).float(), soft], dim=1)
        x, target = self.augmented_features(wave, target, device)
        label_target, teacher_target = target[:, :n_cls], target[:, n_cls:]
        logits = self.net.head(self.train_backbone(x)).float()
        ce = torch.sum(-label_target * F.log_softmax(logits, dim=1), dim=1).mean()
        log_p = F.log_softmax(logits / self.temperature, dim=1)
        kd = F.kl_div(log_p, teacher_target, reduction="batchmean") * self.temperature ** 2
        loss = (1 - self.kd_weight) * ce + self.kd_weight * kd
        self.log("train/loss", loss, prog_bar=True, on_epoch=True, on_step=False, batch_size=len(y))
        self.log("train/kd", kd, on_epoch=True, on_step=False, batch_size=len(y))
        return loss
