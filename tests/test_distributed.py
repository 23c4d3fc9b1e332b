"""Training on several processes (Lightning DDP; docs/distributed.md), on the CPU with the gloo backend.

The end-to-end test launches ``sceneshift train`` as a command, as a user would, with
``train.strategy=ddp train.devices=2``: Lightning starts the second process from the same
command line. A first run goes through uninterrupted, each process writing the rows of its
batches and its final parameters (test hooks, ``SCENESHIFT_DEBUG_DUMP``): the two processes'
batches of an epoch are disjoint and cover it, and both end with the parameters of the saved
checkpoint. A second run, with the second process slower at every step, is stopped by SIGTERM
to both processes (as SLURM sends it) after its first epoch: it must end with status 3 within a
timeout (a process that stopped alone would leave the other waiting in a collective operation),
leave no process behind, and ``--resume`` must complete it as one run - one set of checkpoints,
one metrics row per epoch, half the optimiser steps of one process, validation on the whole
validation split - with the metrics and weights of the uninterrupted run. The other tests check
the pieces quickly: the collective stop and non-finite decisions on two real processes, batch
sharding, per-process random streams, the cache lock, the recipe keys, the launch environment.
"""
from __future__ import annotations

import csv
import json
import math
import os
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


def _env(**extra) -> dict:
    """The environment of a command under test: this checkout's package first (not another installed copy)."""
    import sceneshift
    root = str(Path(sceneshift.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([root] + [p for p in [os.environ.get("PYTHONPATH")] if p]),
            **extra}


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _metrics(run: Path) -> list[dict]:
    return [{k: float(v) for k, v in r.items() if v and k in ("epoch", "step", "val/acc", "val/loss", "train/loss")}
            for r in csv.DictReader(open(run / "logs" / "metrics.csv"))]


@needs_gloo
def test_two_processes_stop_together_and_resume_as_one_run(tiny_benchmark, tmp_path):
    train = _command() + ["train", "baseline", "--data", str(tiny_benchmark), "train.epochs=2",
                          "train.progress=false", "train.batch_size=32"] + DDP
    out, dump = tmp_path / "ddp", tmp_path / "dump"
    hooks = {"SCENESHIFT_DEBUG_DUMP": str(dump)}     # each process: its batches' rows per epoch, its final parameters

    # Lightning's launcher starts the second process; it is slower at every step. SIGTERM to both (as
    # SLURM or a terminal's Ctrl-C reaches every process) while one waits for the other in a collective
    proc = subprocess.Popen(train + ["--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=_env(**hooks, SCENESHIFT_DEBUG_SLOW_RANK="1:0.4"))
    try:
        last = out / "checkpoints" / "last.ckpt"
        deadline = time.time() + 180
        while not last.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert last.exists(), proc.communicate()[1][-3000:]
        time.sleep(0.4)                                                     # into the next epoch's steps
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            pytest.fail("the interrupted two-process run hung")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 3, err[-3000:]
    assert f"sceneshift train --resume --out {out}" in err and "Traceback" not in err
    assert "terminated with code" not in err and "Received SIGTERM" not in err     # no process ended badly;
    assert _group_gone(proc.pid), "a training process outlived the interrupted run"  # not Lightning's handler
    assert torch.load(last, weights_only=True)["epoch"] == 0 and not (out / "model.pt").exists()

    # resumed with both processes started from outside, each with its rank in the environment (as srun or
    # torchrun start them): every process runs the whole command, the first one evaluates
    port = str(_free_port())
    resumed = [subprocess.Popen(_command() + ["train", "--resume", "--out", str(out), "--data", str(tiny_benchmark)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=_env(**hooks, MASTER_ADDR="127.0.0.1", MASTER_PORT=port, WORLD_SIZE="2",
                                         NODE_RANK="0", LOCAL_RANK=str(rank)))
               for rank in (0, 1)]
    try:
        said = [p.communicate(timeout=300) for p in resumed]
    finally:
        for p in resumed:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in resumed] == [0, 0], said[0][1][-3000:] + said[1][1][-3000:]
    assert said[0][0].count("report: ") == 1 and "report: " not in said[1][0]    # evaluated once, by the first

    # one run folder: one set of checkpoints, nothing a second process or Lightning's SLURM requeue would add
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "config.yaml", "domain.json", "eval", "logs",
                                                     "model.pt", "summary.json"]
    assert not [p for p in out.rglob("*") if ".tmp" in p.name or p.name.endswith(".lock")]
    rows = [r for r in csv.DictReader(open(out / "logs" / "metrics.csv")) if r.get("val/acc")]
    assert [int(r["epoch"]) for r in rows] == [0, 1]      # one row per epoch, the first kept across the resume

    summary = json.loads((out / "summary.json").read_text())
    batches = math.ceil(summary["train_clips"] / 32)                        # of one process's epoch
    steps = math.ceil(batches / 2)
    assert summary["processes"] == 2 and summary["epochs"] == 2
    assert summary["global_step"] == 2 * steps                              # each process: half the batches
    assert 0.0 <= summary["best_val_acc"] <= 1.0 and np.isfinite(float(rows[-1]["val/loss"]))

    # the batches of epoch 0 (interrupted run) and epoch 1 (resumed run): each process its share
    orders = []
    for epoch in (0, 1):
        shares = [json.loads((dump / f"rows-rank{r}-epoch{epoch}.json").read_text()) for r in (0, 1)]
        assert [len(s) for s in shares] == [steps, steps]                   # the same number of steps
        interleaved = [shares[r][i] for i in range(steps) for r in (0, 1)]
        epoch_rows = [row for b in interleaved[:batches] for row in b]
        assert sorted(epoch_rows) == list(range(summary["train_clips"]))   # disjoint, and the whole epoch
        assert interleaved[batches:] == interleaved[:2 * steps - batches]   # padded with the epoch's first batches
        orders.append(epoch_rows)
    assert orders[0] != orders[1]                                           # a new order every epoch
    # gradients were averaged: both processes end with the parameters of the saved checkpoint
    final = [torch.load(dump / f"params-rank{r}.pt", weights_only=True) for r in (0, 1)]
    saved = torch.load(last, weights_only=True)["state_dict"]
    assert final[1] and final[1].keys() == final[0].keys()
    assert all(torch.equal(final[1][k], final[0][k]) and torch.equal(final[1][k], saved[k]) for k in final[1])

    # each process validated the whole split: the selected score is one process's accuracy on all of it
    from sceneshift.evaluation.evaluate import evaluate
    report = evaluate(out, split="validate", log=lambda *a: None)
    assert report["overall"]["n"] == summary["val_clips"] == 240
    best = torch.load(out / "checkpoints" / "best.ckpt", weights_only=True)["epoch"]
    assert best == summary["best_epoch"]
    assert report["overall"]["accuracy"] == pytest.approx(summary["best_val_acc"], abs=1e-6)

    if os.environ.get("SCENESHIFT_SLOW_TESTS"):       # one more two-process run (~40 s on 2 busy cores)
        ref = tmp_path / "ref"
        done = subprocess.run(train + ["--out", str(ref)], capture_output=True, text=True, timeout=300, env=_env())
        assert done.returncode == 0, done.stderr[-3000:]
        assert _metrics(out) == _metrics(ref)           # the resumed run is the uninterrupted one
        a, b = torch.load(ref / "model.pt", weights_only=True), torch.load(out / "model.pt", weights_only=True)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


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


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="no SIGUSR1 on this platform")
def test_sigusr1_outside_training_ends_the_command_with_status_3(monkeypatch, capsys):
    """Not the default action (death with status 138): any command, e.g. while it evaluates or builds."""
    import sceneshift.cli as cli

    def busy(a):
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(5)
        raise AssertionError("SIGUSR1 did not stop the command")
    monkeypatch.setattr(cli, "cmd_list", busy)
    before = signal.getsignal(signal.SIGUSR1), signal.getsignal(signal.SIGTERM)
    assert main(["list", "recipes"]) == 3
    assert "interrupted. received SIGUSR1" in capsys.readouterr().err
    assert (signal.getsignal(signal.SIGUSR1), signal.getsignal(signal.SIGTERM)) == before


# ---- pieces ---------------------------------------------------------------------------------------

def _guard_in_process(rank: int, store: str, results):
    """One of two processes taking RunGuard's decisions with a real all-reduce (gloo)."""
    from types import SimpleNamespace
    from sceneshift.training.guards import NonFiniteLoss, RunGuard, StopRequested
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    trainer = SimpleNamespace(world_size=2, global_rank=rank, current_epoch=0, num_val_batches=[3],
                              strategy=SimpleNamespace(root_device=torch.device("cpu")), state=SimpleNamespace(fn="fit"))
    guard, said = RunGuard(0), []

    def step(loss, batch_idx):
        try:
            guard.on_train_batch_end(trainer, None, {"loss": torch.tensor(loss)}, None, batch_idx)
            said.append("go on")
        except NonFiniteLoss as e:
            said.append(str(e).split(":")[0])
        except StopRequested:
            said.append("stop")

    step(1.0, 0)                                            # all well
    step(float("nan") if rank == 1 else 1.0, 1)             # the second process's loss is NaN
    if rank == 1:
        guard.stop_signal = "SIGTERM"                       # a signal to the second process only ...
    else:
        time.sleep(0.3)                                     # ... while the first one is behind
    step(1.0, 2)
    guard.stop_signal = "SIGUSR1" if rank == 0 else None    # validation: a stop noted by the first one
    for batch_idx in (2, 0):                                # the last batch completes; the others stop
        try:
            guard.on_validation_batch_end(trainer, None, None, None, batch_idx)
            said.append("go on")
        except StopRequested:
            said.append("stop")
    dist.destroy_process_group()
    results.put((rank, said))


@needs_gloo
def test_stop_and_non_finite_decisions_are_taken_by_both_processes_at_once(tmp_path):
    import multiprocessing as mp
    import sceneshift.training.guards       # noqa: F401  (imported once, here: forked processes start at once)
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_guard_in_process, args=(r, str(tmp_path / "store"), results)) for r in (0, 1)]
    for p in procs:
        p.start()
    try:
        said = dict(results.get(timeout=120) for _ in procs)
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    assert said[0] == ["go on", "training loss of process 1 is not finite at epoch 0, batch 1", "stop", "go on", "stop"]
    assert said[1] == ["go on", "training loss is nan at epoch 0, batch 1", "stop", "go on", "stop"]


