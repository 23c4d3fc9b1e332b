"""Choosing the unsupervised adaptation on a held-out device: does the validation choice carry over?

Each RUN was trained with ``data.exclude_devices`` (one seen device left out of training), then
evaluated with ``sceneshift evaluate RUN --split validate [--adapt METHOD]`` and ``sceneshift
evaluate RUN [--adapt METHOD]``. Without ``--adapt-all`` only the devices the run never heard are
adapted: on the validation split that is the held-out device alone, on the evaluation split the
held-out device and the unseen ones. Per run this prints the held-out device's validation accuracy
and the unseen devices' evaluation accuracy under each method, then, over the runs, the paired
differences of the methods with a 95 % t-interval, and which method each split would choose.

    python benchmarks/heldout_choice.py runs/heldout/baseline-no_s1-s0 ... [--methods bandwise bandwise+adabn]
"""
from __future__ import annotations

import argparse
import glob
import json
from pathlib import Path

import numpy as np
import yaml

from sceneshift.evaluation.bootstrap import seed_t_interval


def report(run: Path, split: str, method: str | None) -> dict:
    name = f"*-{split}" + (f"-{method}" if method else "")
    found = sorted(glob.glob(str(run / "eval" / name / "report.json")))
    if not found:
        adapt = f" --adapt {method}" if method else ""
        raise SystemExit(f"heldout_choice.py: {run} has no {name} report "
                         f"(sceneshift evaluate {run} --split {split}{adapt})")
    return json.loads(Path(found[0]).read_text())


def pooled(rep: dict, devices: list[str]) -> float:
    """Accuracy (%) over the clips of ``devices``, pooled."""
    rows = [rep["devices"][d] for d in devices if d in rep["devices"]]
    if not rows:
        raise SystemExit(f"heldout_choice.py: none of {devices} in the report (devices: {list(rep['devices'])})")
    return 100 * sum(r["accuracy"] * r["n"] for r in rows) / sum(r["n"] for r in rows)


def unseen_group(rep: dict, run: Path) -> dict:
    if "unseen" not in rep.get("groups", {}):
        raise SystemExit(f"heldout_choice.py: {run}'s evaluation report has no 'unseen' device group "
                         f"(groups: {', '.join(rep.get('groups', {})) or 'none'})")
    return rep["groups"]["unseen"]


def held_out(run: Path) -> list[str]:
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    devices = (cfg.get("data") or {}).get("exclude_devices") or []
    if not devices:
        raise SystemExit(f"heldout_choice.py: {run} was trained on every device (no data.exclude_devices in "
                         f"its config.yaml); train it with data.exclude_devices=[DEVICE]")
    return devices


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--methods", nargs="+", default=["bandwise", "bandwise+adabn"],
                    help="adaptations compared with each other and with none")
    a = ap.parse_args(argv)
    methods = [None] + a.methods
    names = ["none"] + a.methods
    val, unseen, rows = [], [], []
    for run in a.runs:          # every report read before anything is printed: a missing one stops it cleanly
        devs = held_out(run)
        val.append([pooled(report(run, "validate", m), devs) for m in methods])
        unseen.append([100 * unseen_group(report(run, "evaluate", m), run)["accuracy"] for m in methods])
        rows.append(f"| {run.name} | {', '.join(devs)} | " + " | ".join(f"{x:.1f}" for x in val[-1] + unseen[-1]) + " |")
    print("| run | held out | " + " | ".join(f"validation, held-out device: {n}" for n in names) + " | "
          + " | ".join(f"evaluation, unseen: {n}" for n in names) + " |")
    print("|---|---|" + "---|" * (2 * len(names)))
    print("\n".join(rows))
    val, unseen = np.array(val), np.array(unseen)
    print()
    print("| difference (paired over runs) | validation, held-out device | evaluation, unseen devices |")
    print("|---|---|---|")
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            cells = []
            for table in (val, unseen):
                d = table[:, j] - table[:, i]
                ci = " [{:+.1f}, {:+.1f}]".format(*seed_t_interval(d)) if len(d) > 1 else ""
                cells.append(f"{d.mean():+.1f}{ci} (per run {', '.join(f'{x:+.1f}' for x in d)})")
            print(f"| {names[j]} − {names[i]} | {cells[0]} | {cells[1]} |")
    print()
    print(f"Chosen on validation (highest mean on the held-out device): {names[int(val.mean(0).argmax())]}; "
          f"best on the unseen devices of the evaluation split: {names[int(unseen.mean(0).argmax())]} "
          f"(n = {len(a.runs)} runs).")


if __name__ == "__main__":
    main()
