"""A trained run, loaded for inference: waveforms in, scene probabilities out.

It lives with the networks (not in evaluation) because every layer above needs it: evaluation,
prediction and CAMs score with it, and a distillation system (training) takes its teacher from it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import yaml

from ..data.domain import Domain
from ..data.splits import iter_batches
from . import build_network


def load_run_config(run_dir: Path) -> tuple[dict, Domain]:
    cfg_path = Path(run_dir) / "config.yaml"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a run folder (no config.yaml); "
                                "train one with `sceneshift train RECIPE --out DIR`")
    return yaml.safe_load(cfg_path.read_text()), Domain.load(Path(run_dir) / "domain.json")


class RunPredictor:
    """One run folder's network (``config.yaml`` + ``domain.json`` + ``model.pt``), built without its system."""

    def __init__(self, run_dir: str | Path, device: str | None = None):
        self.run_dir = Path(run_dir)
        self.cfg, self.domain = load_run_config(self.run_dir)
        weights = self.run_dir / "model.pt"
        if not weights.is_file():
            raise FileNotFoundError(f"{weights}: no trained weights; the run did not finish "
                                    f"(continue it with `sceneshift train --resume --out {self.run_dir}`)")
        self.classes = list(self.domain.classes)
        self.sample_rate = int(self.cfg["data"]["sample_rate"])
        self.n_samples = int(round(self.cfg["data"]["clip_seconds"] * self.sample_rate))
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.net = build_network(self.cfg, self.domain)
        self.net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self.net.eval().to(self.device)
        if self.cfg["train"].get("channels_last"):       # the memory format the run trained in (faster on CPU)
            self.net.to(memory_format=torch.channels_last)

    @torch.no_grad()
    def logits(self, waves: np.ndarray, batch_size: int = 128, rows=None) -> np.ndarray:
        out = [self.net(x).float().cpu().numpy() for x in iter_batches(waves, batch_size, rows, self.device)]
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)), np.float32)

    def probabilities(self, waves: np.ndarray, batch_size: int = 128, rows=None) -> np.ndarray:
        return softmax(self.logits(waves, batch_size, rows))


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of logits ``(clips, classes)``, stable for large logits."""
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def load_predictor(run: str | Path, device: str | None = None):
    """A run folder, a YAML file describing an ensemble or two-stage system (networks/ensemble.py), or an
    exported ``.onnx`` model (networks/onnx_predictor.py)."""
    from .ensemble import is_system_file, load_system
    from .onnx_predictor import OnnxPredictor, is_onnx_file
    if is_system_file(run):
        return load_system(run, device)
    if is_onnx_file(run):
        return OnnxPredictor(run)
    return RunPredictor(run, device)


def windows(x: np.ndarray, n: int) -> np.ndarray:
    """Cover a long recording with ``n``-sample windows (the last one flush with the end)."""
    from ..data.audio import fit_length
    if len(x) <= n:
        return fit_length(x, n)[None]
    starts = list(range(0, len(x) - n + 1, n))
    if starts[-1] + n < len(x):
        starts.append(len(x) - n)
    return np.stack([x[s:s + n] for s in starts])