def test_signals_during_distributed_training_only_note_the_request_and_reach_the_launched_processes():
    """What the handlers of a run on several processes do (the stop itself: the test above)."""
    from types import SimpleNamespace
    from sceneshift.training.guards import RunGuard
    from sceneshift.training.run import _stop_signals
    forwarded = []
    launcher = SimpleNamespace(procs=["child"], kill=forwarded.append)
    trainer = SimpleNamespace(world_size=2, is_global_zero=True, _signal_connector=SimpleNamespace(),
                              strategy=SimpleNamespace(launcher=launcher))
    guard = RunGuard(0)
    names = [n for n in ("SIGTERM", "SIGUSR1", "SIGINT") if hasattr(signal, n)]
    before = {n: signal.getsignal(getattr(signal, n)) for n in names}
    with _stop_signals(trainer, guard):
        trainer._signal_connector.register_signal_handlers()          # Lightning's: not installed
        os.kill(os.getpid(), signal.SIGTERM)                           # before training starts: noted only
        assert guard.stop_signal == "SIGTERM" and forwarded == []
        guard.in_training = True
        os.kill(os.getpid(), signal.SIGUSR1)                           # the first request is the one named
        assert guard.stop_signal == "SIGTERM" and forwarded == [signal.SIGUSR1]
    assert {n: signal.getsignal(getattr(signal, n)) for n in names} == before
    guard = RunGuard(0)
    guard.in_training = True
    with _stop_signals(trainer, guard):
        os.kill(os.getpid(), signal.SIGINT)                            # Ctrl-C reaches the children itself
        assert guard.stop_signal == "SIGINT" and forwarded == [signal.SIGUSR1]
        with pytest.raises(KeyboardInterrupt):                         # Ctrl-C after a request: at once
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
    assert {n: signal.getsignal(getattr(signal, n)) for n in names} == before


