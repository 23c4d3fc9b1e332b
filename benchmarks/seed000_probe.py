"""Linear probes on each half of seed 000's embedding: is device information really gone from m+?

Table 1 measures disentanglement with the network's own heads: ``a_D^{S+}`` is the device head
applied to the first embedding half. The variance loss that makes that number low can be met
by the device head ignoring the first half (zero weights there) while the first half still
encodes the device. A fresh linear classifier (a probe) fitted on one half of the embedding
says how much scene and device information that half actually holds.

Probes are fitted on the validation split's embeddings and scored on the test split (devices
the run trained on), so they never see the clips they are scored on.

Usage: python benchmarks/seed000_probe.py RUN [RUN ...] --out DIR
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from sceneshift.io import atomic_write_json, atomic_write_text


def embeddings(predictor, split: str, batch_size: int = 128):
    from sceneshift.data.splits import DataSource, iter_batches
    data = DataSource(predictor.cfg["data"], predictor.domain, log=lambda *a: None).split(split)
    keep = np.flatnonzero((data.labels >= 0) & (data.devices >= 0))
    with torch.no_grad():
        out = [predictor.net.embed(w).numpy() for w in iter_batches(data.waves, batch_size, keep)]
    return np.concatenate(out), data.labels[keep], data.devices[keep]


def probe_accuracy(x_fit, y_fit, x_test, y_test, steps: int = 300, weight_decay: float = 1e-3) -> float:
    """Multinomial logistic regression (full-batch L-BFGS) fitted on one set, accuracy on another."""
    torch.manual_seed(0)
    mean, std = x_fit.mean(0), x_fit.std(0) + 1e-6
    xf, xt = torch.from_numpy((x_fit - mean) / std).float(), torch.from_numpy((x_test - mean) / std).float()
    yf = torch.from_numpy(y_fit)
    lin = torch.nn.Linear(xf.shape[1], int(max(y_fit.max(), y_test.max())) + 1)
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(lin(xf), yf) + weight_decay * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float((lin(xt).argmax(1).numpy() == y_test).mean())


def probe_run(run: str) -> dict:
    from sceneshift.networks.predictor import load_predictor
    predictor = load_predictor(run, device="cpu")
    zf, af, df = embeddings(predictor, predictor.cfg["data"]["val_split"])
    zt, at, dt = embeddings(predictor, predictor.cfg["data"]["test_split"])
    half = zf.shape[1] // 2
    parts = {"first half (m+)": slice(0, half), "second half (m-)": slice(half, None), "whole": slice(None)}
    result = {"run": run, "config": (predictor.cfg.get("system_options") or {}).get("config"), "probes": {}}
    for name, sl in parts.items():
        result["probes"][name] = {"scene": probe_accuracy(zf[:, sl], af, zt[:, sl], at),
                                  "device": probe_accuracy(zf[:, sl], df, zt[:, sl], dt)}
    result["n_fit"], result["n_test"] = len(af), len(at)
    # how much each head's weights can tell classes apart per half (rows centred over classes)
    for head in ("head", "device_head"):
        if hasattr(predictor.net, head):
            w = getattr(predictor.net, head).weight.detach()
            w = w - w.mean(0, keepdim=True)
            result[f"{head}_contrast_norm"] = [float(w[:, :half].norm()), float(w[:, half:].norm())]
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)
    rows = [probe_run(r) for r in a.runs]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "probes.json", rows)
    lines = ["| run | part | scene probe acc | device probe acc |", "|---|---|---|---|"]
    for r in rows:
        for part, v in r["probes"].items():
            lines.append(f"| {r['config'] or Path(r['run']).name} | {part} | {v['scene']:.2f} | {v['device']:.2f} |")
    lines += ["", "| run | head | class-contrast weight norm, first half | second half |", "|---|---|---|---|"]
    for r in rows:
        for head in ("head", "device_head"):
            if f"{head}_contrast_norm" in r:
                a, b = r[f"{head}_contrast_norm"]
                lines.append(f"| {r['config'] or Path(r['run']).name} | {head} | {a:.2f} | {b:.2f} |")
    atomic_write_text(out / "probes.md", "\n".join(lines) + "\n")   # last: the job queue's marker
    print("\n".join(lines))


if __name__ == "__main__":
    main()
