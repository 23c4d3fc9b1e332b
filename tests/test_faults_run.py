"""Faults of a running job: full disk, interruption, kill -9, failed starts, non-finite numbers.

Each test asserts the outcome a user sees: the exit status of the documented policy (cli.py:
0 done, 1 done with skips, 2 bad usage/input/resources, 3 interrupted, 4 bug), one line naming
the file and the reason, no traceback, no temporary left behind, the previous file intact.
"""
from __future__ import annotations

import csv
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from sceneshift.cli import main
from sceneshift.io import DiskFullError, atomic_torch_save, atomic_write_json, atomic_write_text

TINY_SEED002 = ["train.epochs=3", "train.restart_epochs=1", "train.progress=false", "train.batch_size=32"]


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MB tmpfs where the test may mount one (root on Linux), else skip."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here; the injected-ENOSPC tests cover the same code")
    yield mnt
    subprocess.run(["umount", str(mnt)], capture_output=True)


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".tmp" in p.name]


def test_full_disk_keeps_previous_report_and_names_the_file(small_disk):
    target = small_disk / "report.json"
    atomic_write_json(target, {"accuracy": 0.5})
    with pytest.raises(DiskFullError, match=r"no space left on .*disk for report.json: .*MB free"):
        atomic_write_text(target, "x" * 3_000_000)
    assert json.loads(target.read_text()) == {"accuracy": 0.5}
    assert _temporaries(small_disk) == []


def test_full_disk_checkpoint_is_refused_before_writing(small_disk):
    last = small_disk / "last.ckpt"
    atomic_torch_save({"epoch": 1}, last)
    with pytest.raises(DiskFullError, match=r"last.ckpt: needed ~3.8 MB"):
        atomic_torch_save({"epoch": 2, "w": torch.zeros(1_000_000)}, last)
    assert torch.load(last, weights_only=True) == {"epoch": 1}
    assert _temporaries(small_disk) == []


def test_full_disk_torch_write_failure_is_reported_as_disk_full(small_disk, monkeypatch):
    """torch.save on a full disk raises RuntimeError, not OSError; it still reads 'no space left'."""
    import sceneshift.io as sio
    monkeypatch.setattr(sio, "check_space", lambda path, needed: None)     # skip the check: the write fails
    with pytest.raises(DiskFullError, match="no space left"):
        atomic_torch_save({"w": torch.zeros(1_000_000)}, small_disk / "model.pt")
    assert _temporaries(small_disk) == []


def test_full_disk_audio_cache_fails_cleanly(tiny_benchmark, tmp_path, monkeypatch):
    """The memory-mapped cache reserves its blocks first: ENOSPC is an error, not a bus error."""
    from sceneshift.data.cache import load_waveforms
    from sceneshift.data.datasets import open_dataset

    def no_space(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "posix_fallocate", no_space)
    ds = open_dataset(tiny_benchmark)
    clips = ds.clips("validate")[:20]
    cache = tmp_path / "cache"
    with pytest.raises(DiskFullError, match=r"no space left on .*cache for .*\.npy: needed ~1\.2 MB"):
        load_waveforms(ds.root, clips, [ds.audio_path(c) for c in clips], 16000, 32000, cache, workers=1,
                       log=lambda *a: None)
    assert list(cache.iterdir()) == []


def test_stale_temporary_of_a_killed_process_is_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    from sceneshift.io import HOST
    stale = tmp_path / f".report.{HOST}-{dead.pid}.tmp.json"
    stale.write_text("half")
    live = tmp_path / f".report.{HOST}-1.tmp.json"         # process 1 is alive: its temporary stays
    live.write_text("busy")
    other_host = tmp_path / f".report.elsewhere-{dead.pid}.tmp.json"   # another node's: never touched
    other_host.write_text("theirs")
    atomic_write_json(tmp_path / "report.json", {"ok": True})
    assert not stale.exists() and live.exists() and other_host.exists()
    assert json.loads((tmp_path / "report.json").read_text()) == {"ok": True}


def test_cli_disk_full_is_one_line_with_status_2(tiny_benchmark, tmp_path, monkeypatch, capsys):
    import sceneshift.io as sio

    def full(path, needed_bytes):
        raise DiskFullError(path, needed_bytes)
    monkeypatch.setattr(sio, "check_space", full)
    code = main(["train", "baseline", "--data", str(tiny_benchmark), "--out", str(tmp_path / "r"),
                 "train.epochs=1", "train.progress=false"])
    err = capsys.readouterr().err
    assert code == 2 and "no space left on" in err and "Traceback" not in err
    assert _temporaries(tmp_path) == []


