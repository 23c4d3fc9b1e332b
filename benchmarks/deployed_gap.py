"""The source − unseen gap of the deployed int8 files, per seed, with its mean, std and 95 % t-interval.

What benchmarks/beyond.sh leaves for each distilled RUN: the int8 file's evaluation
(``RUN/model.int8-eval/*/report.json``: the source device's accuracy) and adapted_export.py's table
(``RUN-adapted.json`` written by its ``--json``, else the printed ``RUN-adapted.md``; ``-METHOD`` in
the name for a method other than band-wise: one int8 file per unseen device, adapted to it; its mean).
The gap is source − the mean of the adapted files.

    python benchmarks/deployed_gap.py runs/beyond_kdhet/cp_resnet_kd-s{0,1,2} [--method bandwise+adabn]
        [--within 3] [--versus bandwise]

``--within`` counts the runs whose gap is below that many points (the goal of docs/beyond.md: 3);
``--versus METHOD`` adds the paired difference of the unseen mean between the two methods' files.
"""
from __future__ import annotations

import argparse
import glob
import json
from pathlib import Path

import numpy as np

from sceneshift.evaluation.bootstrap import seed_t_interval


def int8_source(run: Path) -> float:
    reports = sorted(glob.glob(str(run / "model.int8-eval" / "*" / "report.json")))
    if not reports:
        raise SystemExit(f"deployed_gap.py: {run} has no int8 evaluation ({run}/model.int8-eval/*/report.json)")
    return 100 * json.loads(Path(reports[0]).read_text())["groups"]["source"]["accuracy"]


def adapted_int8(run: Path, method: str) -> tuple[float, list[str]]:
    """Mean and per-device accuracy of the adapted int8 files, from adapted_export.py's JSON or table."""
    stem = f"{run.name}-adapted{'' if method == 'bandwise' else '-' + method}"
    path = run.parent / f"{stem}.json"
    if path.is_file():
        table = json.loads(path.read_text())
        if "adapted file int8" not in table["mean"]:
            raise SystemExit(f"deployed_gap.py: {path} has no int8 column (exported without --int8?)")
        return (table["mean"]["adapted file int8"],
                [f"{d} {v['adapted file int8']:.1f}" for d, v in table["devices"].items()])
    path = run.parent / f"{stem}.md"
    if not path.is_file():
        raise SystemExit(f"deployed_gap.py: {path} is missing (python benchmarks/adapted_export.py {run} --int8"
                         f"{'' if method == 'bandwise' else ' --method ' + method})")
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in path.read_text().splitlines()
            if line.startswith("|")]
    header, body = rows[0], rows[2:]
    if "adapted file int8" not in header:
        raise SystemExit(f"deployed_gap.py: {path} has no int8 column (exported without --int8?)")
    col = header.index("adapted file int8")
    devices = [f"{r[0]} {r[col]}" for r in body if r[0] != "mean"]
    mean = [float(r[col]) for r in body if r[0] == "mean"]
    if not mean:
        raise SystemExit(f"deployed_gap.py: {path} has no mean row")
    return mean[0], devices


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--method", default="bandwise", help="the adaptation of the files (bandwise, quantile, adabn, bandwise+adabn)")
    ap.add_argument("--within", type=float, default=3.0, help="count the runs whose gap is below this (points)")
    ap.add_argument("--versus", metavar="METHOD", help="also the paired difference of the unseen mean: --method "
                    "files minus this method's files of the same runs")
    a = ap.parse_args(argv)
    print(f"| run | int8 source | {a.method} int8 files, unseen (per device) | gap |")
    print("|---|---|---|---|")
    source, unseen = [], []
    for run in a.runs:
        s, (u, devices) = int8_source(run), adapted_int8(run, a.method)
        source.append(s)
        unseen.append(u)
        print(f"| {run} | {s:.1f} | {u:.1f} ({', '.join(devices)}) | {s - u:.1f} |")
    gap = np.subtract(source, unseen)
    if len(gap) > 1:
        lo, hi = seed_t_interval(gap)
        print(f"| mean ± std (n = {len(gap)}) | {np.mean(source):.1f} ± {np.std(source, ddof=1):.1f} | "
              f"{np.mean(unseen):.1f} ± {np.std(unseen, ddof=1):.1f} | {np.mean(gap):.1f} ± {np.std(gap, ddof=1):.1f} |")
        print(f"| gap: 95 % t-interval of the mean | | | [{lo:.1f}, {hi:.1f}] |")
    print(f"| gap below {a.within:g} points | | | {int((gap < a.within).sum())} of {len(gap)} runs |")
    if a.versus:
        d = np.subtract(unseen, [adapted_int8(run, a.versus)[0] for run in a.runs])
        ci = " [{:+.1f}, {:+.1f}]".format(*seed_t_interval(d)) if len(d) > 1 else " (one run)"
        print(f"| unseen, {a.method} − {a.versus} files (paired) | | {d.mean():+.1f}{ci} | |")


if __name__ == "__main__":
    main()
