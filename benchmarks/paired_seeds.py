"""Two settings of one recipe, several seeds each: per-group accuracy, mean ± std, and the paired difference.

Runs are paired by position (the k-th run of --a and of --b share a seed). The interval of the
mean difference is Student's t over the seeds (95 %): with three seeds it is wide, and says whether
a difference is larger than what the seed alone moves.

    python benchmarks/paired_seeds.py --a runs/plain-s0 runs/plain-s1 runs/plain-s2 \\
        --b runs/fast-s0 runs/fast-s1 runs/fast-s2 --split urban-mobile-evaluate
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import stats


def accuracies(run: Path, split: str) -> dict:
    report = json.loads((run / "eval" / split / "report.json").read_text())
    out = {g: v["accuracy"] for g, v in report["groups"].items()}
    out["overall"] = report["overall"]["accuracy"]
    out["macro"] = report["overall"]["macro_accuracy"]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", nargs="+", type=Path, required=True, help="runs of the first setting")
    ap.add_argument("--b", nargs="+", type=Path, required=True, help="runs of the second setting, same seeds")
    ap.add_argument("--split", default="urban-mobile-evaluate", help="report folder name under RUN/eval/")
    ap.add_argument("--names", nargs=2, default=("a", "b"))
    a = ap.parse_args(argv)
    if len(a.a) != len(a.b):
        ap.error("--a and --b need the same number of runs (one per seed)")
    ra, rb = [accuracies(r, a.split) for r in a.a], [accuracies(r, a.split) for r in a.b]
    print(f"| group | {a.names[0]} (mean ± std, n={len(ra)}) | {a.names[1]} | {a.names[1]} − {a.names[0]} "
          "(paired, 95 % t-interval) |\n|---|---|---|---|")
    for g in ra[0]:
        x, y = 100 * np.array([r[g] for r in ra]), 100 * np.array([r[g] for r in rb])
        d = y - x
        half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
        print(f"| {g} | {x.mean():.1f} ± {x.std(ddof=1):.1f} | {y.mean():.1f} ± {y.std(ddof=1):.1f} | "
              f"{d.mean():+.1f} [{d.mean() - half:+.1f}, {d.mean() + half:+.1f}] |")


if __name__ == "__main__":
    main()