def _metrics(run: Path) -> list[tuple]:
    rows = [r for r in csv.DictReader(open(run / "logs" / "metrics.csv")) if r.get("val/acc")]
    return [(int(r["epoch"]), float(r["val/acc"]), float(r["val/loss"])) for r in rows]


def _interrupted_and_resumed(recipe: str, args: list, tiny_benchmark, tmp_path, monkeypatch, capsys):
    """Train ``recipe`` straight through (ref) and with a SIGTERM in epoch 1 then --resume (cut); both
    folders, after checking that the resumed run logged the uninterrupted run's validation scores."""
    from sceneshift.training.guards import RunGuard
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    args = ["--data", str(tiny_benchmark)] + args
    assert main(["train", recipe, "--out", str(ref)] + args) == 0

    start = RunGuard.on_train_epoch_start

    def terminate_at_epoch_1(self, trainer, pl_module):
        start(self, trainer, pl_module)
        if trainer.current_epoch == 1 and not getattr(self, "_fired", False):
            self._fired = True
            os.kill(os.getpid(), signal.SIGTERM)          # what a scheduler sends before pre-emption
    monkeypatch.setattr(RunGuard, "on_train_epoch_start", terminate_at_epoch_1)
    capsys.readouterr()
    assert main(["train", recipe, "--out", str(cut)] + args) == 3
    err = capsys.readouterr().err
    assert f"sceneshift train --resume --out {cut}" in err and "Traceback" not in err
    assert torch.load(cut / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0
    assert not (cut / "model.pt").exists()
    monkeypatch.setattr(RunGuard, "on_train_epoch_start", start)
    assert main(["train", "--resume", "--out", str(cut), "--data", str(tiny_benchmark)]) == 0

    assert [m[0] for m in _metrics(cut)] == [0, 1, 2]
    np.testing.assert_allclose(np.array(_metrics(cut)), np.array(_metrics(ref)), atol=1e-6)
    a, b = torch.load(ref / "model.pt", weights_only=True), torch.load(cut / "model.pt", weights_only=True)
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)
    return ref, cut


def test_sigterm_saves_state_and_resume_reproduces_the_uninterrupted_run(tiny_benchmark, tmp_path, monkeypatch,
                                                                         capsys):
    """Seed 002's recipe (mixup, crops, shifts, SpecAugment, dropout): every random stream matters."""
    _interrupted_and_resumed("seed002", TINY_SEED002, tiny_benchmark, tmp_path, monkeypatch, capsys)


def test_weight_averaging_is_what_is_selected_and_saved_and_resume_continues_it(tiny_benchmark, tmp_path,
                                                                                monkeypatch, capsys):
    """train.ema_decay: model.pt is the exponential moving average of the weights (not the last step's),
    last.ckpt keeps both, and a resumed run continues the average exactly."""
    ref, _ = _interrupted_and_resumed("cp_resnet_dir", ["train.epochs=3", "train.progress=false", "train.batch_size=32",
                                                        "train.ema_decay=0.9"], tiny_benchmark, tmp_path, monkeypatch,
                                      capsys)
    last = torch.load(ref / "checkpoints" / "last.ckpt", weights_only=True)
    steps = last["global_step"]
    assert steps > 3 and int(last["averaging_state"]["n_averaged"]) == steps     # updated after every step
    average, current = last["state_dict"], last["current_model_state"]
    moved = [k for k in average if average[k].is_floating_point() and not torch.equal(average[k], current[k])]
    assert len(moved) > 10          # the average is not the current network
    # the selected checkpoint holds the average as its weights (and the raw ones beside): model.pt is the average
    model = torch.load(ref / "model.pt", weights_only=True)
    best = torch.load(ref / "checkpoints" / "best.ckpt", weights_only=True)
    assert all(torch.equal(model[k], best["state_dict"]["net." + k]) for k in model)
    assert any(not torch.equal(model[k], best["current_model_state"]["net." + k])
               for k in model if model[k].is_floating_point())