def test_processes_draw_different_random_streams_and_the_first_one_the_single_process_ones():
    from types import SimpleNamespace
    from sceneshift.augment.signal import GaussianNoise
    from sceneshift.training.guards import RunGuard, epoch_seed
    assert epoch_seed(3, 2, 0) == (3 * 1_000_003 + 7_919 * 2) % 2 ** 32      # the seeds of a single-process run

    def draws(rank, epoch=1):
        module = torch.nn.Sequential(GaussianNoise())
        trainer = SimpleNamespace(current_epoch=epoch, global_rank=rank, train_dataloader=None)
        RunGuard(3).on_train_epoch_start(trainer, module)
        return torch.rand(4).tolist(), np.random.rand(), torch.rand(4, generator=module[0].generator).tolist()

    single = draws(0)
    torch.manual_seed(epoch_seed(3, 1))
    assert single[0] == torch.rand(4).tolist()
    assert draws(0) == single                                   # per epoch: resumption stays exact
    assert draws(1) == draws(1)
    other = draws(1)
    assert all(a != b for a, b in zip(single, other))           # dropout, numpy and each augmentation differ
    assert draws(1, epoch=2) != other


def test_threads_follow_the_cores_this_process_may_use(monkeypatch):
    from sceneshift.training import run
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 5, 6, 7}, raising=False)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    assert run._threads_per_process({}, 1, 1, False) == 6                  # not os.cpu_count()
    assert run._threads_per_process({}, 2, 2, False) == 3                  # the processes of a node share them
    assert run._threads_per_process({"threads": 4}, 2, 2, False) == 4
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "2")
    assert run._threads_per_process({}, 8, 4, True) == 2                   # srun gave each task its cores
    assert run._threads_per_process({}, 8, 4, False) == 1


