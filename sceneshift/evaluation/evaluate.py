"""``sceneshift evaluate``: score a run (or an ensemble / two-stage system) on any split of any dataset."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..data.datasets.tau import parse_groups
from ..data.splits import DataSource, resolve_root
from .metrics import summarize
from ..networks.predictor import load_predictor
from .report import write_report


def open_split(cfg: dict, domain, split: str, data: str | Path | None = None, log=print):
    """``(DataSource, SplitData)`` of ``split`` of ``data`` (default: the run's own dataset)."""
    data_cfg = dict(cfg["data"])
    root = resolve_root(data or data_cfg["root"])
    if data and root != Path(data_cfg["root"]).resolve():      # another dataset: detect its layout afresh
        data_cfg.update(dataset="auto", dataset_options={}, exclude_devices=[])
    data_cfg["root"] = str(root)
    if data_cfg.get("features") and (root / "features.json").is_file():   # --data names another feature folder
        data_cfg["features"] = str(root)
    source = DataSource(data_cfg, domain, log=log)
    source.adapter.check(splits=(split,))
    return source, source.split(split)


def write_predictions(path: Path, files, devices, labels, proba: np.ndarray, classes):
    """One row per scored clip: its true and predicted scene and every class probability.

    What paired comparisons need (``sceneshift compare`` and benchmarks/paired_seeds.py resample
    recording segments), and what a user
    needs to look at the errors.
    """
    import csv
    import io
    from ..io import atomic_write_text
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n")
    w.writerow(["filename", "device", "scene_label", "predicted"] + [f"p_{c}" for c in classes])
    for f, d, lab, p in zip(files, devices, labels, proba):
        w.writerow([f, d, lab, classes[int(np.argmax(p))]] + [f"{v:.5f}" for v in p])
    atomic_write_text(path, buf.getvalue())


def evaluate(run: str | Path, data: str | Path | None = None, split: str = "evaluate", groups: str | None = None,
             out: str | Path | None = None, adapt: str | None = None, adapt_devices: str = "untrained",
             log=print) -> dict:
    predictor = load_predictor(run)
    cfg, domain = predictor.cfg, predictor.domain
    adapted_file = getattr(predictor, "adapted", None)
    if adapted_file:
        log(f"note: {run} was exported adapted ({adapted_file['method']}) to one device's recordings; "
            "its figures for the other devices do not describe how it is meant to be used")
    source, split_data = open_split(cfg, domain, split, data, log=log)
    version = source.adapter.benchmark_version
    if version and domain.benchmark_version and version != domain.benchmark_version:
        log(f"note: the run was trained on benchmark version {domain.benchmark_version}, "
            f"this dataset is version {version}")
    skipped = [list(s) for s in split_data.skipped]
    keep = np.flatnonzero(split_data.labels >= 0)
    for i in np.flatnonzero(split_data.labels < 0):
        c = split_data.clips[i]
        skipped.append([c.filename, f"label {c.scene!r} is not one of the run's classes" if c.scene
                        else "no label in this split"])
    if not len(keep):
        raise ValueError(f"{source.adapter.root}: split {split!r} has no clip with a label the run knows "
                         f"({', '.join(predictor.classes)})")
    batch_size = cfg["train"].get("eval_batch_size", 128)
    adapted = []
    if adapt:   # fitted per target device on this split's clips, scored without touching the cached arrays
        from ..adaptation import fit_adapters, per_device
        if getattr(predictor, "net", None) is None:
            raise ValueError("--adapt: adaptation is fitted to one network's front end; give a run folder, "
                             "not an ensemble, a two-stage system or an exported model file")
        train_data = DataSource(cfg["data"], domain, log=log).split(cfg["data"]["train_split"])
        adapters = fit_adapters(adapt, predictor.net, domain, train_data, split_data, adapt_devices, batch_size,
                                predictor.device, log=log)
        adapted = sorted(adapters)
        proba = per_device(predictor.net, split_data, keep, adapters,
                           lambda rows: predictor.probabilities(split_data.waves, batch_size, rows))
    else:
        proba = predictor.probabilities(split_data.waves, batch_size, None if len(keep) == len(split_data.clips)
                                        else keep)
    y = split_data.labels[keep]
    devices = [split_data.clips[i].device for i in keep]
    report = summarize(proba, y, devices, predictor.classes, parse_groups(groups) if groups else source.adapter.groups())
    from .complexity import predictor_cost
    report["complexity"] = predictor_cost(predictor)
    report["meta"] = {"run": str(Path(run)), "dataset": str(source.adapter.root), "split": split,
                      "benchmark_version": version, "adapt": adapt or "none", "adapted_devices": adapted,
                      "adapted_file": adapted_file,
                      "skipped": skipped}
    eval_dir = getattr(predictor, "eval_dir", None) or Path(run) / "eval"   # a system file's is beside it
    suffix = f"-{adapt}" + ("-all" if adapt_devices == "all" else "") if adapt else ""
    out = Path(out) if out else Path(eval_dir) / f"{Path(source.adapter.root).name}-{split}{suffix}"
    # predictions first: report.json is the evaluation's completion mark (an interrupted evaluation leaves
    # an old report, older than the weights, which `compare` and the benchmark scripts re-evaluate)
    write_predictions(out / "predictions.csv", [split_data.clips[i].filename for i in keep], devices,
                      [predictor.classes[k] for k in y], proba, predictor.classes)
    write_report(report, out)
    for name, reason in skipped[:20]:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    if len(skipped) > 20:
        print(f"... and {len(skipped) - 20} more skipped (listed in {out / 'report.json'})", file=sys.stderr)
    report["meta"]["out"] = str(out)
    return report
