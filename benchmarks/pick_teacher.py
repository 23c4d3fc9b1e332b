"""Choose a distillation teacher on the validation split: compare the candidates, name the best.

    python benchmarks/pick_teacher.py runs/beyond/teacher.yaml runs/mixed_teacher.yaml runs/seed003/ensemble.yaml \\
        [--out runs/teacher-choice]

A candidate is anything ``sceneshift compare`` takes (a run folder or an ensemble / two-stage
system file). Why a script: a teacher is part of the model, so it is chosen like a checkpoint, on
``validate`` only, by overall accuracy; the evaluation split is never read here. The comparison is
``sceneshift compare --split validate`` (reports reused when they still describe the weights,
evaluated otherwise; paired intervals against the first candidate in ``OUT/compare.md``). The last
line is the choice, ready for ``TEACHER=... bash benchmarks/beyond.sh OUT``.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def main(argv=None):
    from sceneshift.evaluation.compare import compare
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("candidates", nargs="+", type=Path, help="run folders or system files")
    ap.add_argument("--out", type=Path, default=Path("runs/teacher-choice"), help="where compare.md/.html go")
    args = ap.parse_args(argv)
    try:
        summary = compare(args.candidates, args.out, split="validate", log=lambda *a: None)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"pick_teacher.py: {e}")
    print("| teacher | validate accuracy | macro | log loss |\n|---|---|---|---|")
    for e in summary["runs"]:
        o = e["report"]["overall"]
        print(f"| {e['path']} | {100 * o['accuracy']:.1f} | {100 * o['macro_accuracy']:.1f} | {o['log_loss']:.3f} |")
    best = max(summary["runs"], key=lambda e: e["report"]["overall"]["accuracy"])
    print(f"\npaired intervals against the first candidate: {args.out / 'compare.md'}")
    print(f"best on validation accuracy: TEACHER={best['path']}")


if __name__ == "__main__":
    main()
