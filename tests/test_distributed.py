"""Training on several processes (Lightning DDP; docs/distributed.md), on the CPU with the gloo backend.

The end-to-end test launches ``sceneshift train`` as a command, as a user would, with
``train.strategy=ddp train.devices=2``: Lightning starts the second process from the same
command line. It is stopped by SIGTERM (what a scheduler sends) after its first epoch, resumed
with ``--resume``, and must come out as one run: one set of checkpoints, one metrics row per
epoch, half the optimiser steps of one process (each process trains on its share of the
batches), and validation on the whole validation split (the selected score is what one process
computes on it). The other tests check the pieces quickly: batch sharding, the cache lock, the
recipe keys.
"""
from __future__ import annotations

import csv
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from torch.utils.data import BatchSampler

from sceneshift.cli import main
from sceneshift.data.splits import EpochShuffle, ShardedBatches, shard_loader

GLOO = dist.is_available() and dist.is_gloo_available()
needs_gloo = pytest.mark.skipif(not GLOO, reason="torch.distributed with the gloo backend is not available here")
DDP = ["train.accelerator=cpu", "train.devices=2", "train.strategy=ddp"]


def _command() -> list[str]:
    """The installed ``sceneshift`` script (what a user types), else ``python -m sceneshift.cli``."""
    script = Path(sys.executable).with_name("sceneshift")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "sceneshift.cli"]


def _group_gone(pgid: int, within: float = 15.0) -> bool:
    deadline = time.time() + within
    while time.time() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


