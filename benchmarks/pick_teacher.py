"""Choose a distillation teacher on the validation split: score each candidate, print them, name the best.

    python benchmarks/pick_teacher.py runs/beyond/teacher.yaml runs/mixed_teacher.yaml runs/seed003/ensemble.yaml

A candidate is anything ``sceneshift evaluate`` scores (a run folder or an ensemble / two-stage
system file). Why a script: a teacher is part of the model, so it is chosen like a checkpoint, on
``validate`` only, by overall accuracy (log loss printed beside it); the evaluation split is never
read here. Reports already written (``NAME-eval/<dataset>-validate/report.json``) are reused.
The last line is the choice, ready for ``TEACHER=... bash benchmarks/beyond.sh OUT``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def validation_report(candidate: Path) -> dict:
    from sceneshift.evaluation.evaluate import evaluate
    folder = candidate / "eval" if candidate.is_dir() else candidate.parent / f"{candidate.stem}-eval"
    found = sorted(folder.glob("*-validate/report.json"))
    if found:
        return json.loads(found[0].read_text())
    return evaluate(candidate, split="validate", log=lambda *a: None)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("candidates", nargs="+", type=Path, help="run folders or system files")
    args = ap.parse_args(argv)
    scored = []
    print("| teacher | members | validate accuracy | macro | log loss |\n|---|---|---|---|---|")
    for c in args.candidates:
        if not c.exists():
            raise SystemExit(f"pick_teacher.py: {c} is neither a run folder nor a system file")
        overall = validation_report(c)["overall"]
        members = "1"
        if c.is_file():
            import yaml
            spec = yaml.safe_load(c.read_text()) or {}
            members = str(len(spec["ensemble"])) if isinstance(spec.get("ensemble"), list) else "system"
        scored.append((overall["accuracy"], c))
        print(f"| {c} | {members} | {100 * overall['accuracy']:.1f} | {100 * overall['macro_accuracy']:.1f} "
              f"| {overall['log_loss']:.3f} |")
    best = max(scored, key=lambda s: s[0])[1]
    print(f"\nbest on validation accuracy: TEACHER={best}")


if __name__ == "__main__":
    main()
