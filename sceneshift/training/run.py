"""``sceneshift train``: one recipe -> one run folder.

The run folder holds everything about the run: ``config.yaml`` (the resolved, checked recipe),
``domain.json`` (classes, devices and device groups the run was trained with),
``checkpoints/`` (``last.ckpt`` to resume, ``best.ckpt`` chosen on the validation split only),
``logs/metrics.csv``, ``model.pt`` (the best weights of the network as a plain state dict,
loaded with ``weights_only=True``) and ``summary.json``. Evaluation writes ``eval/`` later
(``sceneshift run`` and ``sceneshift train`` do both).

This file knows no particular system: the system named by the recipe builds its network and
declares its own data loaders (``training/__init__.py``).

Interruption: Ctrl-C (SIGINT) and SIGTERM (what a cluster scheduler sends before pre-emption)
stop training at the next batch and raise :class:`TrainingInterrupted`, whose message is the
exact ``--resume`` command; the run continues from ``last.ckpt``, written atomically at the end of
every epoch, so the interrupted epoch is repeated from its start. Because every random stream is
set per epoch (``guards.py``), the resumed run reaches the same metrics as an uninterrupted one.
``kill -9`` leaves the same state: ``last.ckpt`` of the last complete epoch, or, before the first
one, a folder that ``--resume`` starts from epoch 0 and a new ``train --out`` may reuse. SIGUSR1
(what ``sbatch --signal=USR1@90`` sends before a time limit) is treated as SIGTERM; on SLURM,
Lightning's own requeue-on-SIGUSR1 (a mid-epoch ``hpc_ckpt_N.ckpt`` in the run folder) is switched
off, so there is one way to continue: ``--resume`` from ``last.ckpt`` (docs/distributed.md).

Several processes (``train.devices``, ``train.num_nodes``, ``train.strategy``; docs/distributed.md):
each process trains on its own share of every epoch's batches (``ShardedBatches``) and validates
on the whole validation split, so the selection metric is the one a single process computes;
only the first process (global rank 0) writes the run folder (config, checkpoints, logs, model,
summary) and returns from :func:`train`, the others end with status 0 once training ends.
During training, SIGTERM, SIGUSR1 and SIGINT only note the request (a second SIGINT interrupts at
once); every process stops at the same step (``guards.py``: an all-reduce of the flag after
every step), so no process waits for the others in a collective operation. Lightning's own
SIGTERM handler (which broadcasts from inside the handler) is not installed then.

Loggers (``loggers.py``): ``logs/metrics.csv`` always; TensorBoard and W&B when ``train.logger`` names them.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import io
import json
import os
import shutil
import signal
import time
from datetime import datetime
from pathlib import Path

import torch
import yaml

from ..data.domain import Domain
from ..data.splits import DataSource, shard_loader
from ..networks.predictor import load_run_config, load_weights
from ..io import atomic_torch_save, atomic_write_json, atomic_write_text
from ..runtime import software_versions
from . import SYSTEMS
from .guards import NonFiniteLoss, RunGuard
from .loggers import close_loggers, log_best, log_recipe, make_loggers, wandb_run_id
from .recipe import TrainSection, resolve, save_config


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by SIGINT or SIGTERM; the message says how to continue."""


def _has_progress(run_dir: Path) -> bool:
    """A folder with a checkpoint or a finished run: a new run must not overwrite it."""
    return (run_dir / "checkpoints" / "last.ckpt").is_file() or (run_dir / "summary.json").is_file()


def _clear_failed_start(run_dir: Path):
    """Remove what a start that failed before its first checkpoint left, so the folder can be reused."""
    for name in ("config.yaml", "domain.json"):
        (run_dir / name).unlink(missing_ok=True)
    for name in ("logs", "checkpoints"):
        shutil.rmtree(run_dir / name, ignore_errors=True)


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


def _quiet_lightning():
    """Keep the console to what a user needs: progress, metrics, where the files went."""
    import logging
    import warnings
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                 "lightning.pytorch.accelerators.cuda",
                 "lightning.pytorch.trainer.connectors.signal_connector"):     # "Received SIGTERM": ours says it
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in (".*LeafSpec.*", ".*smaller than the logging interval.*", ".*litlogger.*",
                    ".*exists and is not empty.*", ".*does not have many workers.*",
                    # distributed: every process validates the whole split, so val/* is the same everywhere
                    ".*sync_dist=True.*"):
        warnings.filterwarnings("ignore", message=pattern)


