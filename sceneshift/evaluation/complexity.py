"""Parameter counts, parameter bytes and multiply-accumulates of networks: ``sceneshift list models --macs``
and the ``complexity`` entry of every evaluation report.

Counted on the whole deployable network (front end, backbone, head) for one clip of the
recipe's length, in evaluation mode (no crop): what a deployed model costs per clip. The
front end's STFT is not counted (no convolution or dense layer); the mel projection is a matmul,
not counted either - both are small next to the CNNs here; a learned front end's convolution
(seed 001's Wavegram, a Conv1d) is counted. A run trained on precomputed features gets no MAC
count (the features' size is not part of the run). Parameter bytes are counted at the precision the
model is stored in: 4 per parameter for a run's float32 weights, the initialisers' actual bytes
for an exported ONNX file (1 per int8 weight, plus the float scales and biases quantisation keeps).
tests/test_beyond.py checks the counts against torchinfo.
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
    params = count_parameters(net)
    return {"model": cfg["model"]["name"], "classes": n, "parameters": params, "parameter_bytes": 4 * params,
            "macs": macs, "macs_per_second": macs / cfg["data"]["clip_seconds"], "input": list(feats.shape[1:]),
            "options": {k: v for k, v in cfg["model"].items() if k != "name"}}


def onnx_parameter_bytes(path) -> int:
    """Bytes of the network's initialisers (weights, biases, quantisation scales) in an ONNX file.

    Only the backbone's and head's count: the front end's constants (mel filterbank, window) are the
    same in every export mode and are not learned parameters, as for the PyTorch count.
    """
    import onnx
    from onnx import numpy_helper
    model = onnx.load(str(path))
    return int(sum(numpy_helper.to_array(t).nbytes for t in model.graph.initializer
                   if t.name.startswith(("backbone.", "head."))))


def predictor_cost(predictor) -> dict:
    """Complexity of what a report scored: a run, an exported file, or the sum over an ensemble's members."""
    members = getattr(predictor, "members", None)
    if members is None and hasattr(predictor, "fine"):
        members = [predictor.fine, predictor.coarse]
    if members is not None:
        parts = [predictor_cost(getattr(m, "run", m)) for m in members]
        macs = [p["macs_per_second"] for p in parts]
        return {"networks": sum(p["networks"] for p in parts), "parameters": sum(p["parameters"] for p in parts),
                "parameter_bytes": sum(p["parameter_bytes"] for p in parts),
                "macs_per_second": None if None in macs else sum(macs), "precision": "fp32"}
    seconds = predictor.n_samples / predictor.sample_rate
    if getattr(predictor, "net", None) is not None:
        from ..frontend.precomputed import PrecomputedFrontend
        net = predictor.net
        if isinstance(net.frontend, PrecomputedFrontend):     # features of unknown size: no MAC count
            macs_per_second = None
        else:
            macs = count_macs(net, torch.zeros(1, predictor.n_samples, device=next(net.parameters()).device))
            macs_per_second = macs / seconds
        return {"networks": 1, "parameters": count_parameters(net),
                "parameter_bytes": sum(p.numel() * p.element_size() for p in net.parameters()),
                "macs_per_second": macs_per_second, "precision": "fp32"}
    cost = network_cost(predictor.cfg, len(predictor.classes))        # an exported file: same architecture
    return {"networks": 1, "parameters": cost["parameters"], "parameter_bytes": onnx_parameter_bytes(predictor.path),
            "macs_per_second": cost["macs_per_second"], "precision": getattr(predictor, "precision", "fp32")}


def describe(cost: dict) -> str:
    nets = f"{cost['networks']} networks, " if cost["networks"] > 1 else ""
    macs = ("MACs not counted (precomputed features)" if cost["macs_per_second"] is None
            else f"{cost['macs_per_second'] / 1e6:.1f} M MACs per second of audio")
    return (f"{nets}{cost['parameters']:,} parameters ({cost['parameter_bytes'] / 1024:.0f} kB as stored, "
            f"{cost['precision']}), {macs}")


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
    lines = [f"{'recipe / model':<32}{'model':<16}{'classes':>8}{'params':>11}{'kB fp32':>9}{'kB int8':>9}"
             f"{'MMAC/clip':>11}{'MMAC/s':>9}  input C x F x T"]
    for r in rows:
        lines.append(f"{r['name']:<32}{r['model']:<16}{r['classes']:>8}{r['parameters']:>11,}"
                     f"{r['parameter_bytes'] / 1024:>9.0f}{r['parameters'] / 1024:>9.0f}{r['macs'] / 1e6:>11.1f}"
                     f"{r['macs_per_second'] / 1e6:>9.1f}  {' x '.join(map(str, r['input']))}")
    return "\n".join(lines)