@needs_gloo
def test_two_processes_train_checkpoint_once_and_resume_after_sigterm(tiny_benchmark, tmp_path):
    out = tmp_path / "ddp"
    cmd = _command() + ["train", "baseline", "--data", str(tiny_benchmark), "--out", str(out), "train.epochs=2",
                        "train.progress=false", "train.batch_size=32"] + DDP
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        last = out / "checkpoints" / "last.ckpt"
        deadline = time.time() + 180
        while not last.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert last.exists(), proc.communicate()[1][-3000:]
        proc.send_signal(signal.SIGTERM)                  # to the launching process only, as `kill PID` would
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 3, err[-3000:]
    assert f"sceneshift train --resume --out {out}" in err and "Traceback" not in err
    assert _group_gone(proc.pid), "a training process outlived the interrupted run"
    assert torch.load(last, weights_only=True)["epoch"] == 0 and not (out / "model.pt").exists()

    done = subprocess.run(_command() + ["train", "--resume", "--out", str(out), "--data", str(tiny_benchmark)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("report: ") == 1           # evaluated once, by the first process

    # one run folder: one set of checkpoints, nothing a second process or Lightning's SLURM requeue would add
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "config.yaml", "domain.json", "eval", "logs",
                                                     "model.pt", "summary.json"]
    assert not [p for p in out.rglob("*") if ".tmp" in p.name or p.name.endswith(".lock")]
    rows = [r for r in csv.DictReader(open(out / "logs" / "metrics.csv")) if r.get("val/acc")]
    assert [int(r["epoch"]) for r in rows] == [0, 1]      # one row per epoch, the first kept across the resume

    summary = json.loads((out / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["epochs"] == 2
    single_process_steps = math.ceil(summary["train_clips"] / 32)
    assert summary["global_step"] == 2 * math.ceil(single_process_steps / 2)      # each process: half the batches
    assert 0.0 <= summary["best_val_acc"] <= 1.0 and np.isfinite(float(rows[-1]["val/loss"]))

    # each process validated the whole split: the selected score is one process's accuracy on all of it
    from sceneshift.evaluation.evaluate import evaluate
    report = evaluate(out, split="validate", log=lambda *a: None)
    assert report["overall"]["n"] == summary["val_clips"] == 240
    best = torch.load(out / "checkpoints" / "best.ckpt", weights_only=True)["epoch"]
    assert best == summary["best_epoch"]
    assert report["overall"]["accuracy"] == pytest.approx(summary["best_val_acc"], abs=1e-6)


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="no SIGUSR1 on this platform")
def test_sigusr1_stops_training_like_sigterm(tiny_benchmark, tmp_path, monkeypatch, capsys):
    """What ``sbatch --signal=USR1@90`` sends before a time limit: a clean stop with status 3, not a kill."""
    from sceneshift.training.guards import RunGuard
    start = RunGuard.on_train_epoch_start

    def usr1_at_epoch_1(self, trainer, pl_module):
        start(self, trainer, pl_module)
        if trainer.current_epoch == 1:
            os.kill(os.getpid(), signal.SIGUSR1)
    monkeypatch.setattr(RunGuard, "on_train_epoch_start", usr1_at_epoch_1)
    before = signal.getsignal(signal.SIGUSR1)
    out = tmp_path / "run"
    assert main(["train", "baseline", "--data", str(tiny_benchmark), "--out", str(out), "train.epochs=2",
                 "train.progress=false", "train.batch_size=32"]) == 3
    err = capsys.readouterr().err
    assert f"sceneshift train --resume --out {out}" in err and "Traceback" not in err
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0
    assert signal.getsignal(signal.SIGUSR1) is before
    assert not list(out.glob("hpc_ckpt_*"))


# ---- pieces ---------------------------------------------------------------------------------------

def _single(batches) -> list[list[int]]:
    return [list(b) for b in batches]


@pytest.mark.parametrize("n, batch, replicas", [(10, 3, 2), (10, 3, 3), (12, 4, 3), (5, 8, 2)])
def test_sharded_batches_split_the_single_process_epoch(n, batch, replicas):
    single = BatchSampler(EpochShuffle(n, seed=7), batch, drop_last=False)
    single.sampler.set_epoch(3)
    expected = _single(single)
    shards = [ShardedBatches(BatchSampler(EpochShuffle(n, seed=7), batch, drop_last=False), r, replicas)
              for r in range(replicas)]
    for s in shards:
        s.set_epoch(3)
    got = [_single(s) for s in shards]
    steps = math.ceil(len(expected) / replicas)
    assert all(len(g) == len(s) == steps for g, s in zip(got, shards))        # DDP: the same step count
    interleaved = [got[r][i] for i in range(steps) for r in range(replicas)]
    assert interleaved[:len(expected)] == expected                          # rounds of consecutive batches
    assert interleaved[len(expected):] == expected[:steps * replicas - len(expected)]   # padding: the first ones


def test_sharded_batches_draw_the_order_after_set_epoch():
    """Lightning may create the iterator before it calls set_epoch (it does when resuming)."""
    inner = BatchSampler(EpochShuffle(20, seed=1), 4, drop_last=False)
    shard = ShardedBatches(inner, 0, 2)
    it = iter(shard)
    shard.set_epoch(5)
    inner.sampler.set_epoch(5)
    assert _single(it) == _single(inner)[0::2]


def test_sharded_batches_take_a_systems_own_batch_sampler():
    """seed 000's source/target batches: a batch sampler Lightning's distributed sampler cannot split."""
    from sceneshift.training.disentangle import DomainBatches
    make = lambda: DomainBatches(np.arange(0, 30), np.arange(30, 50), batch_size=8, n_batches=5, seed=2)
    single = make()
    single.set_epoch(4)
    shards = [ShardedBatches(make(), r, 2) for r in range(2)]
    for s in shards:
        s.set_epoch(4)
    expected = _single(single)
    assert _single(shards[0]) == expected[0::2] and _single(shards[1]) == expected[1::2] + expected[:1]


def test_shard_loader_keeps_the_loader_and_shares_its_batches():
    from sceneshift.data.splits import SplitData, loader
    data = SplitData(np.zeros((9, 4), np.float16), [None] * 9, np.arange(9) % 3, np.zeros(9, np.int64), [])
    dl = loader(data, 2, shuffle=True, seed=0)
    assert shard_loader(dl, 0, 1) is dl
    shards = [shard_loader(loader(data, 2, shuffle=True, seed=0), r, 2) for r in range(2)]
    assert [len(s) for s in shards] == [3, 3]                               # 5 batches: 3 steps each
    rows = [torch.cat([b[3] for b in s]).tolist() for s in shards]
    assert set(rows[0]) | set(rows[1]) == set(range(9)) and len(rows[0]) + len(rows[1]) == 9 + 2   # 1 batch padded


def _load_in_process(args):
    root, clips, files, cache, barrier = args
    from sceneshift.data.cache import load_waveforms
    said = []
    barrier.wait()
    waves, kept, _ = load_waveforms(root, clips, files, 16000, 16000, cache, workers=1, log=said.append)
    return [s.split(" ")[0] for s in said], float(np.abs(np.asarray(waves, np.float32)).sum()), len(kept)


def test_processes_starting_together_decode_a_split_once(tiny_benchmark, tmp_path):
    import multiprocessing as mp
    from sceneshift.data.datasets import open_dataset
    ds = open_dataset(tiny_benchmark)
    clips = ds.clips("validate")[:60]
    files = [ds.audio_path(c) for c in clips]
    ctx = mp.get_context("spawn")
    barrier = ctx.Manager().Barrier(3)
    with ctx.Pool(3) as pool:
        results = pool.map(_load_in_process, [(ds.root, clips, files, tmp_path / "cache", barrier)] * 3)
    assert sum(words.count("decoding") for words, _, _ in results) == 1
    assert len({(total, n) for _, total, n in results}) == 1
    assert sorted(p.suffix for p in (tmp_path / "cache").iterdir()) == [".json", ".npy"]    # no lock file left


@pytest.mark.parametrize("override, message", [
    ("train.devices=0", "train.devices: value error, must be a device count >= 1, -1 or 'auto'"),
    ("train.devices=[1,1]", "train.devices: value error, a list of devices must name distinct device indices"),
    ("train.strategy=ddp_spawn", "train.strategy: value error, ddp_spawn is not supported: use ddp"),
    ("train.strategy=fsdp", "train.strategy: input should be 'auto', 'ddp' or 'ddp_find_unused_parameters_true'"),
    ("train.accelerator=tpu", "train.accelerator: input should be 'auto', 'cpu', 'gpu', 'cuda' or 'mps'"),
    ("train.num_nodes=0", "train.num_nodes: input should be greater than or equal to 1"),
])
def test_distributed_keys_are_checked(override, message):
    import re
    from sceneshift.registry import RecipeError
    from sceneshift.training.recipe import load_recipe
    with pytest.raises(RecipeError, match=re.escape(message)):
        load_recipe("baseline", [override])


def test_an_unusable_accelerator_is_one_line_naming_the_keys(tiny_benchmark, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = tmp_path / "run"
    assert main(["train", "baseline", "--data", str(tiny_benchmark), "--out", str(out), "train.accelerator=gpu"]) == 2
    err = capsys.readouterr().err
    assert "sceneshift: error: train.accelerator='gpu', devices=1, strategy='auto', num_nodes=1:" in err
    assert "Traceback" not in err and not out.exists()


@needs_gloo
def test_several_processes_need_an_explicit_run_folder(tiny_benchmark, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "baseline", "--data", str(tiny_benchmark)] + DDP) == 2
    assert "a run on 2 processes needs --out" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
