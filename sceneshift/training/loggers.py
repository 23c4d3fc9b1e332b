"""Loggers of a run: CSV always (``logs/metrics.csv``: resume merges it, tests and scripts read it),
TensorBoard and Weights & Biases when ``train.logger`` names them (optional extras).

Each extra logger gets the resolved recipe as hyperparameters and, through :func:`log_report`, the
evaluation report's per-device and per-group accuracies. W&B always runs offline in ``logs/wandb``
with one run id per run folder (``logs/wandb.id``), so a resumed run and its later reports
continue the same W&B run; ``wandb sync`` uploads it when the user wants.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml


EXTRAS = {"tensorboard": ("tensorboardX", "tensorboard"), "wandb": ("wandb",)}


def _missing_extra(name: str):
    """A RecipeError naming the extra to install when no package behind logger ``name`` is importable."""
    import importlib.util
    from ..registry import RecipeError
    if not any(importlib.util.find_spec(m) for m in EXTRAS[name]):
        return RecipeError(f"train.logger: {name} needs the {' or '.join(EXTRAS[name])} package; install it with "
                           f"pip install 'sceneshift[{name}]'")
    return None


def _wandb_settings():
    import wandb
    try:            # no console capture, system sampling, git or code snapshot: a quiet offline record
        return wandb.Settings(silent=True, console="off", x_disable_stats=True, x_disable_machine_info=True,
                              disable_git=True, save_code=False)
    except Exception:          # an older wandb without some of these settings
        return wandb.Settings(silent=True)


def wandb_run_id(run_dir: Path, resume: bool = True) -> str:
    """The run folder's W&B run id (``logs/wandb.id`` when ``resume``, else a new one): a resumed run and its
    reports continue it; a fresh start in a folder left by a failed one does not append to that one's history."""
    path = run_dir / "logs" / "wandb.id"
    if resume and path.is_file():
        return path.read_text().strip()
    import uuid
    return uuid.uuid4().hex[:12]


def make_loggers(names, run_dir: Path, cfg: dict, wandb_id: str | None = None) -> list:
    """The Lightning loggers of ``train.logger``: the CSV logger first (``logs/metrics.csv``), then the others."""
    from lightning.pytorch.loggers import CSVLogger
    out = [CSVLogger(run_dir, name="logs", version="")]
    for name in names:
        if name == "csv":
            continue
        missing = _missing_extra(name)
        if missing:
            raise missing
        if name == "tensorboard":
            from lightning.pytorch.loggers import TensorBoardLogger
            out.append(TensorBoardLogger(run_dir / "logs", name="tensorboard", version=""))
        elif name == "wandb":
            from lightning.pytorch.loggers import WandbLogger
            lg = WandbLogger(save_dir=str(run_dir / "logs"), offline=True, project=cfg["train"].get("wandb_project") or "sceneshift",
                             name=run_dir.name, id=wandb_id or wandb_run_id(run_dir), resume="allow",
                             settings=_wandb_settings())
            getattr(lg, "_wandb_init", {}).pop("anonymous", None)   # Lightning's anonymous=None: a deprecation warning
            out.append(lg)
    return out


def close_loggers(loggers, status: str = "success"):
    """Finish what Lightning leaves open: a W&B run stays active in the process until finished."""
    for lg in loggers:
        run = getattr(lg, "_experiment", None)
        if type(lg).__name__ == "WandbLogger" and run is not None and hasattr(run, "finish"):
            run.finish(exit_code=0 if status == "success" else 1)


def log_recipe(loggers, cfg: dict):
    """The resolved recipe as hyperparameters (TensorBoard's hparams and hparams.yaml, W&B's config)."""
    for lg in loggers[1:]:          # the CSV logger: config.yaml is the record
        lg.log_hyperparams(cfg)
        if type(lg).__name__ == "TensorBoardLogger":
            lg.experiment.add_text("recipe", "```\n" + yaml.safe_dump(cfg, sort_keys=False) + "```", 0)


def log_best(loggers, key: str, best: float | None, step: int):
    """The selected checkpoint's score: TensorBoard's ``hp_metric`` (its hparams view), W&B's summary."""
    if best is None:
        return
    for lg in loggers[1:]:
        if type(lg).__name__ == "TensorBoardLogger":
            lg.log_metrics({"hp_metric": best}, step=step)
            lg.finalize("success")
        elif type(lg).__name__ == "WandbLogger":
            lg.experiment.summary.update({key: best})


def report_metrics(report: dict) -> dict[str, float]:
    """An evaluation report as flat metrics: ``eval/<split>/acc/<device>``, ``.../group_acc/<group>``, overall ones."""
    split = (report.get("meta") or {}).get("split") or "eval"
    out = {}
    for key in ("accuracy", "macro_accuracy", "log_loss"):
        if (report.get("overall") or {}).get(key) is not None:
            out[f"eval/{split}/{key}"] = float(report["overall"][key])
    for device, r in (report.get("devices") or {}).items():
        out[f"eval/{split}/acc/{device}"] = float(r["accuracy"])
    for group, r in (report.get("groups") or {}).items():
        out[f"eval/{split}/group_acc/{group}"] = float(r["accuracy"])
    return out


def log_report(run_dir: str | Path, report: dict) -> dict[str, float]:
    """Add an evaluation report of ``run_dir`` (accuracy per device, per group, overall) to its extra loggers.

    ``train.logger`` of the run's config decides where: TensorBoard gets the values as scalars at
    the run's last step (a new event file in ``logs/tensorboard/``), W&B as history and summary of
    the same run id (a new offline segment in ``logs/wandb/``; ``wandb sync`` joins them). The
    report itself stays in ``eval/``; with only the CSV logger nothing is written. Returns the
    metrics logged.
    """
    run_dir = Path(run_dir)
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    names = [n for n in (cfg.get("train") or {}).get("logger") or [] if n != "csv"]
    metrics = report_metrics(report)
    if not names or not metrics:
        return {}
    if "wandb" in names and not (run_dir / "logs" / "wandb.id").is_file():
        names.remove("wandb")           # a new id would make each report its own W&B run
        print(f"warning: {run_dir}: no logs/wandb.id, so the report is not logged to W&B", file=sys.stderr)
        if not names:
            return {}
    summary = run_dir / "summary.json"
    step = int(json.loads(summary.read_text()).get("global_step") or 0) if summary.is_file() else 0
    loggers = make_loggers(names, run_dir, cfg)[1:]
    try:
        for lg in loggers:
            lg.log_metrics(metrics, step=step)
            if type(lg).__name__ == "WandbLogger":
                lg.experiment.summary.update(metrics)
            lg.finalize("success")
    finally:
        close_loggers(loggers)
    return metrics
