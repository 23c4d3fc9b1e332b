"""``sceneshift train``: one recipe -> one run folder.

The run folder holds everything about the run: ``config.yaml`` (the resolved recipe, with
the class and device lists), ``checkpoints/`` (``last.ckpt`` to resume, ``best.ckpt`` chosen
on the validation split only), ``logs/metrics.csv``, ``model.pt`` (the best weights as a
plain state dict, loaded with ``weights_only=True``), ``summary.json`` and, after the final
evaluation, ``eval/<dataset>-<split>/report.{json,md}`` with its figures.
"""
from __future__ import annotations

import csv
import io
import os
import time
from datetime import datetime
from pathlib import Path

import torch
import yaml

from .. import paths
from ..config import apply_overrides, load_recipe, save_config
from ..data.tau import check_dataset
from ..io import atomic_torch_save, atomic_write_json, atomic_write_text
from . import get_system
from .data import load_split, loader


def _checkpoint_io():
    from lightning.pytorch.plugins.io import TorchCheckpointIO

    class AtomicCheckpointIO(TorchCheckpointIO):
        """Write each checkpoint to a temporary file and rename it: a killed run never leaves a torn one."""

        def save_checkpoint(self, checkpoint, path, storage_options=None):
            atomic_torch_save(checkpoint, path)

    return AtomicCheckpointIO()


def _merge_metrics(earlier: Path, current: Path, upto_epoch: int):
    """Put the rows logged before a resume (up to the checkpointed epoch) back in front of the new ones."""
    with open(earlier, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("epoch") and int(r["epoch"]) <= upto_epoch]
    if current.is_file():
        with open(current, newline="") as fh:
            rows += list(csv.DictReader(fh))
    keys = sorted({k for r in rows for k in r})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(current, buf.getvalue())
    earlier.unlink()


def resolve(recipe, data=None, overrides=()) -> dict:
    cfg = apply_overrides(load_recipe(recipe), list(overrides))
    root = data or cfg["data"].get("root") or paths.default_benchmark()
    cfg["data"]["root"] = str(Path(root).expanduser().resolve())
    return cfg


def _quiet_lightning():
    """Keep the console to what a user needs: progress, metrics, where the files went."""
    import logging
    import warnings
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                 "lightning.pytorch.accelerators.cuda"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in (".*LeafSpec.*", ".*smaller than the logging interval.*", ".*litlogger.*",
                    ".*exists and is not empty.*", ".*does not have many workers.*"):
        warnings.filterwarnings("ignore", message=pattern)


