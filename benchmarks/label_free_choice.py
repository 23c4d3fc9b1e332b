"""Choosing the adaptation per unseen device from its unlabeled clips: can a label-free score do it?

Validation cannot tell which test-time adaptation helps an unseen device (heldout_choice.py), but
the device's own unlabeled clips are at hand when it is adapted. For each RUN evaluated with
``sceneshift evaluate RUN`` and ``sceneshift evaluate RUN --adapt METHOD`` for each METHOD, this
scores every method on every unseen device (``domain.json``'s ``unseen`` group) with the
device's predicted probabilities alone (``predictions.csv``; the labels are read only to report
accuracy), picks the best-scoring method per device and criterion, and compares the accuracy of
those picks with each fixed method and with the oracle (the best method per device, chosen with
labels: the ceiling of any per-device choice). Criteria, all common unsupervised model-selection
scores: ``confidence`` (mean top probability, higher is better), ``entropy`` (mean prediction
entropy, lower), ``infomax`` (entropy of the mean prediction minus mean entropy, higher: confident
and spread over the classes, the objective of SHOT-style adaptation).

    python benchmarks/label_free_choice.py runs/dir1-fms/s{0,1,2} [--methods bandwise bandwise+adabn]
"""
from __future__ import annotations

import argparse
import csv
import glob
import json
from pathlib import Path

import numpy as np

from sceneshift.evaluation.bootstrap import seed_t_interval


def read_probabilities(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(file names, devices, right or wrong, probabilities) of every clip in a ``predictions.csv``."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if not rows:
        raise SystemExit(f"label_free_choice.py: {path} has no clips")
    cols = [c for c in rows[0] if c.startswith("p_")]
    return (np.array([r["filename"] for r in rows]), np.array([r["device"] for r in rows]),
            np.array([r["predicted"] == r["scene_label"] for r in rows]),
            np.array([[float(r[c]) for c in cols] for r in rows]))


def _entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(np.clip(p, 1e-12, None))).sum(-1)


CRITERIA = {        # name -> score of a device's (clips, classes) probabilities; higher is better
    "confidence": lambda p: float(p.max(1).mean()),
    "entropy": lambda p: -float(_entropy(p).mean()),
    "infomax": lambda p: float(_entropy(p.mean(0)) - _entropy(p).mean()),
}


def predictions(run: Path, method: str | None) -> Path:
    """The evaluation split's predictions of ``run`` with ``method``, of one dataset."""
    name = "*-evaluate" + (f"-{method}" if method else "")
    found = sorted(glob.glob(str(run / "eval" / name / "predictions.csv")))
    if not found:
        adapt = f" --adapt {method}" if method else ""
        raise SystemExit(f"label_free_choice.py: {run} has no {name} predictions (sceneshift evaluate {run}{adapt})")
    if len(found) > 1:
        raise SystemExit(f"label_free_choice.py: {run} has {name} predictions of several datasets "
                         f"({', '.join(Path(f).parent.name for f in found)}); keep one")
    return Path(found[0])


def unseen_devices(run: Path) -> list[str]:
    path = run / "domain.json"
    groups = json.loads(path.read_text()).get("groups", {}) if path.is_file() else {}
    if not groups.get("unseen"):
        raise SystemExit(f"label_free_choice.py: {path} names no unseen devices")
    return groups["unseen"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--methods", nargs="+", default=["bandwise", "bandwise+adabn"],
                    help="adaptations to choose from, besides none")
    a = ap.parse_args(argv)
    methods, names = [None] + a.methods, ["none"] + a.methods
    accs, picks, rows = [], {c: [] for c in CRITERIA}, []     # accs: per run, (devices, methods) accuracy
    for run in a.runs:      # everything read before anything is printed: a missing file stops it cleanly
        read = [read_probabilities(predictions(run, m)) for m in methods]
        acc, chosen = [], {c: [] for c in CRITERIA}
        for device in unseen_devices(run):
            sel = [dev == device for _, dev, _, _ in read]
            clips = [set(files[s]) for (files, _, _, _), s in zip(read, sel)]
            if not clips[0] or any(c != clips[0] for c in clips):
                raise SystemExit(f"label_free_choice.py: {run}: the evaluations do not hold the same clips of unseen "
                                 f"device {device} ({', '.join(f'{n} {len(c)}' for n, c in zip(names, clips))})")
            acc.append([100 * right[s].mean() for (_, _, right, _), s in zip(read, sel)])
            for c, score in CRITERIA.items():
                chosen[c].append(int(np.argmax([score(p[s]) for (_, _, _, p), s in zip(read, sel)])))
            rows.append(f"| {run.name} | {device} | " + " | ".join(f"{x:.1f}" for x in acc[-1]) + " | "
                        + " | ".join(names[chosen[c][-1]] for c in CRITERIA) + " |")
        accs.append(np.array(acc))
        for c in CRITERIA:
            picks[c].append(np.array(chosen[c]))
    print("| run | device | " + " | ".join(f"accuracy: {n}" for n in names) + " | "
          + " | ".join(f"chosen by {c}" for c in CRITERIA) + " |")
    print("|---|---|" + "---|" * (len(names) + len(CRITERIA)))
    print("\n".join(rows))
    # per run: the mean over its unseen devices (runs may name different devices, or a different number)
    per_run = {f"always {n}": np.array([acc[:, i].mean() for acc in accs]) for i, n in enumerate(names)}
    per_run["oracle (labels)"] = np.array([acc.max(1).mean() for acc in accs])
    for c in CRITERIA:
        per_run[f"chosen by {c}"] = np.array([acc[np.arange(len(acc)), k].mean() for acc, k in zip(accs, picks[c])])
    fixed_best = names[int(np.argmax([per_run[f"always {n}"].mean() for n in names]))]
    print()
    print(f"| choice | unseen accuracy, mean over runs (n = {len(accs)}) | − always {fixed_best} "
          f"(paired over runs, 95 % t-interval) |")
    print("|---|---|---|")
    ref = per_run[f"always {fixed_best}"]
    for name, values in per_run.items():
        d = values - ref
        ci = " [{:+.1f}, {:+.1f}]".format(*seed_t_interval(d)) if len(d) > 1 and d.std() > 0 else ""
        print(f"| {name} | {values.mean():.1f} | {d.mean():+.1f}{ci} |")
    print()
    for c in CRITERIA:
        counts = np.bincount(np.concatenate(picks[c]), minlength=len(names))
        print(f"{c}: picked " + ", ".join(f"{n} {k}x" for n, k in zip(names, counts))
              + f" of {int(counts.sum())} devices")


if __name__ == "__main__":
    main()
