"""Device-group accuracy of runs, one row per setting (mean ± std over its seeds), as a markdown table.

    python benchmarks/group_table.py "CP-ResNet=runs/cp_resnet-s0,runs/cp_resnet-s1" "+ DIR=runs/cp_resnet_dir-s0" \\
        [--report urban-mobile-evaluate] [--adapted]

Each argument is ``label=RUN[,RUN...]``; a RUN may also be an exported ``.onnx`` file or a system
file (its report folder is ``NAME-eval``). ``--adapted`` reads the ``-bandwise`` reports.
``--interval`` adds under each row of several seeds the 95 % t-interval of its mean (mean ±
t(0.975, n − 1) · sd / √n), e.g. whether the source − unseen gap is below a goal.
The best validation epoch of each run (``summary.json``) is listed, so a reader sees whether
the schedule was long enough.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from sceneshift.evaluation.bootstrap import seed_t_interval

GROUPS = ("source", "seen", "unseen", "overall", "macro")


def report_of(run: Path, split: str, adapted: bool) -> dict:
    folder = run / "eval" if run.is_dir() else run.parent / f"{run.stem}-eval"
    path = folder / (split + ("-bandwise" if adapted else "")) / "report.json"
    if not path.is_file():
        raise SystemExit(f"group_table.py: {run} has no {path.parent.name} report ({path} is missing: "
                         f"not evaluated yet, or --report names another split)")
    return json.loads(path.read_text())


def row(runs: list[Path], split: str, adapted: bool) -> tuple[dict, list]:
    values = {g: [] for g in GROUPS}
    epochs = []
    for run in runs:
        r = report_of(run, split, adapted)
        for g in ("source", "seen", "unseen"):
            values[g].append(100 * r["groups"][g]["accuracy"])
        values["overall"].append(100 * r["overall"]["accuracy"])
        values["macro"].append(100 * r["overall"]["macro_accuracy"])
        summary = run / "summary.json"
        if summary.is_file():
            s = json.loads(summary.read_text())
            epochs.append(f"{s['best_epoch'] + 1}/{s['epochs']}")
    return values, epochs


def fmt(v: list[float]) -> str:
    return f"{np.mean(v):.1f}" if len(v) == 1 else f"{np.mean(v):.1f} ± {np.std(v, ddof=1):.1f}"


def interval(v: list[float]) -> str:
    lo, hi = seed_t_interval(v)
    return f"[{lo:.1f}, {hi:.1f}]"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", nargs="+", metavar="label=RUN[,RUN...]")
    ap.add_argument("--report", default="urban-mobile-evaluate")
    ap.add_argument("--adapted", action="store_true", help="read the band-wise adapted reports")
    ap.add_argument("--interval", action="store_true", help="add each row's 95 %% t-interval of the mean (2+ seeds)")
    a = ap.parse_args(argv)
    print("| setting | n | " + " | ".join(GROUPS) + " | source − unseen | best epoch |")
    print("|---|---|" + "---|" * (len(GROUPS) + 2))
    for spec in a.rows:
        label, _, runs = spec.partition("=")
        paths = [Path(p) for p in runs.split(",") if p]
        values, epochs = row(paths, a.report, a.adapted)
        gap = [s - u for s, u in zip(values["source"], values["unseen"])]
        print(f"| {label} | {len(paths)} | " + " | ".join(fmt(values[g]) for g in GROUPS)
              + f" | {fmt(gap)} | {', '.join(epochs) or '-'} |")
        if a.interval and len(paths) > 1:
            print(f"| {label}: 95 % t-interval | | " + " | ".join(interval(values[g]) for g in GROUPS)
                  + f" | {interval(gap)} | |")


if __name__ == "__main__":
    main()