def train(recipe=None, data=None, out=None, overrides=(), resume=False, evaluate_after=True, log=print) -> Path:
    import lightning as L
    _quiet_lightning()
    from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
    from lightning.pytorch.loggers import CSVLogger

    if resume:
        if not out or not (Path(out) / "config.yaml").is_file():
            raise FileNotFoundError(f"--resume needs --out pointing at an existing run folder (got {out})")
        run_dir = Path(out)
        cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
        if overrides:
            raise ValueError("--resume continues a run with its saved config; overrides are not allowed")
        if data:
            cfg["data"]["root"] = str(Path(data).resolve())
    else:
        if recipe is None:
            raise ValueError("train: a recipe is needed (a YAML file or a packaged recipe name)")
        cfg = resolve(recipe, data, overrides)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = Path(out) if out else Path("runs") / f"{cfg['name']}-{stamp}"
        if (run_dir / "config.yaml").exists():
            raise FileExistsError(f"{run_dir} already holds a run; pass --resume to continue it or another --out")
    root = check_dataset(cfg["data"]["root"], splits=(cfg["data"]["train_split"], cfg["data"]["val_split"]))
    t = cfg["train"]
    torch.set_num_threads(int(t.get("threads") or os.cpu_count() or 1))
    L.seed_everything(t["seed"], workers=True, verbose=False)

    started = time.time()
    train_data = load_split(root, cfg["data"]["train_split"], cfg["data"], log=log)
    if not resume:
        scene_map = cfg["data"].get("scene_map") or {}
        scenes = sorted({scene_map.get(c.scene, c.scene) for c in train_data.clips if c.scene})
        devices = sorted({c.device for c in train_data.clips}, key=lambda d: (len(d) > 1, d))
        cfg["labels"] = {"classes": scenes, "devices": devices}
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
    labels = cfg["labels"]
    train_data = load_split(root, cfg["data"]["train_split"], cfg["data"], labels["classes"], labels["devices"], log=log)
    val_data = load_split(root, cfg["data"]["val_split"], cfg["data"], labels["classes"], labels["devices"], log=log)
    system = get_system(cfg.get("system", "classifier"))
    module = system(cfg, labels)
    module.fit_augmentations(train_data)
    ckpt = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor=t["monitor"],
                           mode="min" if t["monitor"].endswith("loss") else "max", save_last=True, save_top_k=1,
                           enable_version_counter=False)
    callbacks = [ckpt] + ([TQDMProgressBar(refresh_rate=10)] if t.get("progress", True) else [])
    trainer = L.Trainer(max_epochs=t["epochs"], default_root_dir=run_dir, callbacks=callbacks,
                        logger=CSVLogger(run_dir, name="logs", version=""), plugins=[_checkpoint_io()],
                        enable_progress_bar=bool(t.get("progress", True)), enable_model_summary=False,
                        limit_train_batches=t.get("limit_train_batches") or 1.0, num_sanity_val_steps=0,
                        deterministic=False, log_every_n_steps=10)
    last = run_dir / "checkpoints" / "last.ckpt"
    if resume and not last.is_file():
        raise FileNotFoundError(f"{last}: no checkpoint to resume from")
    metrics_csv, earlier_csv = run_dir / "logs" / "metrics.csv", run_dir / "logs" / "metrics.before-resume.csv"
    resumed_epoch = torch.load(last, map_location="cpu", weights_only=True)["epoch"] if resume else None
    if resume and metrics_csv.is_file():   # Lightning's CSV logger would delete it
        os.replace(metrics_csv, earlier_csv)
    trainer.fit(module, train_dataloaders=system.train_loader(train_data, cfg),
                val_dataloaders=loader(val_data, t["eval_batch_size"], shuffle=False),
                ckpt_path=str(last) if resume else None, weights_only=True)
    if earlier_csv.is_file():
        _merge_metrics(earlier_csv, metrics_csv, upto_epoch=resumed_epoch)
    if trainer.interrupted:
        raise KeyboardInterrupt(f"training interrupted; continue with `sceneshift train --resume --out {run_dir}`")

    best = torch.load(ckpt.best_model_path or last, map_location="cpu", weights_only=True)
    net_state = {k[len("net."):]: v for k, v in best["state_dict"].items() if k.startswith("net.")}
    atomic_torch_save(net_state, run_dir / "model.pt")
    summary = {"recipe": cfg.get("name"), "best_epoch": int(best["epoch"]), "epochs": trainer.current_epoch,
               "best_" + t["monitor"].replace("/", "_"): float(ckpt.best_model_score) if ckpt.best_model_score is not None else None,
               "train_clips": len(train_data.clips), "val_clips": len(val_data.clips),
               "skipped": [list(s) for s in train_data.skipped + val_data.skipped],
               "train_seconds": round(time.time() - started, 1)}
    atomic_write_json(run_dir / "summary.json", summary)
    log(f"best epoch {summary['best_epoch']} ({t['monitor']} = {summary['best_' + t['monitor'].replace('/', '_')]}); "
        f"weights in {run_dir / 'model.pt'}")
    if evaluate_after:
        from ..evaluation.evaluate import evaluate
        from ..evaluation.report import device_table
        report = evaluate(run_dir, root, split=cfg["data"]["test_split"], log=log)
        log(device_table(report))
        log(f"report: {report['meta']['out']}/report.md")
    return run_dir
