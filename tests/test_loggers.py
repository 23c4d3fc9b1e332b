"""Loggers besides logs/metrics.csv: TensorBoard and Weights & Biases (offline), selected by ``train.logger``.

A tiny one-epoch run with both, then its evaluation report logged to them; read back from the
files they wrote (TensorBoard's event records, W&B's offline ``.wandb`` log) without their
readers: the resolved recipe as hyperparameters, the training curve and a per-device accuracy.
"""
from __future__ import annotations

import csv
import json
import struct
from pathlib import Path

import pytest

from sceneshift.cli import main

TINY = ["train.epochs=1", "train.progress=false", "train.batch_size=32", "train.lr=0.0007"]


def tensorboard_events(folder: Path) -> list:
    """Every event of the TFRecord files in ``folder`` (length, crc, payload, crc per record)."""
    try:
        from tensorboardX.proto.event_pb2 import Event
    except ImportError:
        from tensorboard.compat.proto.event_pb2 import Event
    events = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data, pos = path.read_bytes(), 0
        while pos + 12 <= len(data):
            (n,) = struct.unpack("<Q", data[pos:pos + 8])
            events.append(Event.FromString(data[pos + 12:pos + 12 + n]))
            pos += 12 + n + 4
    return events


def tensorboard_hparams(events) -> dict:
    try:
        from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData
    except ImportError:
        from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
    for ev in events:
        for v in ev.summary.value:
            if v.tag == "_hparams_/session_start_info":
                info = HParamsPluginData.FromString(v.metadata.plugin_data.content).session_start_info
                return {k: getattr(val, val.WhichOneof("kind")) for k, val in info.hparams.items()}
    return {}


def wandb_records(path: Path) -> list:
    """The records of a W&B offline ``.wandb`` file: LevelDB-style log blocks of protobuf ``Record``s."""
    from wandb.proto.wandb_internal_pb2 import Record
    data = path.read_bytes()
    assert data[:4] == b":W&B", data[:8]
    pos, block, records, buf = 7, 32768, [], b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:            # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        buf += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):                     # a whole record, or the last piece of one
            records.append(Record.FromString(buf))
            buf = b""
        elif kind == 0 and not length:
            buf = b""
    return records


def finished_wandb_records(path: Path, timeout: float = 120.0) -> list:
    """The records of a finished segment. W&B's service process writes the file and may still be
    flushing it when ``run.finish()`` has returned (seen once on a loaded machine: the report's
    summary missing), so wait for the segment's ``exit`` record before reading it."""
    import time
    deadline = time.monotonic() + timeout
    while True:
        try:
            records = wandb_records(path)
        except Exception:                       # a record cut off mid-write
            if time.monotonic() > deadline:
                raise
            records = []
        if any(r.WhichOneof("record_type") == "exit" for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.5)


def wandb_values(records, kind: str) -> dict:
    """``config``, ``history`` or ``summary`` records as one {key: value} (the last value of each key)."""
    out = {}
    for r in records:
        if r.WhichOneof("record_type") != kind:
            continue
        body = getattr(r, kind)
        for item in (body.update if kind in ("config", "summary") else body.item):
            key = item.key or "/".join(item.nested_key)
            out[key] = json.loads(item.value_json)
    return out


