"""Parameter counts and multiply-accumulates of networks, for ``sceneshift list models --macs``.

Counted on the whole deployable network (front end, backbone, head) for one clip of the
recipe's length, in evaluation mode (no crop): what a deployed model costs per clip. The
front end's STFT is not counted (no Conv2d/Linear); the mel projection is a matmul, not counted
either - both are small next to the CNNs here.
"""
from __future__ import annotations

import torch

from ..data.domain import Domain
from ..models import MODELS, count_macs, count_parameters
from ..networks import build_network
from ..training.recipe import check_recipe, load_recipe


def network_cost(cfg: dict, num_classes: int | None = None) -> dict:
    scene_map = cfg["data"].get("scene_map") or {}
    n = num_classes or (len(set(scene_map.values())) if scene_map else 10)
    net = build_network(cfg, Domain.placeholder(n, n_devices=6))
    samples = int(round(cfg["data"]["clip_seconds"] * cfg["data"]["sample_rate"]))
    macs = count_macs(net, torch.zeros(1, samples))
    feats = net.frontend(torch.zeros(1, samples))
    return {"model": cfg["model"]["name"], "classes": n, "parameters": count_parameters(net), "macs": macs,
            "macs_per_second": macs / cfg["data"]["clip_seconds"], "input": list(feats.shape[1:]),
            "options": {k: v for k, v in cfg["model"].items() if k != "name"}}


def cost_table(recipes: list[str] | None = None, overrides: list[str] = ()) -> list[dict]:
    """One row per recipe, or per registered model at its default options on a 3-channel log-mel."""
    rows = []
    if recipes:
        for r in recipes:
            rows.append({"name": str(r), **network_cost(load_recipe(r, list(overrides)))})
    else:
        for name in MODELS.names():
            cfg = check_recipe({"model": {"name": name}, "frontend": {"name": "logmel", "n_deltas": 2}})
            rows.append({"name": name, **network_cost(cfg)})
    return rows


def format_table(rows: list[dict]) -> str:
    lines = [f"{'recipe / model':<32}{'model':<16}{'classes':>8}{'params':>11}{'MMAC/clip':>11}{'MMAC/s':>9}  input C x F x T"]
    for r in rows:
        lines.append(f"{r['name']:<32}{r['model']:<16}{r['classes']:>8}{r['parameters']:>11,}{r['macs'] / 1e6:>11.1f}"
                     f"{r['macs_per_second'] / 1e6:>9.1f}  {' x '.join(map(str, r['input']))}")
    return "\n".join(lines)
