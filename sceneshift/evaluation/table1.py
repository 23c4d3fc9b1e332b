"""Seed 000's Table 1 for any set of runs: scene (A) and device (D) accuracy on source and target data.

For each run: accuracy of the scene head (a_A) and of the device head (a_D) on the test clips
of the source device (S) and of the target devices (T), the devices the run trained on besides
the source; in urban-mobile S = a, T = b, c, s1-s3. Devices the run never saw (U, s4-s6) get
scene accuracy only (the device head has no class for them). Masked runs (C2M, C3M) are scored
under both mask settings: ``+`` keeps the first embedding half, ``-`` the second. A run may be
listed again with an adaptation (``C0`` + band-wise matching = the paper's C0[12]), fitted per
target device on the evaluated split as in ``sceneshift evaluate --adapt``. Per-device scene
accuracies (under the run's evaluation mask) complete the picture.

One forward pass per clip gives the embedding; the heads are then applied under each mask.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data.domain import device_order
from ..data.splits import DataSource, iter_batches
from ..io import atomic_write_json, atomic_write_text

# Which labels each configuration adapts with: none (-), unsupervised (U), scene labels of the
# source only plus device labels (U*), scene labels of both domains (S); as in the paper's table.
DA_KIND = {"C0": "-", "C1": "S", "C2": "U*", "C2M": "U*", "C3": "S", "C3M": "S"}


def _embeddings(predictor, waves, rows, batch_size: int) -> np.ndarray:
    with torch.no_grad():
        out = [predictor.net.embed(w).float().cpu().numpy()
               for w in iter_batches(waves, batch_size, rows, predictor.device)]
    return np.concatenate(out) if out else np.zeros((0, 1), np.float32)


def _acc(pred, y, rows):
    return float(np.mean(pred[rows] == y[rows])) if rows.any() else None


def score_run(run: str | Path, data=None, split: str = "evaluate", adapt: str | None = None, log=print) -> dict:
    """One row of Table 1 (plus per-device scene accuracy) for one run, optionally adapted."""
    from ..adaptation import fit_adapters, per_device
    from .evaluate import open_split
    from ..networks.predictor import load_predictor
    predictor = load_predictor(run)
    cfg, net, run_domain = predictor.cfg, predictor.net, predictor.domain
    source_data, split_data = open_split(cfg, run_domain, split, data, log=log)
    root = source_data.adapter.root
    devices = list(run_domain.devices)
    rows = np.flatnonzero(split_data.labels >= 0)
    if not len(rows):
        raise ValueError(f"{root}: split {split!r} has no clip with a scene label the run knows")
    batch_size = cfg["train"].get("eval_batch_size", 128)
    adapters = {}
    if adapt:     # the devices the run never trained on: every target device for C0, as in the paper
        train_data = DataSource(cfg["data"], run_domain, log=log).split(cfg["data"]["train_split"])
        adapters = fit_adapters(adapt, net, run_domain, train_data, split_data, "untrained", batch_size,
                                predictor.device, log=log)
    z = torch.from_numpy(per_device(net, split_data, rows, adapters,
                                    lambda r: _embeddings(predictor, split_data.waves, r, batch_size)))
    y, d = split_data.labels[rows], split_data.devices[rows]
    dev_names = np.array([split_data.clips[i].device for i in rows])
    given = (cfg.get("system_options") or {}).get("source_device") or run_domain.source
    source = {given} if isinstance(given, str) else set(given)
    domain = {"S": np.isin(dev_names, sorted(source)),
              "T": np.isin(dev_names, [x for x in devices if x not in source]),
              "U": ~np.isin(dev_names, devices)}
    opts = cfg.get("system_options") or {}
    config = str(opts.get("config", "")).upper() if cfg.get("system") == "disentangle" else None
    has_device_head = hasattr(net, "device_head")
    if has_device_head:
        from ..training.disentangle import CONFIGS
        trains_device = bool(CONFIGS[config].device)
        masks = ["+", "-"] if net.masked else ["all"]
    else:
        trains_device, masks = False, ["all"]
    result = {"run": str(run), "config": config, "adapt": adapt or None, "split": split, "dataset": str(root),
              "label": (config or Path(run).name) + (f" + {adapt}" if adapt else ""),
              "da": _da(DA_KIND.get(config, "-"), adapt), "masks": {}, "devices": {},
              "n": {k: int(v.sum()) for k, v in domain.items()}}
    with torch.no_grad():
        for m in masks:
            if has_device_head:
                scene, dev = (t.cpu().numpy() for t in net.heads(z.to(predictor.device), net.mask(m).to(predictor.device)))
            else:
                scene, dev = net.head(z.to(predictor.device)).cpu().numpy(), None
            pa = scene.argmax(1)
            entry = {"scene": {k: _acc(pa, y, r) for k, r in domain.items()}, "device": None}
            if trains_device:
                pd = dev.argmax(1)
                entry["device"] = {k: _acc(pd, d, r) for k, r in domain.items() if k != "U"}
            result["masks"][m] = entry
            if m == getattr(net, "eval_mask", "all"):
                for name in sorted(set(dev_names.tolist()), key=device_order):
                    sel = dev_names == name
                    result["devices"][name] = {"accuracy": float(np.mean(pa[sel] == y[sel])), "n": int(sel.sum())}
    return result


def _da(kind: str, adapt: str | None) -> str:
    """An unsupervised test-time adaptation adds U to whatever the training used."""
    return kind if not adapt else ("U" if kind == "-" else f"{kind}+U")


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def _cell(row: dict, task: str, domain: str) -> str:
    vals = [(m, (e[task] or {}).get(domain)) for m, e in row["masks"].items()]
    if all(v is None for _, v in vals):
        return "-"
    if len(vals) == 1:
        return _fmt(vals[0][1])
    return " / ".join(f"{_fmt(v)}<sup>{m}</sup>" for m, v in vals)


def markdown(rows: list[dict]) -> str:
    out = ["| config | DA | a_A^S | a_A^T | a_A^U (unseen) | a_D^S | a_D^T |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['label']} | {r['da']} | " + " | ".join(
            _cell(r, task, dom) for task, dom in (("scene", "S"), ("scene", "T"), ("scene", "U"),
                                                  ("device", "S"), ("device", "T"))) + " |")
    devs = sorted({d for r in rows for d in r["devices"]}, key=device_order)
    out += ["", "Scene accuracy per device (evaluation mask):", "",
            "| config | " + " | ".join(devs) + " |", "|---|" + "---|" * len(devs)]
    for r in rows:
        out.append(f"| {r['label']} | " + " | ".join(_fmt((r["devices"].get(d) or {}).get("accuracy"))
                                                     for d in devs) + " |")
    n = rows[0]["n"] if rows else {}
    out += ["", f"S: source device, T: target (seen) devices, U: unseen devices; clips S {n.get('S')}, "
            f"T {n.get('T')}, U {n.get('U')}. Masked configurations: value<sup>+</sup> / value<sup>-</sup> "
            "for the two mask settings. DA: - none, U unsupervised, U* source scene labels + device labels, "
            "S supervised.", ""]
    return "\n".join(out)


def table1(runs: list, adapted: list | None = None, data=None, split: str = "evaluate", out=None, log=print) -> dict:
    """Score ``runs`` and ``adapted`` ([(method, run), ...]) and write table1.json / table1.md to ``out``."""
    if not runs and not adapted:
        raise ValueError("table1: name at least one run folder (or --adapt METHOD RUN)")
    rows = []
    for run in runs:
        rows.append(score_run(run, data, split, log=log))
    for method, run in adapted or []:
        rows.append(score_run(run, data, split, adapt=method, log=log))
    order = {c: i for i, c in enumerate(["C0", None, "C1", "C2", "C2M", "C3", "C3M"])}
    rows.sort(key=lambda r: (order.get(r["config"], len(order)), r["adapt"] is not None))
    table = {"split": split, "rows": rows}
    if out:
        out = Path(out)
        atomic_write_json(out / "table1.json", table)
        atomic_write_text(out / "table1.md", "# Table 1 (seed 000)\n\n" + markdown(rows))
    return table
