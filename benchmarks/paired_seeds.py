"""Two settings of one recipe, several seeds each: per-group accuracy, mean ± std, and the paired difference.

Runs are paired by position (the k-th run of --a and of --b share a seed). Two 95 % intervals of
the mean difference: Student's t over the seeds (with three seeds it is wide, and says whether a
difference is larger than what the seed alone moves), and a paired bootstrap that resamples both
the seed pairs and the evaluation recordings (a cluster bootstrap: all device copies of a
recording segment drawn together, the same draw for both settings; --cluster location draws whole
recording locations), so it also counts how much the choice of test recordings moves the
difference. The bootstrap reads each run's ``predictions.csv`` (written by ``sceneshift
evaluate``); it is left out where one is missing or where the runs were scored on different clips.
It is ``sceneshift.evaluation.bootstrap.paired_bootstrap``, the one ``sceneshift compare`` uses.

    python benchmarks/paired_seeds.py --a runs/plain-s0 runs/plain-s1 runs/plain-s2 \\
        --b runs/fast-s0 runs/fast-s1 runs/fast-s2 --split urban-mobile-evaluate
    python benchmarks/paired_seeds.py --a runs/c0 --b runs/c0 --split-b urban-mobile-evaluate-bandwise
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from sceneshift.evaluation.bootstrap import (cluster_keys, paired_bootstrap, paired_predictions, read_predictions,
                                             seed_t_interval)


def accuracies(run: Path, split: str, devices=()) -> dict:
    report = json.loads((run / "eval" / split / "report.json").read_text())
    out = {g: v["accuracy"] for g, v in report["groups"].items()}
    out["overall"] = report["overall"]["accuracy"]
    out["macro"] = report["overall"]["macro_accuracy"]
    for d in devices:
        if d not in report["devices"]:
            raise SystemExit(f"paired_seeds.py: --devices {d}: {run}/eval/{split} has no device {d} "
                             f"(it has {', '.join(report['devices'])})")
        out[d] = report["devices"][d]["accuracy"]
    return out


def bootstrap(runs_a, runs_b, split: str, groups: dict, n: int = 2000, seed: int = 0,
              cluster: str = "segment", split_b: str | None = None) -> dict | None:
    """95 % percentile interval of mean(b − a) per group, resampling seed pairs and clusters of clips (paired)."""
    preds = [read_predictions(r / "eval" / s / "predictions.csv")
             for runs, s in ((runs_a, split), (runs_b, split_b or split)) for r in runs]
    if any(p is None for p in preds):
        return None
    try:
        files, correct, devices = paired_predictions(*preds)
    except ValueError as e:
        print(f"note: no bootstrap interval: {e}", file=sys.stderr)
        return None
    da, db = correct[:len(runs_a)], correct[len(runs_a):]       # (seeds, clips)
    return paired_bootstrap(da, db, devices, {**groups, "overall": None}, n=n, seed=seed,
                            clusters=cluster_keys(files, devices, cluster))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", nargs="+", type=Path, required=True, help="runs of the first setting")
    ap.add_argument("--b", nargs="+", type=Path, required=True, help="runs of the second setting, same seeds")
    ap.add_argument("--split", default="urban-mobile-evaluate", help="report folder name under RUN/eval/")
    ap.add_argument("--split-b", default=None, help="the --b runs' report folder, when it differs (e.g. "
                    "urban-mobile-evaluate-bandwise: the same runs with band-wise matching against without)")
    ap.add_argument("--names", nargs=2, default=("a", "b"))
    ap.add_argument("--devices", nargs="+", default=[], help="also one row per named device (e.g. s4 s5 s6)")
    ap.add_argument("--cluster", choices=("segment", "location", "clip"), default="segment",
                    help="what the bootstrap resamples: recording segments with all their device copies (default), "
                         "whole recording locations, or single clips (too narrow where clips share a recording)")
    a = ap.parse_args(argv)
    if len(a.a) != len(a.b):
        ap.error("--a and --b need the same number of runs (one per seed)")
    split_b = a.split_b or a.split
    ra, rb = [accuracies(r, a.split, a.devices) for r in a.a], [accuracies(r, split_b, a.devices) for r in a.b]
    report = json.loads((a.a[0] / "eval" / a.split / "report.json").read_text())
    groups = {g: set(v["devices"]) for g, v in report["groups"].items() if "devices" in v}
    groups.update({d: {d} for d in a.devices})
    boot = bootstrap(a.a, a.b, a.split, groups, cluster=a.cluster, split_b=split_b)
    unit = {"segment": "recordings", "location": "locations", "clip": "clips"}[a.cluster]
    print(f"| group | {a.names[0]} (mean ± std, n={len(ra)}) | {a.names[1]} | {a.names[1]} − {a.names[0]} "
          f"(paired, 95 % t-interval) | paired bootstrap 95 % (seeds and {unit}) |\n|---|---|---|---|---|")
    for g in ra[0]:
        x, y = 100 * np.array([r[g] for r in ra]), 100 * np.array([r[g] for r in rb])
        d = y - x
        b = boot.get(g) if boot else None
        bs = f"[{b[0]:+.1f}, {b[1]:+.1f}]" if b is not None else "n/a"
        if len(d) < 2:                 # one seed: no spread over seeds, only the bootstrap over recordings
            print(f"| {g} | {x.mean():.1f} | {y.mean():.1f} | {d.mean():+.1f} (one seed) | {bs} |")
            continue
        lo, hi = seed_t_interval(d)
        print(f"| {g} | {x.mean():.1f} ± {x.std(ddof=1):.1f} | {y.mean():.1f} ± {y.std(ddof=1):.1f} | "
              f"{d.mean():+.1f} [{lo:+.1f}, {hi:+.1f}] | {bs} |")


if __name__ == "__main__":
    main()
