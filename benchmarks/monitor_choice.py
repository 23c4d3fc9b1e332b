"""Checkpoint selection by validation accuracy (val/acc) against class-balanced validation accuracy (val/macro_acc).

Why: urban-mobile's validation split is class-unbalanced (air conditioner 510 of 2,322 clips, siren
42), its evaluation split nearly balanced, so the epoch with the best plain validation accuracy may
not be the one that generalises best. benchmarks/monitor_choice.sh trains each recipe and seed with the
default monitor and, where val/macro_acc peaked at another epoch, again with it. This script

* ``--same-epoch RUN``: exits 0 when RUN's best epoch by val/acc is also its best by val/macro_acc;
* ``--table OUT RECIPE --seeds ...``: checks that each retrained run retraced its first run's validation
  accuracies (else the comparison would mix training noise into it and the script fails), prints the
  selected epochs per seed, and the paired comparison (benchmarks/paired_seeds.py) without and with
  band-wise matching, selected by val/macro_acc − by val/acc.

    python benchmarks/monitor_choice.py --table runs/monitor baseline --seeds 0 1 2
"""
from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path


def validation_trace(run: Path) -> list[dict]:
    """Per-epoch validation metrics of a run (Lightning's CSV log), in epoch order."""
    path = run / "logs" / "metrics.csv"
    try:
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("val/acc")]
    except FileNotFoundError:
        sys.exit(f"{path}: missing ({run} is not a trained run; train it first, e.g. rerun monitor_choice.sh)")
    if not rows or "val/macro_acc" not in rows[0]:
        sys.exit(f"{path}: no val/acc and val/macro_acc columns (a system that does not log both cannot be compared)")
    return sorted(({"epoch": int(r["epoch"]), "acc": float(r["val/acc"]), "macro": float(r["val/macro_acc"])}
                   for r in rows), key=lambda r: r["epoch"])


def best_epochs(trace: list[dict]) -> tuple[int, int]:
    """1-based best epochs by val/acc and by val/macro_acc (first of ties, as Lightning's checkpoint keeps)."""
    by = lambda k: 1 + max(range(len(trace)), key=lambda i: (trace[i][k], -i))
    return by("acc"), by("macro")


def table(out: Path, recipe: str, seeds: list[str]) -> int:
    runs_a, runs_b = [], []
    print("| seed | best epoch by val/acc | by val/macro_acc | retrained run retraces the first |")
    print("|---|---|---|---|")
    for k in seeds:
        a, b = out / f"{recipe}-acc-s{k}", out / f"{recipe}-macro-s{k}"
        ta = validation_trace(a)
        e_acc, e_macro = best_epochs(ta)
        if b.is_symlink():
            same = "same checkpoint"
        else:
            tb = validation_trace(b)
            worst = max(abs(x["acc"] - y["acc"]) for x, y in zip(ta, tb)) if len(ta) == len(tb) else float("inf")
            if worst > 1e-6:
                print(f"{b}: its validation accuracies differ from {a}'s (largest difference {worst:.2g}); "
                      "training was not deterministic, so the two selections are not comparable", file=sys.stderr)
                return 1
            same = "yes (every epoch's val/acc equal)"
        print(f"| {k} | {e_acc}/{len(ta)} | {e_macro}/{len(ta)} | {same} |")
        runs_a.append(str(a))
        runs_b.append(str(b))
    here = Path(__file__).parent
    for title, extra in (("no adaptation", []),
                         ("unseen devices band-wise matched", ["--split", "urban-mobile-evaluate-bandwise"])):
        print(f"\n### {title}: selected by val/macro_acc − by val/acc\n", flush=True)
        rc = subprocess.call([sys.executable, str(here / "paired_seeds.py"), "--a", *runs_a, "--b", *runs_b,
                              "--names", "val/acc", "val/macro_acc", *extra])
        if rc:
            return rc
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--same-epoch", type=Path, metavar="RUN")
    ap.add_argument("--table", nargs=2, metavar=("OUT", "RECIPE"))
    ap.add_argument("--seeds", nargs="+", default=["0", "1", "2"])
    a = ap.parse_args(argv)
    if a.same_epoch:
        e_acc, e_macro = best_epochs(validation_trace(a.same_epoch))
        return 0 if e_acc == e_macro else 1
    if a.table:
        return table(Path(a.table[0]), a.table[1], a.seeds)
    ap.error("give --same-epoch RUN or --table OUT RECIPE")


if __name__ == "__main__":
    sys.exit(main())
