"""Paired bootstrap intervals of accuracy differences between systems scored on the same clips.

Why paired: two systems scored on one test set see the same clips, so the clip-to-clip
variation (some clips are hard for every system) cancels in the difference; resampling clips
with the same draw for both systems keeps that pairing, and the interval is far narrower than
two independent intervals would suggest. Why here: ``sceneshift compare`` (one run against
another) and ``benchmarks/paired_seeds.py`` (several seeds per setting, seed pairs resampled
too) need the same estimate, so there is one implementation.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def read_predictions(path: str | Path) -> tuple[dict, dict] | None:
    """``{filename: 1.0 if predicted right else 0.0}`` and ``{filename: device}`` from a
    ``predictions.csv`` written by ``sceneshift evaluate``; None when there is none."""
    path = Path(path)
    if not path.is_file():
        return None
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return {r["filename"]: float(r["predicted"] == r["scene_label"]) for r in rows}, \
        {r["filename"]: r["device"] for r in rows}


def paired_bootstrap(correct_a, correct_b, devices, groups: dict, n: int = 2000, seed: int = 0) -> dict:
    """95 % percentile interval of mean(b − a), in percentage points, per group.

    ``correct_a`` and ``correct_b``: 0/1 per clip, ``(clips,)`` for one run each or ``(seeds, clips)``
    for seed pairs (the k-th rows share a seed; seed pairs are resampled along with the clips, so
    the interval also counts how much the seed moves the difference). ``devices``: the device of
    each clip; ``groups``: name -> its devices (``None``: every clip). A group without clips is
    left out. Deterministic for a given ``seed``.
    """
    da, db = np.atleast_2d(np.asarray(correct_a, float)), np.atleast_2d(np.asarray(correct_b, float))
    if da.shape != db.shape:
        raise ValueError(f"paired bootstrap: both sides need the same seeds and clips ({da.shape} vs {db.shape})")
    devices = np.asarray(devices)
    rng = np.random.default_rng(seed)
    out = {}
    for g, devs in groups.items():
        cols = np.arange(len(devices)) if devs is None else np.flatnonzero(np.isin(devices, list(devs)))
        if not len(cols):
            continue
        diffs = np.empty(n)
        for k in range(n):
            s = rng.integers(0, len(da), len(da))
            c = cols[rng.integers(0, len(cols), len(cols))]
            diffs[k] = 100 * (db[s][:, c].mean() - da[s][:, c].mean())
        out[g] = np.percentile(diffs, [2.5, 97.5])
    return out
