"""Paired cluster bootstrap intervals of accuracy differences between systems scored on the same clips.

Why paired: two systems scored on one test set see the same clips, so the clip-to-clip
variation (some clips are hard for every system) cancels in the difference; resampling with the
same draw for both systems keeps that pairing, and the interval is far narrower than two
independent intervals would suggest.

Why clusters: in the TAU 2020 Mobile layout (urban-mobile, real TAU, ``sceneshift devices
simulate``) every evaluation segment is played through all devices, so the 9 device copies of
``airport-lisbon-1000-40000`` are one acoustic scene heard 9 times, not 9 independent samples: a
system that gets a segment right tends to get its copies right too. Resampling single clips
treats them as independent and gives intervals about sqrt(copies) ≈ 3 times too narrow. What is
resampled here is the recording segment (the file name without its device suffix, all its device
copies together; ``by="location"``: every segment of a recording location together, coarser
still, as segments are cut from one long recording). A clip whose name has no device suffix is
a cluster of its own, and then this is the ordinary clip bootstrap.

Why here: ``sceneshift compare`` (one run against another), ``benchmarks/paired_seeds.py``
(several seeds per setting, seed pairs resampled too) and ``benchmarks/seed003_paired.py`` need
the same estimate, so there is one implementation. Its companion over training seeds alone,
``seed_t_interval`` (Student's t of a mean over per-seed values), serves the benchmark tables.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from scipy import stats

from ..data.datasets.tau import device_of, location_of

CLUSTERS = ("segment", "location", "clip")


def seed_t_interval(values, level: float = 0.95) -> tuple[float, float]:
    """Interval of the mean of per-seed values: mean ± t((1 + level) / 2, n − 1) · sd / √n (n ≥ 2).

    It counts only how much the training seed moves a figure (with three seeds it is wide); the
    bootstrap below also counts the choice of test clips."""
    v = np.asarray(values, dtype=float)
    if v.size < 2:
        raise ValueError(f"a t-interval needs two or more seeds (got {v.size})")
    half = stats.t.ppf((1 + level) / 2, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
    return float(v.mean() - half), float(v.mean() + half)


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


def cluster_key(filename: str, device: str | None = None, by: str = "segment") -> str:
    """What is resampled as one unit: ``audio/airport-lisbon-1000-40000-a.wav`` ->
    ``audio/airport-lisbon-1000-40000`` (the segment: the name without its device suffix), with
    ``by="location"`` -> ``audio/airport-lisbon-1000`` (:func:`tau.location_of`), ``by="clip"`` ->
    the file name itself. ``device`` (default: read from the name) is the clip's device: only a
    suffix equal to it is taken off, so a name of another layout (``street-traffic-01.wav`` of a
    folder-per-class dataset) stays a cluster of its own."""
    if by not in CLUSTERS:
        raise ValueError(f"cluster: expected one of {', '.join(CLUSTERS)}, got {by!r}")
    p = Path(filename)
    device = device_of(filename, "") if device is None else device
    if by == "clip" or not device or not p.stem.endswith(f"-{device}"):
        return filename
    if by == "location" and len(p.stem.split("-")) >= 4:        # scene-city-location-segment-device
        return str(p.parent / location_of(p.name))
    return str(p.parent / p.stem[:-len(device) - 1])


def cluster_keys(files, devices=None, by: str = "segment") -> np.ndarray:
    """:func:`cluster_key` of every file (``devices``: each file's device, or read from the names)."""
    devices = [None] * len(files) if devices is None else devices
    return np.array([cluster_key(f, d, by) for f, d in zip(files, devices)], dtype=object)


def paired_predictions(*predictions) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Several :func:`read_predictions` results aligned by file name: ``(files, correct (runs, clips),
    devices)``, files sorted (the order rows were written in does not matter). Different clip sets,
    or one clip with different devices, are refused with a ValueError that says so: a pairing on
    the common subset would describe clips no report describes."""
    (c0, d0), rest = predictions[0], predictions[1:]
    for c, d in rest:
        if set(c) != set(c0):
            common = len(set(c) & set(c0))
            raise ValueError(f"scored on different clips ({len(c0)} vs {len(c)} clips, {common} in common): "
                             "not paired")
        other = [f for f in c0 if d[f] != d0[f]]
        if other:
            raise ValueError(f"the same clips with other devices ({len(other)} clips, e.g. {other[0]}: "
                             f"{d0[other[0]]} vs {d[other[0]]}): not paired")
    files = sorted(c0)
    return files, np.array([[c[f] for f in files] for c, _ in predictions], float), \
        np.array([d0[f] for f in files])


def _masks(devices: np.ndarray, groups: dict) -> dict:
    out = {}
    for g, devs in groups.items():
        m = np.ones(len(devices), bool) if devs is None else np.isin(devices, list(devs))
        if m.any():
            out[g] = m
    return out


def observed_difference(correct_a, correct_b, devices, groups: dict) -> dict:
    """mean(b − a) in percentage points per group (same arguments as :func:`paired_bootstrap`)."""
    da, db = np.atleast_2d(np.asarray(correct_a, float)), np.atleast_2d(np.asarray(correct_b, float))
    return {g: 100 * float(db[:, m].mean() - da[:, m].mean()) for g, m in _masks(np.asarray(devices), groups).items()}


def paired_bootstrap(correct_a, correct_b, devices, groups: dict, *, clusters, n: int = 2000, seed: int = 0) -> dict:
    """95 % percentile interval of mean(b − a), in percentage points, per group.

    ``correct_a`` and ``correct_b``: 0/1 per clip, ``(clips,)`` for one run each or ``(seeds, clips)``
    for seed pairs (the k-th rows share a seed; seed pairs are resampled along with the clusters,
    so the interval also counts how much the seed moves the difference). ``devices``: the device of
    each clip; ``clusters``: its cluster key (:func:`cluster_keys`; the clips of one cluster are
    drawn together, with the same draw for both sides); ``groups``: name -> its devices (``None``:
    every clip). Per group, the clusters with clips in it are resampled and the difference is the
    mean over the drawn clusters' clips of the group. A group without clips is left out. With one
    clip per cluster this is the clip bootstrap. Deterministic for a given ``seed``.
    """
    da, db = np.atleast_2d(np.asarray(correct_a, float)), np.atleast_2d(np.asarray(correct_b, float))
    if da.shape != db.shape:
        raise ValueError(f"paired bootstrap: both sides need the same seeds and clips ({da.shape} vs {db.shape})")
    devices, clusters = np.asarray(devices), np.asarray(clusters)
    if len(devices) != da.shape[1] or len(clusters) != da.shape[1]:
        raise ValueError(f"paired bootstrap: {da.shape[1]} clips, but {len(devices)} devices and "
                         f"{len(clusters)} cluster keys")
    diff, seeds = db - da, len(da)
    rng = np.random.default_rng(seed)
    out = {}
    for g, m in _masks(devices, groups).items():
        first, idx = np.unique(clusters[m], return_index=True, return_inverse=True)[1:]
        k = len(first)
        idx = np.argsort(np.argsort(first))[idx.ravel()]        # clusters numbered in order of first clip
        per = np.stack([np.bincount(idx, row, minlength=k) for row in diff[:, m]])    # (seeds, clusters): Σ b − a
        size = np.bincount(idx, minlength=k)                                         # clips of the group per cluster
        boot = np.empty(n)
        for i in range(n):
            s = rng.integers(0, seeds, seeds)
            w = np.bincount(rng.integers(0, k, k), minlength=k)                       # times each cluster is drawn
            boot[i] = 100 * (per[s].sum(0) @ w) / (seeds * (size @ w))
        out[g] = np.percentile(boot, [2.5, 97.5])
    return out
