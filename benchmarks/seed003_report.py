"""Print the seed-003 tables (markdown) from the report.json files of benchmarks/seed003_tables.sh.

Columns follow the paper's Table 2 (A, B&C, s1-s3, s4-s6, average over devices) plus the
urban-mobile device groups (seen = b, c, s1-s3). Accuracies per device group are means over the
group's devices (every device has the same number of evaluation clips).

    python benchmarks/seed003_report.py runs/seed003
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

TABLE1 = [("3-class ResNet", "resnet_3class"), ("3-class FCNN", "fcnn_3class"), ("3-class ensemble", "coarse_ensemble")]
TABLE2 = [("ResNet", "resnet"), ("FCNN", "fcnn"), ("fsFCNN", "fsfcnn"), ("Ensemble", "ensemble"),
          ("2-stage ResNet", "two_stage_resnet"), ("2-stage FCNN", "two_stage_fcnn"),
          ("2-stage fsFCNN", "two_stage_fsfcnn"), ("2-stage Ensemble", "two_stage_ensemble")]
TABLE3 = [("ResNet (mixup + crop)", "abl_mc"), ("+sa", "abl_sa"), ("+sa+sc", "abl_sa_sc"),
          ("+sa+sc+r", "abl_sa_sc_r"), ("+sa+sc+r+aug", "resnet")]
COLUMNS = [("A", ["a"]), ("B&C", ["b", "c"]), ("s1-s3", ["s1", "s2", "s3"]), ("s4-s6", ["s4", "s5", "s6"]),
           ("seen", ["b", "c", "s1", "s2", "s3"])]


def find_report(runs: Path, name: str) -> dict | None:
    for folder in (runs / name / "eval", runs / f"{name}-eval"):
        hits = sorted(folder.glob("*-evaluate/report.json")) if folder.is_dir() else []
        if hits:
            return json.loads(hits[0].read_text())
    return None


def row(label: str, report: dict | None) -> str:
    if report is None:
        return f"| {label} | " + " | ".join(["not run"] * (len(COLUMNS) + 2)) + " |"
    dev = report["devices"]
    cells = []
    for _, members in COLUMNS:
        have = [dev[d]["accuracy"] for d in members if d in dev]
        cells.append(f"{100 * sum(have) / len(have):.1f}" if have else "-")
    mean_dev = sum(v["accuracy"] for v in dev.values()) / len(dev)
    return f"| {label} | " + " | ".join(cells) + f" | {100 * mean_dev:.1f} | {report['overall']['log_loss']:.3f} |"


def table(title: str, rows, runs: Path) -> str:
    head = "| system | " + " | ".join(c for c, _ in COLUMNS) + " | avg | log loss |"
    lines = [f"### {title}", "", head, "|" + "---|" * (len(COLUMNS) + 3)]
    lines += [row(label, find_report(runs, name)) for label, name in rows]
    return "\n".join(lines)


def main(argv=None):
    runs = Path((argv or sys.argv[1:] or ["runs/seed003"])[0])
    print(table("Table 1: 3-class models (accuracy on the broad classes)", TABLE1, runs), end="\n\n")
    print(table("Table 2: single models, ensemble, two-stage", TABLE2, runs), end="\n\n")
    print(table("Table 3: augmentation ablation (ResNet)", TABLE3, runs), end="\n\n")
    print("| run | best epoch (1-based) | epochs | train seconds |\n|---|---|---|---|")
    for name in sorted(p.name for p in runs.iterdir() if (p / "summary.json").is_file()):
        s = json.loads((runs / name / "summary.json").read_text())
        print(f"| {name} | {s['best_epoch'] + 1} | {s['epochs']} | {s['train_seconds']} |")


if __name__ == "__main__":
    main()
