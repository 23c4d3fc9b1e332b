"""Paired differences with bootstrap intervals for the seed-003 comparisons (two-stage vs single, ablation steps).

Why: urban-mobile's evaluation split holds 837 recordings, each played through all 9 devices,
so accuracies of two systems on it are strongly paired and the 9 device copies of a recording
are not independent. The interval here resamples recordings (all their device copies together,
a cluster bootstrap) and recomputes the accuracy difference of two systems on the same clips.
It measures test-set sampling noise only; the spread between training seeds is not included
(one run per row, for the compute budget), and is likely larger on short schedules.

    python benchmarks/seed003_paired.py /tmp/runs/seed003
Probabilities come from the per-run cache that system evaluation writes (RUN/eval/proba/).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

PAIRS = [("2-stage ResNet vs ResNet", "two_stage_resnet.yaml", "resnet"),
         ("2-stage FCNN vs FCNN", "two_stage_fcnn.yaml", "fcnn"),
         ("2-stage fsFCNN vs fsFCNN", "two_stage_fsfcnn.yaml", "fsfcnn"),
         ("2-stage Ensemble vs Ensemble", "two_stage_ensemble.yaml", "ensemble.yaml"),
         ("Ensemble vs FCNN (best single)", "ensemble.yaml", "fcnn"),
         ("+sa vs mixup+crop", "abl_sa", "abl_mc"),
         ("+sc vs +sa", "abl_sa_sc", "abl_sa"),
         ("+r vs +sa+sc", "abl_sa_sc_r", "abl_sa_sc"),
         ("+aug vs +sa+sc+r", "resnet", "abl_sa_sc_r"),
         ("all augmentations vs mixup+crop", "resnet", "abl_mc")]


def system(runs: Path, name: str):
    from sceneshift.networks.ensemble import CachedRun, load_system
    from sceneshift.networks.predictor import RunPredictor
    return load_system(runs / name, "cpu") if name.endswith(".yaml") else CachedRun(RunPredictor(runs / name, "cpu"))


def main(argv=None):
    from sceneshift.data.splits import DataSource
    runs = Path((argv or sys.argv[1:] or ["/tmp/runs/seed003"])[0])
    first = system(runs, "resnet")
    source = DataSource(first.cfg["data"], first.domain, log=lambda *a: None)
    data = source.split("evaluate")
    recording = np.unique([c.filename.rsplit("-", 1)[0] for c in data.clips], return_inverse=True)[1]
    device = np.array([c.device for c in data.clips])
    groups = {"overall": np.ones(len(device), bool),
              **{g: np.isin(device, m) for g, m in source.adapter.groups().items()}}
    correct = {}
    rng = np.random.default_rng(0)
    n_rec = recording.max() + 1
    draws = [np.bincount(rng.integers(0, n_rec, n_rec), minlength=n_rec) for _ in range(1000)]
    print("| comparison | " + " | ".join(groups) + " |\n|---|" + "---|" * len(groups))
    for label, a, b in PAIRS:
        for name in (a, b):
            if name not in correct:
                correct[name] = system(runs, name).probabilities(data.waves).argmax(1) == data.labels
        cells = []
        for mask in groups.values():
            diff = correct[a].astype(float) - correct[b].astype(float)
            per_rec = np.bincount(recording[mask], diff[mask], minlength=n_rec)
            n_per = np.bincount(recording[mask], minlength=n_rec)
            boot = [(w @ per_rec) / (w @ n_per) for w in draws]
            lo, hi = np.percentile(boot, [2.5, 97.5])
            cells.append(f"{100 * diff[mask].mean():+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