def _plugins():
    """Atomic checkpoints; on SLURM, Lightning's environment without its SIGUSR1 requeue (see the module doc)."""
    plugins = [_checkpoint_io()]
    from lightning.fabric.plugins.environments import SLURMEnvironment
    if SLURMEnvironment.detect():
        plugins.append(SLURMEnvironment(auto_requeue=False))
    return plugins


def _sigusr1_as_sigterm():
    """Make SIGUSR1 stop training as SIGTERM does; return the handler it replaces (None if not settable)."""
    if not hasattr(signal, "SIGUSR1"):
        return None
    try:
        return signal.signal(signal.SIGUSR1, lambda signum, frame: os.kill(os.getpid(), signal.SIGTERM))
    except ValueError:          # not the main thread
        return None


@contextlib.contextmanager
def _stop_signals(trainer, guard: RunGuard):
    """The signal handling of ``trainer.fit``.

    One process: as before the distributed runs - Lightning's SIGTERM handler, then the command's
    (``cli.py``: KeyboardInterrupt), and SIGUSR1 as SIGTERM. Several processes: SIGTERM, SIGUSR1 and
    SIGINT only set ``guard.stop_signal``; the processes agree on it after every step (``guards.py``)
    and all stop there. A handler that raised, or Lightning's, which broadcasts from inside the
    handler, would stop a process while another waits for it in a collective operation: a
    process blocked in one cannot run its handler. A second SIGINT raises KeyboardInterrupt at once
    (Lightning then ends the processes it started). The process that started the others (Lightning's
    launcher) forwards SIGTERM and SIGUSR1 to them while training runs; they keep these handlers
    until they exit.
    """
    if trainer.world_size <= 1:
        previous_usr1 = _sigusr1_as_sigterm()
        try:
            yield
        finally:
            if previous_usr1 is not None:
                signal.signal(signal.SIGUSR1, previous_usr1)
        return
    trainer._signal_connector.register_signal_handlers = lambda: None      # not Lightning's (see above)
    launcher = trainer.strategy.launcher

    def request_stop(signum, frame):
        if signum == signal.SIGINT and guard.stop_signal is not None:
            raise KeyboardInterrupt
        if guard.stop_signal is None:
            guard.stop_signal = signal.Signals(signum).name
        # the children of Lightning's launcher; SIGINT from a terminal reaches them itself. Only while
        # training runs: before, a child may not be in training yet (its handler would end it)
        if signum != signal.SIGINT and guard.in_training and getattr(launcher, "procs", None):
            launcher.kill(signum)

    names = ("SIGTERM", "SIGUSR1", "SIGINT")
    previous = {}
    try:
        for name in names:
            if hasattr(signal, name):
                previous[name] = signal.signal(getattr(signal, name), request_stop)
    except ValueError:          # not the main thread: leave signals alone
        pass
    try:
        yield
    finally:
        # a process other than the first leaves the command right after training (status 0): a signal the
        # launcher forwards meanwhile (it may still be saving the last checkpoint) must not end it with 3
        for name, handler in previous.items() if trainer.is_global_zero else ():
            if handler is not None:
                signal.signal(getattr(signal, name), handler)


