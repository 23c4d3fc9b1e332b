"""Dataset adapters behind one interface: ICME 2024 / CAS 2023 label files and a folder per class."""
import json
import math
import shutil
from collections import Counter

import numpy as np
import pytest
import soundfile as sf

from sceneshift.data.datasets import open_dataset
from sceneshift.data.datasets.icme import read_labels, recording_of
from sceneshift.data.splits import DataSource
from sceneshift.registry import RecipeError

ICME = "data/metadata/icme2024-cas"
QUIET = lambda *a: None


def tone(path, freq, seconds=1.0, sr=16000, seed=0):
    """A short labelled test clip: a class-specific tone in noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(len(t))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.astype(np.float32), sr)


@pytest.fixture
def icme_root(tmp_path, shared_dir):
    root = tmp_path / "icme"
    root.mkdir()
    for f in ("ICME2024_ASC_dev_label.csv", "ICME2024_ASC_eval.csv"):
        shutil.copy(shared_dir / ICME / f, root / f)
    return root


def test_icme_splits_on_the_real_label_file(icme_root):
    ds = open_dataset(icme_root)
    assert ds.name == "icme"
    labeled, unlabeled = ds.clips("labeled"), ds.clips("unlabeled")
    assert len(labeled) == 1740 and len(unlabeled) == 6960
    assert all(c.scene for c in labeled) and all(c.scene is None for c in unlabeled)
    train, val = ds.clips("train"), ds.clips("validate")
    train_labeled = [c for c in train if c.scene]
    assert len(train_labeled) + len(val) == 1740
    assert sum(c.scene is None for c in train) == 6960          # unlabeled clips are kept, not dropped
    per_class, totals = Counter(c.scene for c in val), Counter(c.scene for c in labeled)
    assert len(per_class) == 10 and totals["Airport"] == 220
    assert all(per_class[k] == math.ceil(0.2 * totals[k]) for k in totals)   # 20 % of each class (one clip each)
    rec = lambda clips: {recording_of(c.filename.split("/")[-1].rsplit(".", 1)[0]) for c in clips}
    assert not rec(val) & rec(train_labeled)                    # no recording on both sides
    assert ds.clips("validate") == val                          # deterministic
    test = ds.clips("test")
    assert len(test) == 1100 and all(c.scene is None for c in test)
    assert {c.device for c in train + test} == {"cas"} and ds.source_device is None
    assert train[0].filename.startswith("dev/") and train[0].filename.endswith(".wav")
    with pytest.raises(ValueError, match="unknown split 'evaluate'"):
        ds.clips("evaluate")
    with pytest.raises(RecipeError, match="data.dataset_options.validate_frac: unknown option"):
        open_dataset(icme_root, "icme", {"validate_frac": 0.1})


def make_icme_audio(root, per_class=3, unlabeled=6):
    """A small ICME-layout dataset: real file names and labels, audio the test makes."""
    labeled, unl = read_labels(root / "ICME2024_ASC_dev_label.csv")
    keep, counts = [], Counter()
    for name, scene in labeled.items():
        if counts[scene] < per_class:
            keep.append((name, scene))
            counts[scene] += 1
    keep += [(n, "") for n in unl[:unlabeled]]
    (root / "ICME2024_ASC_dev_label.csv").write_text(
        "filename,scene_label\r\n" + "".join(f"{n},{s}\r\n" for n, s in keep))
    scenes = sorted(counts)
    for i, (name, scene) in enumerate(keep):
        freq = 200 + 150 * scenes.index(scene) if scene else 300
        tone(root / "dev" / f"{name}.wav", freq, seed=i)
    return keep


def test_icme_trains_and_keeps_unlabeled_clips_out_of_the_supervised_loss(icme_root, tmp_path):
    from sceneshift.cli import main
    from sceneshift.data.domain import Domain
    from sceneshift.training.classifier import ClassifierSystem
    from sceneshift.training.recipe import load_recipe
    keep = make_icme_audio(icme_root, per_class=3, unlabeled=6)
    overrides = ["data.clip_seconds=1", "data.dataset_options.validate_fraction=0.34", "train.epochs=1",
                 "train.progress=false", "train.batch_size=8", "data.test_split=validate"]
    cfg = load_recipe("baseline", overrides)
    cfg["data"]["root"] = str(icme_root)
    source = DataSource(cfg["data"], log=QUIET)
    domain = Domain.from_dataset(source.adapter, source.clips("train"))
    source.domain = domain
    assert len(domain.classes) == 10 and domain.devices == ("cas",)
    system = ClassifierSystem(cfg, domain, source)
    system.setup("fit")
    train = system.train_data
    assert (train.labels < 0).sum() == 6                          # unlabeled rows are in the split ...
    assert len(system.train_dataloader().dataset) == (train.labels >= 0).sum() == 10   # ... not in the loss
    out = tmp_path / "run"
    assert main(["train", "baseline", "--data", str(icme_root), "--out", str(out), *overrides]) == 0
    report = json.loads((out / "eval" / "icme-validate" / "report.json").read_text())
    assert report["overall"]["n"] == 20 and 0 <= report["overall"]["macro_accuracy"] <= 1
    assert set(report["devices"]) == {"cas"} and report["meta"]["benchmark_version"] is None
    assert len(keep) == 36


def test_folder_per_class(tmp_path):
    root = tmp_path / "mine"
    for k, scene in enumerate(["kitchen", "office", "street"]):
        for i in range(20):
            tone(root / scene / f"{scene}_{i:02d}.wav", 300 + 200 * k, seed=i)
    for i in range(3):
        tone(root / "unlabeled" / f"u{i}.flac", 500, seed=99 + i)
    ds = open_dataset(root)
    assert ds.name == "folders"
    parts = {s: ds.clips(s) for s in ("train", "validate", "evaluate")}
    names = [c.filename for s in parts.values() for c in s]
    assert len(names) == len(set(names)) == 63                      # every file in exactly one split
    assert sum(c.scene is None for c in parts["train"]) == 3        # unlabeled clips go to training
    assert all(c.scene for c in parts["validate"] + parts["evaluate"])
    assert 3 <= len(parts["validate"]) <= 18 and {c.device for c in parts["train"]} == {"unknown"}
    assert open_dataset(root).clips("validate") == parts["validate"]    # deterministic
    # a pre-split layout and a devices.json naming devices by file-name suffix
    split_root = tmp_path / "split"
    for part in ("train", "validate", "evaluate"):
        for scene in ("kitchen", "office"):
            for dev in ("phone", "laptop"):
                tone(split_root / part / scene / f"{scene}-{part}-{dev}.wav", 400)
    (split_root / "devices.json").write_text(json.dumps({"source_device": "phone", "seen": [], "unseen": ["laptop"]}))
    ds = open_dataset(split_root)
    assert ds.name == "folders" and ds.source_device == "phone"
    assert {c.device for c in ds.clips("evaluate")} == {"phone", "laptop"} and len(ds.clips("train")) == 4


def test_folder_dataset_trains_end_to_end(tmp_path):
    from sceneshift.cli import main
    root = tmp_path / "mine"
    for k, scene in enumerate(["kitchen", "office", "street"]):
        for i in range(16):
            tone(root / scene / f"{scene}_{i:02d}.wav", 300 + 200 * k, seed=i)
    out = tmp_path / "run"
    assert main(["train", "baseline", "--data", str(root), "--out", str(out), "data.clip_seconds=1",
                 "train.epochs=2", "train.progress=false", "train.batch_size=8"]) == 0
    report = json.loads((out / "eval" / "mine-evaluate" / "report.json").read_text())
    assert set(report["classes"]) == {"kitchen", "office", "street"} and report["overall"]["n"] > 0


def test_unrecognised_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(FileNotFoundError, match="not a dataset sceneshift recognises"):
        open_dataset(tmp_path)


def test_exclude_devices_holds_a_device_out_of_training_only(tiny_benchmark):
    """``data.exclude_devices``: the device leaves the training split and the checkpoint selection and
    becomes one the run never heard, so ``evaluate --split validate --adapt`` adapts it alone (a
    held-out-device validation)."""
    from sceneshift.adaptation import devices_to_adapt
    from sceneshift.data.domain import Domain
    from sceneshift.training.recipe import load_recipe
    cfg = load_recipe("baseline", ["data.exclude_devices=[s3]"])
    cfg["data"]["root"] = str(tiny_benchmark)
    source = DataSource(cfg["data"], log=QUIET)
    full = open_dataset(tiny_benchmark)
    train = source.clips("train")
    assert {c.device for c in train} == {c.device for c in full.clips("train")} - {"s3"}
    assert len(train) == sum(c.device != "s3" for c in full.clips("train"))
    assert source.clips("validate") == full.clips("validate")          # only training loses the device
    domain = Domain.from_dataset(source.adapter, train)
    source.domain = domain
    assert "s3" not in domain.devices
    val = source.split("validate")
    assert (val.devices[val.rows(device="s3")] == -1).all() and len(val.rows(device="s3"))
    assert devices_to_adapt(domain, [c.device for c in val.clips]) == ["s3"]
    assert len(source.split("train").clips) == len(train)
    from sceneshift.training.classifier import ClassifierSystem
    system = ClassifierSystem(cfg, domain, source)
    system.setup("fit")                     # the held-out device is not selected on either
    assert len(system.val_dataloader().dataset) == len(val.clips) - len(val.rows(device="s3"))
    for bad, message in ((["s9"], "s9 not a device of split 'train'"), (["a"], "a is the source device")):
        cfg["data"]["exclude_devices"] = bad
        with pytest.raises(ValueError, match=message):
            DataSource(cfg["data"], log=QUIET).clips("train")
    with pytest.raises(RecipeError, match="exclude_devices"):
        load_recipe("baseline", ["data.exclude_devices=s3"])