def _has(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is not None


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    """No network, no login, nothing in the home folder: W&B's own folders go to the test's tmp folder."""
    pytest.importorskip("wandb")
    for var, sub in (("WANDB_CONFIG_DIR", "config"), ("WANDB_CACHE_DIR", "cache"), ("WANDB_DATA_DIR", "data")):
        monkeypatch.setenv(var, str(tmp_path / "wandb-home" / sub))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


def test_tensorboard_and_wandb_get_the_recipe_the_curve_and_the_device_report(tiny_benchmark, tmp_path,
                                                                              offline_wandb):
    if not (_has("tensorboardX") or _has("tensorboard")):
        pytest.skip("neither tensorboardX nor tensorboard is installed (pip install 'sceneshift[tensorboard]')")
    from sceneshift.cli import _train_evaluate          # what `sceneshift train` runs: train, evaluate, log the report
    from sceneshift.training.loggers import report_metrics
    run, report = _train_evaluate("baseline", data=tiny_benchmark, out=tmp_path / "run",
                                  overrides=TINY + ["train.logger=[tensorboard,wandb]"], log=lambda *a: None)
    rows = list(csv.DictReader(open(run / "logs" / "metrics.csv")))         # the CSV log is still written
    assert any(r.get("val/acc") for r in rows)
    logged = report_metrics(report)
    assert logged["eval/evaluate/acc/a"] == pytest.approx(report["devices"]["a"]["accuracy"])
    assert logged["eval/evaluate/group_acc/unseen"] == pytest.approx(report["groups"]["unseen"]["accuracy"])

    # TensorBoard: hparams (flattened recipe), the validation curve, the report's per-device accuracy
    tb = run / "logs" / "tensorboard"
    events = tensorboard_events(tb)
    scalars = {v.tag: v.simple_value for ev in events for v in ev.summary.value if v.HasField("simple_value")}
    assert "val/acc" in scalars and "hp_metric" in scalars
    assert scalars["eval/evaluate/acc/a"] == pytest.approx(report["devices"]["a"]["accuracy"], abs=1e-6)
    assert scalars["eval/evaluate/group_acc/seen"] == pytest.approx(report["groups"]["seen"]["accuracy"], abs=1e-6)
    hp = tensorboard_hparams(events)
    assert hp["train/lr"] == pytest.approx(0.0007) and hp["model/name"] == "kaggle_cnn"
    import yaml
    assert yaml.safe_load((tb / "hparams.yaml").read_text())["train"]["lr"] == pytest.approx(0.0007)

    # W&B offline: one run id for training and the report (two offline segments), no network
    segments = sorted((run / "logs" / "wandb").glob("offline-run-*/run-*.wandb"))
    run_id = (run / "logs" / "wandb.id").read_text().strip()
    assert len(segments) == 2 and all(p.name == f"run-{run_id}.wandb" for p in segments)
    trained, reported = finished_wandb_records(segments[0]), finished_wandb_records(segments[1])
    config = wandb_values(trained, "config")
    assert config["train"]["lr"] == pytest.approx(0.0007) and config["model"]["name"] == "kaggle_cnn"
    assert "val/acc" in wandb_values(trained, "history")
    summary = wandb_values(reported, "summary")
    assert summary["eval/evaluate/acc/a"] == pytest.approx(report["devices"]["a"]["accuracy"])
    assert summary["eval/evaluate/group_acc/unseen"] == pytest.approx(report["groups"]["unseen"]["accuracy"])


def test_a_missing_logger_package_names_the_extra(tiny_benchmark, tmp_path, monkeypatch, capsys):
    import importlib.util
    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else find(name, *a))
    out = tmp_path / "run"
    assert main(["train", "baseline", "--data", str(tiny_benchmark), "--out", str(out), "train.logger=wandb"]) == 2
    err = capsys.readouterr().err
    assert "train.logger: wandb needs the wandb package" in err and "pip install 'sceneshift[wandb]'" in err
    assert "Traceback" not in err and not out.exists()


@pytest.mark.parametrize("value, message", [
    ("mlflow", "train.logger.0: input should be 'csv', 'tensorboard' or 'wandb'"),
    ("[]", "train.logger: value error, expected csv, tensorboard, wandb or a list of them"),
])
def test_logger_key_is_checked(value, message):
    from sceneshift.registry import RecipeError
    from sceneshift.training.recipe import load_recipe
    with pytest.raises(RecipeError, match=message.replace("[", r"\[").replace("(", r"\(")):
        load_recipe("baseline", [f"train.logger={value}"])


def test_csv_is_always_kept():
    from sceneshift.training.recipe import load_recipe
    assert load_recipe("baseline")["train"]["logger"] == ["csv"]
    assert load_recipe("baseline", ["train.logger=tensorboard"])["train"]["logger"] == ["csv", "tensorboard"]
    assert load_recipe("baseline", ["train.logger=[wandb,csv,wandb]"])["train"]["logger"] == ["csv", "wandb"]


def test_wandb_id_continues_only_a_resumed_run(tmp_path):
    from sceneshift.training.loggers import wandb_run_id
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "wandb.id").write_text("abc123\n")
    assert wandb_run_id(tmp_path) == "abc123"                        # --resume and reports continue it
    fresh = wandb_run_id(tmp_path, resume=False)                     # a new start in a failed start's folder
    assert fresh != "abc123" and len(fresh) == 12

