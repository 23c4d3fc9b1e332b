"""Paired differences with bootstrap intervals for the seed-003 comparisons (two-stage vs single, ablation steps).

Why: urban-mobile's evaluation split holds 837 recordings, each played through all 9 devices,
so accuracies of two systems on it are strongly paired and the 9 device copies of a recording
are not independent. The interval here resamples recordings (all their device copies together,
a cluster bootstrap: ``sceneshift.evaluation.bootstrap.paired_bootstrap``, the one ``sceneshift
compare`` and ``benchmarks/paired_seeds.py`` use) and recomputes the accuracy difference of two
systems on the same clips.
It measures test-set sampling noise only; the spread between training seeds is not included
(one run per row, for the compute budget), and is likely larger on short schedules.

    python benchmarks/seed003_paired.py runs/seed003
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
         # against each member: which single model is best changes between seeds
         ("Ensemble vs ResNet", "ensemble.yaml", "resnet"),
         ("Ensemble vs FCNN", "ensemble.yaml", "fcnn"),
         ("Ensemble vs fsFCNN", "ensemble.yaml", "fsfcnn"),
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
    from sceneshift.evaluation.bootstrap import cluster_keys, observed_difference, paired_bootstrap
    from seed003_report import find_report     # the same report lookup as the tables (this folder)
    runs = Path((argv or sys.argv[1:] or ["runs/seed003"])[0])
    first = system(runs, "resnet")
    source = DataSource(first.cfg["data"], first.domain, log=lambda *a: None)
    data = source.split("evaluate")
    device = np.array([c.device for c in data.clips])
    recording = cluster_keys([c.filename for c in data.clips], device)
    groups = {"overall": None, **source.adapter.groups()}
    correct = {}
    print("| comparison | " + " | ".join(groups) + " |\n|---|" + "---|" * len(groups))
    for label, a, b in PAIRS:
        # only what the queue scored: a run with ONLY=... leaves rows out, and writes every system file first
        if find_report(runs, a.removesuffix(".yaml")) is None or find_report(runs, b.removesuffix(".yaml")) is None:
            print(f"| {label} | " + " | ".join(["not run"] * len(groups)) + " |")
            continue
        for name in (a, b):
            if name not in correct:
                correct[name] = (system(runs, name).probabilities(data.waves).argmax(1) == data.labels).astype(float)
        # the table shows a − b: b goes first, as the side the difference is taken from
        diff = observed_difference(correct[b], correct[a], device, groups)
        ci = paired_bootstrap(correct[b], correct[a], device, groups, clusters=recording, n=1000)
        cells = [f"{diff[g]:+.1f} [{ci[g][0]:+.1f}, {ci[g][1]:+.1f}]" if g in ci else "-" for g in groups]
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
