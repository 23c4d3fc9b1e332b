"""``sceneshift evaluate``: score a run on any split of any TAU-layout dataset."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .. import paths
from ..data.tau import check_dataset, device_groups
from .metrics import summarize
from .predictor import load_predictor
from .report import device_table, write_report


def evaluate(run: str | Path, data: str | Path | None = None, split: str = "evaluate", groups: str | None = None,
             out: str | Path | None = None, adapt: str | None = None, log=print) -> dict:
    from ..training.data import load_split
    predictor = load_predictor(run)
    cfg = predictor.cfg
    root = Path(data or cfg["data"].get("root") or paths.default_benchmark())
    check_dataset(root, splits=(split,))
    data_cfg = dict(cfg["data"])
    if data_cfg.get("features") and (root / "features.json").is_file():   # --data names another feature folder
        data_cfg["features"] = str(root)
    split_data = load_split(root, split, data_cfg, classes=predictor.classes, devices=predictor.labels.get("devices"),
                            log=log)
    skipped = [list(s) for s in split_data.skipped]
    keep = np.flatnonzero(split_data.labels >= 0)
    for i in np.flatnonzero(split_data.labels < 0):
        c = split_data.clips[i]
        skipped.append([c.filename, f"label {c.scene!r} is not one of the run's classes" if c.scene
                        else "no label in this split"])
    if not len(keep):
        raise ValueError(f"{root}: split {split!r} has no clip with a label the run knows ({', '.join(predictor.classes)})")
    batch_size = cfg["train"].get("eval_batch_size", 128)
    if adapt:   # fitted per target device on this split's clips, scored without touching the cached arrays
        from ..adaptation import apply_adaptation
        proba = apply_adaptation(adapt, predictor, split_data, keep, batch_size=batch_size, log=log)
    else:
        waves = split_data.waves if len(keep) == len(split_data.clips) else split_data.waves[keep]
        proba = predictor.probabilities(waves, batch_size=batch_size)
    y = split_data.labels[keep]
    devices = [split_data.clips[i].device for i in keep]
    report = summarize(proba, y, devices, predictor.classes, device_groups(root, groups))
    report["meta"] = {"run": str(Path(run)), "dataset": str(root), "split": split, "adapt": adapt or "none",
                      "skipped": skipped}
    eval_dir = getattr(predictor, "eval_dir", None) or Path(run) / "eval"   # a system file's is beside it
    out = Path(out) if out else Path(eval_dir) / f"{root.name}-{split}{'-' + adapt if adapt else ''}"
    write_report(report, out)
    for name, reason in skipped[:20]:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    if len(skipped) > 20:
        print(f"... and {len(skipped) - 20} more skipped (listed in {out / 'report.json'})", file=sys.stderr)
    report["meta"]["out"] = str(out)
    return report