def test_kill_9_before_the_first_checkpoint_leaves_a_run_that_resume_completes(tiny_benchmark, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "sceneshift.cli", "train", "baseline", "--data", str(tiny_benchmark),
           "--out", str(out), "train.epochs=2", "train.progress=false", "train.batch_size=32"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not (out / "config.yaml").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (out / "config.yaml").exists()
    assert main(["train", "--resume", "--out", str(out), "--data", str(tiny_benchmark)]) == 0
    assert json.loads((out / "summary.json").read_text())["epochs"] == 2


def test_failed_start_leaves_nothing_that_blocks_a_retry(tiny_benchmark, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert main(["train", "baseline", "--data", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert not out.exists()                                 # the checks fail before the folder is made

    from sceneshift.training.classifier import ClassifierSystem
    step = ClassifierSystem.training_step

    def nan_step(self, batch, batch_idx):
        return step(self, batch, batch_idx) * float("nan")
    monkeypatch.setattr(ClassifierSystem, "training_step", nan_step)
    code = main(["train", "baseline", "--data", str(tiny_benchmark), "--out", str(out), "train.epochs=2",
                 "train.progress=false"])
    err = capsys.readouterr().err
    assert code == 2 and "training loss is nan at epoch 0, batch 0" in err and "Traceback" not in err
    assert not (out / "model.pt").exists()
    monkeypatch.setattr(ClassifierSystem, "training_step", step)
    assert main(["train", "baseline", "--data", str(tiny_benchmark), "--out", str(out), "train.epochs=1",
                 "train.progress=false"]) == 0                  # the same --out works again


def test_a_folder_that_is_not_a_run_is_never_cleared(tmp_path, tiny_benchmark, capsys):
    out = tmp_path / "project"
    (out / "logs").mkdir(parents=True)
    (out / "logs" / "mine.txt").write_text("keep")
    assert main(["train", "baseline", "--data", str(tiny_benchmark), "--out", str(out), "train.epochs=1"]) == 2
    assert "not a sceneshift run folder" in capsys.readouterr().err and (out / "logs" / "mine.txt").is_file()


def test_finished_run_is_not_trained_again_or_overwritten(tiny_run, capsys):
    """--resume of a run killed after training (e.g. during evaluation) only evaluates it."""
    model = (tiny_run / "model.pt").stat().st_mtime_ns
    assert main(["train", "--resume", "--out", str(tiny_run)]) in (0, 1)
    assert "nothing to resume" in capsys.readouterr().out and (tiny_run / "model.pt").stat().st_mtime_ns == model
    assert main(["train", "baseline", "--out", str(tiny_run)]) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_feature_folder_one_malformed_first_file_skips_only_itself(tmp_path):
    from sceneshift.data.datasets import Clip
    from sceneshift.data.features import feature_path, load_features
    clips = [Clip(f"audio/c{i}-a.wav", "park", "a") for i in range(5)]
    for i, c in enumerate(clips):
        p = feature_path(tmp_path, c.filename)
        p.parent.mkdir(parents=True, exist_ok=True)
        np.save(p, np.zeros((3, 7) if i == 0 else (4, 9), np.float32))
    bad_nan = np.zeros((4, 9), np.float32)
    bad_nan[0, 0] = np.nan
    np.save(feature_path(tmp_path, clips[4].filename), bad_nan)
    x, kept, skipped = load_features(tmp_path, clips, log=lambda *a: None)
    assert x.shape == (3, 1, 4, 9) and [c.filename for c in kept] == [c.filename for c in clips[1:4]]
    reasons = dict(skipped)
    assert "unlike the split's (1, 4, 9)" in reasons[clips[0].filename]
    assert "NaN or infinite" in reasons[clips[4].filename]


def test_feature_folder_declared_shape_wins(tmp_path):
    from sceneshift.data.datasets import Clip
    from sceneshift.data.features import feature_path, load_features
    clips = [Clip(f"audio/c{i}-a.wav", "park", "a") for i in range(3)]
    for i, c in enumerate(clips):
        p = feature_path(tmp_path, c.filename)
        p.parent.mkdir(parents=True, exist_ok=True)
        np.save(p, np.zeros((2, 3, 5) if i < 2 else (2, 3, 6), np.float32))
    (tmp_path / "features.json").write_text(json.dumps({"layout": "CFT", "shape": [2, 3, 6]}))
    x, kept, skipped = load_features(tmp_path, clips, log=lambda *a: None)
    assert x.shape == (1, 2, 3, 6) and len(skipped) == 2


def test_nan_metrics_are_written_as_null(tmp_path):
    atomic_write_json(tmp_path / "r.json", {"loss": float("nan"), "acc": [1.0, float("inf")]})
    assert json.loads((tmp_path / "r.json").read_text()) == {"loss": None, "acc": [1.0, None]}


def test_unexpected_error_is_status_4_with_traceback(monkeypatch, capsys):
    import sceneshift.cli as cli

    def boom(a):
        raise ZeroDivisionError("bug")
    monkeypatch.setattr(cli, "cmd_list", boom)
    assert main(["list", "recipes"]) == 4
    err = capsys.readouterr().err
    assert "Traceback" in err and "internal error" in err