def _cores() -> int:
    """CPU cores this process may run on (its affinity: a SLURM task's share), else the machine's."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _threads_per_process(t: dict, world_size: int, local_processes: int, slurm: bool) -> int:
    """Torch threads of one training process: ``train.threads``, else its share of the cores it may use."""
    if t.get("threads"):
        return int(t["threads"])
    cores = _cores()
    if world_size <= 1:
        return cores
    per_task = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm and per_task.isdigit() and int(per_task) > 0:    # srun gave each task its cores
        return max(1, min(cores, int(per_task)))
    return max(1, cores // max(1, local_processes))       # the processes of one node share its cores


def launch_info() -> tuple[bool, int]:
    """(first process, processes started by an external launcher) as the environment says, before any Trainer.

    Follows Lightning's choice of cluster environment: SLURM (``srun``: ``SLURM_PROCID`` of
    ``SLURM_NTASKS``), torchrun (``RANK`` of ``WORLD_SIZE``), else Lightning's own launcher, whose
    children have ``LOCAL_RANK`` (and ``NODE_RANK`` on other nodes) set. A command that is not part of
    a distributed launch is the first (and only) process: ``(True, 1)``.
    """
    from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment
    env = os.environ
    if SLURMEnvironment.detect():
        return int(env.get("SLURM_PROCID", 0)) == 0, int(env.get("SLURM_NTASKS", 1))
    if TorchElasticEnvironment.detect():
        return int(env.get("RANK", 0)) == 0, int(env.get("WORLD_SIZE", 1))
    node = int(env.get("NODE_RANK", env.get("GROUP_RANK", 0)))
    return int(env.get("LOCAL_RANK", 0)) == 0 and node == 0, 1


def _debug_callbacks() -> list:
    """Test hooks of the distributed tests, off unless their variables are set (never in normal use).

    ``SCENESHIFT_DEBUG_DUMP=DIR``: each process writes the rows of its training batches per epoch
    (``rows-rank<R>-epoch<E>.json``, at the epoch's end) and its parameters when training ends
    (``params-rank<R>.pt``). ``SCENESHIFT_DEBUG_SLOW_RANK=R:SECONDS``: process R sleeps that long
    before each training step (unbalanced processes).
    """
    dump, slow = os.environ.get("SCENESHIFT_DEBUG_DUMP"), os.environ.get("SCENESHIFT_DEBUG_SLOW_RANK")
    if not dump and not slow:
        return []
    from lightning.pytorch.callbacks import Callback
    slow_rank, delay = (int(slow.split(":")[0]), float(slow.split(":")[1])) if slow else (-1, 0.0)

    class DebugDump(Callback):
        rows: list = []

        def on_train_epoch_start(self, trainer, pl_module):
            self.rows = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.global_rank == slow_rank:
                time.sleep(delay)
            if dump and isinstance(batch, (tuple, list)) and isinstance(batch[-1], torch.Tensor):
                self.rows.append(batch[-1].tolist())       # WaveDataset items end with the row

        def on_train_epoch_end(self, trainer, pl_module):
            if dump:
                atomic_write_json(Path(dump) / f"rows-rank{trainer.global_rank}-epoch{trainer.current_epoch}.json",
                                  self.rows)

        def on_train_end(self, trainer, pl_module):
            if dump:
                atomic_torch_save({k: v.detach().cpu() for k, v in pl_module.named_parameters()},
                                  Path(dump) / f"params-rank{trainer.global_rank}.pt")
    return [DebugDump()]


def _weight_averaging(decay: float | None) -> list:
    """``train.ema_decay``: Lightning's weight averaging with an exponential moving average.

    The average is what validation scores, so the best checkpoint, ``model.pt`` and every later
    evaluation are the averaged network; ``last.ckpt`` also keeps the current weights and the
    average's state, so ``--resume`` continues both.
    """
    if not decay:
        return []
    from lightning.pytorch.callbacks import WeightAveraging
    from torch.optim.swa_utils import get_ema_multi_avg_fn
    return [WeightAveraging(multi_avg_fn=get_ema_multi_avg_fn(decay))]


def _build_trainer(L, t: dict, run_dir: Path, callbacks: list, loggers: list):
    """Lightning's Trainer for the recipe; a bad accelerator/devices/strategy/num_nodes is a one-line RecipeError."""
    from lightning.fabric.utilities.exceptions import MisconfigurationException
    from ..registry import RecipeError
    try:
        return L.Trainer(max_epochs=t["epochs"], default_root_dir=run_dir, callbacks=callbacks, logger=loggers,
                         plugins=_plugins(), accelerator=t["accelerator"], devices=t["devices"],
                         strategy=t["strategy"], num_nodes=t["num_nodes"],
                         use_distributed_sampler=False,      # sharded by ShardedBatches; validation unsharded
                         enable_progress_bar=bool(t.get("progress", True)), enable_model_summary=False,
                         limit_train_batches=t.get("limit_train_batches") or 1.0, num_sanity_val_steps=0,
                         precision=t.get("precision", "32-true"),
                         deterministic=False, log_every_n_steps=10)
    except (MisconfigurationException, ValueError) as e:
        msg = " ".join(str(e).split())
        raise RecipeError(f"train.accelerator={t['accelerator']!r}, devices={t['devices']!r}, "
                          f"strategy={t['strategy']!r}, num_nodes={t['num_nodes']}: {msg}") from None


def _shard_training_batches(system, trainer):
    """Give each process of a distributed run its share of the system's training batches."""
    if trainer.world_size <= 1:
        return
    make = system.train_dataloader

    # an instance attribute over the system's own hook: Lightning asks the module for its loader
    # through getattr, and the system's code stays that of a single process
    @functools.wraps(make)
    def train_dataloader():
        return shard_loader(make(), trainer.global_rank, trainer.world_size)
    system.train_dataloader = train_dataloader


def train(recipe=None, data=None, out=None, overrides=(), resume=False, log=print) -> Path:
    """Train ``recipe`` into the run folder ``out`` (or continue it with ``resume``); return the folder.

    In a distributed run only the first process returns; the others exit (status 0) when training ends.
    """
    import lightning as L
    _quiet_lightning()
    from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar

    if resume:
        if not out:
            raise FileNotFoundError("--resume needs --out pointing at an existing run folder")
        run_dir = Path(out)
        if overrides:
            raise ValueError("--resume continues a run with its saved config; overrides are not allowed")
        if not (run_dir / "config.yaml").is_file():
            raise FileNotFoundError(f"{run_dir}: no run to resume (no config.yaml); start it with `sceneshift train "
                                    f"RECIPE --out {run_dir}`")
        if (run_dir / "summary.json").is_file():      # killed after training, e.g. while evaluating
            if not launch_info()[0]:        # srun/torchrun: every task runs the command; the first evaluates
                raise SystemExit(0)
            log(f"{run_dir}: training is finished (summary.json); nothing to resume")
            return run_dir
        cfg, domain = load_run_config(run_dir)
        cfg["train"] = {**TrainSection().model_dump(mode="json"), **cfg["train"]}   # keys newer than the run
        if data:
            cfg["data"]["root"] = str(Path(data).resolve())
    else:
        if recipe is None:
            raise ValueError("train: a recipe is needed (a YAML file or a packaged recipe name)")
        cfg = resolve(recipe, data, overrides)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = Path(out) if out else Path("runs") / f"{cfg['name']}-{stamp}"
        domain = None
    d, t = cfg["data"], cfg["train"]
    ckpt = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor=t["monitor"],
                           mode="min" if t["monitor"].endswith("loss") else "max", save_top_k=1,
                           enable_version_counter=False)
    # every epoch, after `ckpt` so that it holds the best score so far (Lightning's own save_last writes
    # last.ckpt only in epochs that improved the monitor: a resume would repeat every epoch since)
    every_epoch = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="last", save_top_k=1,
                                  enable_version_counter=False)
    guard = RunGuard(t["seed"])
    callbacks = ([ckpt, every_epoch, guard] + _weight_averaging(t.get("ema_decay"))
                 + ([TQDMProgressBar(refresh_rate=10)] if t.get("progress", True) else []) + _debug_callbacks())
    # the Trainer first: it knows this process's rank before anything is written
    wandb_id = wandb_run_id(run_dir, resume) if "wandb" in t["logger"] else None
    loggers = make_loggers(t["logger"], run_dir, cfg, wandb_id)
    trainer = _build_trainer(L, t, run_dir, callbacks, loggers)
    rank_zero = bool(trainer.is_global_zero)
    if trainer.world_size > 1 and not out:
        from ..registry import RecipeError
        raise RecipeError(f"train.devices/num_nodes: a run on {trainer.world_size} processes needs --out (every "
                          f"process must write to the same run folder)")
    if not resume and rank_zero:       # the other processes start once these checks passed (or run beside them)
        if _has_progress(run_dir):
            raise FileExistsError(f"{run_dir} already holds a run; pass --resume to continue it or another --out")
        if run_dir.is_dir() and any(run_dir.iterdir()) and not (run_dir / "config.yaml").is_file():
            raise FileExistsError(f"{run_dir} is not empty and not a sceneshift run folder; give a new or empty --out")
    source = DataSource(d, log=log)
    source.adapter.check(splits=(d["train_split"], d["val_split"]))
    if domain is None:
        domain = Domain.from_dataset(source.adapter, source.clips(d["train_split"]), d.get("scene_map"))
    source.domain = domain
    from lightning.fabric.plugins.environments import SLURMEnvironment
    threads = _threads_per_process(t, trainer.world_size, trainer.num_devices,
                                   isinstance(getattr(trainer.strategy, "cluster_environment", None), SLURMEnvironment))
    set_omp = trainer.world_size > 1 and "OMP_NUM_THREADS" not in os.environ
    if set_omp:
        os.environ["OMP_NUM_THREADS"] = str(threads)     # for the processes Lightning starts (its own guess otherwise)
    torch.set_num_threads(threads)
    L.seed_everything(t["seed"], workers=True, verbose=False)

    started = time.time()
    system = SYSTEMS.build(cfg["system"], cfg["system_options"], where="system_options", cfg=cfg, domain=domain,
                           data=source)
    _shard_training_batches(system, trainer)
    if not resume and rank_zero:       # the recipe, the dataset and the system all passed their checks
        _clear_failed_start(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
        dataclasses.replace(domain, trained_devices=system.trained_devices()).save(run_dir / "domain.json")
    last = run_dir / "checkpoints" / "last.ckpt"
    if resume and not last.is_file():       # killed before its first epoch ended: start again
        log(f"{run_dir}: no checkpoint yet; training from epoch 0 with the saved recipe")
        resume = False
    metrics_csv, earlier_csv = run_dir / "logs" / "metrics.csv", run_dir / "logs" / "metrics.before-resume.csv"
    resumed_epoch = load_weights(last)["epoch"] if resume else None      # a damaged checkpoint: one line
    if rank_zero:
        if wandb_id:
            atomic_write_text(run_dir / "logs" / "wandb.id", wandb_id + "\n")
        if resume and metrics_csv.is_file():   # Lightning's CSV logger would delete it
            if earlier_csv.is_file():          # a resumed run that was killed before merging: merge first
                _merge_metrics(earlier_csv, metrics_csv, upto_epoch=resumed_epoch)
            os.replace(metrics_csv, earlier_csv)
        log_recipe(loggers, cfg)
    status = "failed"
    try:
        with _stop_signals(trainer, guard):
            trainer.fit(system, ckpt_path=str(last) if resume else None, weights_only=True)
        status = "success"
    except SystemExit:      # Lightning ends a KeyboardInterrupt with sys.exit(1), SIGTERM with SIGTERMException,
        signal.signal(signal.SIGINT, signal.default_int_handler)       # several processes with StopRequested;
        if not trainer.interrupted:                                    # Lightning left Ctrl-C ignored
            raise
    except NonFiniteLoss:   # several processes: all raise it at the same step; the first one reports it
        if rank_zero:
            raise
        status = "nonfinite"
    finally:
        if status != "success" or not rank_zero:
            close_loggers(loggers, "failed" if status != "success" else status)
        if rank_zero and earlier_csv.is_file():
            _merge_metrics(earlier_csv, metrics_csv, upto_epoch=resumed_epoch)
        if set_omp:
            os.environ.pop("OMP_NUM_THREADS", None)
        if trainer.world_size > 1:      # the evaluation after training runs in this process alone
            torch.set_num_threads(_threads_per_process(t, 1, 1, False))
    if not rank_zero:       # the first process writes the model and the summary, and evaluates
        raise SystemExit(0)
    if trainer.interrupted or guard.stop_signal:     # the latter: several processes, after their last common step
        done = load_weights(last)["epoch"] + 1 if last.is_file() else 0
        what = (f"training interrupted in epoch {trainer.current_epoch + 1} of {t['epochs']}" if trainer.interrupted
                else f"{guard.stop_signal} received as training ended")
        raise TrainingInterrupted(f"{what}; {done} complete epoch(s) saved in {last if done else run_dir}. "
                                  f"Continue with: sceneshift train --resume --out {run_dir}")

    try:
        return _finish(run_dir, cfg, domain, source, trainer, ckpt, last, loggers, started, log)
    finally:
        close_loggers(loggers)


def _finish(run_dir: Path, cfg: dict, domain, source, trainer, ckpt, last: Path, loggers, started: float, log) -> Path:
    """After training (first process only): the best network as model.pt, summary.json, the best score logged."""
    d, t = cfg["data"], cfg["train"]
    best = load_weights(ckpt.best_model_path or last)
    net_state = {k[len("net."):]: v for k, v in best["state_dict"].items() if k.startswith("net.")}
    atomic_torch_save(net_state, run_dir / "model.pt")
    monitor_key = "best_" + t["monitor"].replace("/", "_")
    train_data, val_data = source.split(d["train_split"]), source.split(d["val_split"])
    summary = {"recipe": cfg.get("name"), "best_epoch": int(best["epoch"]), "epochs": trainer.current_epoch,
               monitor_key: float(ckpt.best_model_score) if ckpt.best_model_score is not None else None,
               "train_clips": len(train_data.clips), "val_clips": len(val_data.clips),
               "benchmark_version": domain.benchmark_version,
               "skipped": [list(s) for s in train_data.skipped + val_data.skipped],
               "global_step": int(trainer.global_step), "processes": int(trainer.world_size),
               "train_seconds": round(time.time() - started, 1), "software": software_versions()}
    atomic_write_json(run_dir / "summary.json", summary)
    log_best(loggers, monitor_key, summary[monitor_key], trainer.global_step)
    log(f"best epoch {summary['best_epoch']} ({t['monitor']} = {summary[monitor_key]}); "
        f"weights in {run_dir / 'model.pt'}")
    return run_dir