def test_launch_environment_decides_the_first_process(monkeypatch):
    from sceneshift.training.run import launch_info
    for k in ("SLURM_NTASKS", "SLURM_PROCID", "SLURM_JOB_NAME", "RANK", "WORLD_SIZE", "LOCAL_RANK", "NODE_RANK",
              "GROUP_RANK", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(k, raising=False)
    assert launch_info() == (True, 1)
    monkeypatch.setenv("LOCAL_RANK", "1")                          # a child of Lightning's launcher
    assert launch_info() == (False, 1)
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("NODE_RANK", "1")
    assert launch_info() == (False, 1)
    monkeypatch.setenv("SLURM_NTASKS", "4")                        # srun: SLURM's rank wins
    monkeypatch.setenv("SLURM_PROCID", "0")
    monkeypatch.setenv("SLURM_JOB_NAME", "train")
    assert launch_info() == (True, 4)
    monkeypatch.setenv("SLURM_PROCID", "3")
    assert launch_info() == (False, 4)


def test_under_srun_only_the_first_task_evaluates_and_none_builds(tmp_path, monkeypatch, capsys):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("SLURM_NTASKS", "2")
    monkeypatch.setenv("SLURM_JOB_NAME", "train")
    monkeypatch.setenv("SLURM_PROCID", "1")
    finished = tmp_path / "finished"            # what --resume of a trained run looks at first
    finished.mkdir()
    (finished / "config.yaml").write_text("{}\n")
    (finished / "summary.json").write_text("{}\n")
    with pytest.raises(SystemExit) as e:        # the second task leaves at once; evaluating is the first one's
        main(["train", "--resume", "--out", str(finished)])
    assert e.value.code == 0 and sorted(p.name for p in finished.iterdir()) == ["config.yaml", "summary.json"]
    monkeypatch.setenv("SLURM_PROCID", "0")     # `run` would build the benchmark in every task: refused
    monkeypatch.setenv("SCENESHIFT_DATA", str(tmp_path / "data"))
    assert main(["run", "--out", str(tmp_path / "r")] + DDP) == 2
    assert "does not build the benchmark" in capsys.readouterr().err and not (tmp_path / "r").exists()



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
