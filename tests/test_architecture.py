"""The skeleton: one domain object, no device literals, systems that own their data, networks without Lightning,
benchmark versions."""
import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import sceneshift
from sceneshift.cli import main, train_and_evaluate
from sceneshift.data.splits import loader
from sceneshift.training import SYSTEMS
from sceneshift.training.classifier import ClassifierSystem

QUIET = lambda *a: None
PACKAGE = Path(sceneshift.__file__).parent
DEVICE_NAMES = {"a", "b", "c"} | {f"s{i}" for i in range(1, 12)}
WRITES_A_DATASET = Path("augment/simulate.py")     # `devices simulate` names the devices of the dataset it makes


def test_no_device_is_named_outside_data():
    """Device names come from the dataset (the run's domain), never from a literal in the code."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] == "data" or path.relative_to(PACKAGE) == WRITES_A_DATASET:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in DEVICE_NAMES:
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.value!r}")
    assert not found, found


def rename_source_device(src: Path, dst: Path, old="a", new="ref") -> Path:
    """A copy of a TAU-layout benchmark whose source device is called ``new``."""
    (dst / "audio").mkdir(parents=True)
    for f in (src / "audio").iterdir():
        name = f.name[: -len(f"-{old}.flac")] + f"-{new}.flac" if f.name.endswith(f"-{old}.flac") else f.name
        os.symlink(f, dst / "audio" / name)
    fix = lambda text: text.replace(f"-{old}.flac", f"-{new}.flac")
    (dst / "evaluation_setup").mkdir()
    for f in (src / "evaluation_setup").iterdir():
        (dst / "evaluation_setup" / f.name).write_text(fix(f.read_text()))
    (dst / "meta.csv").write_text(fix((src / "meta.csv").read_text()))
    spec = json.loads((src / "devices.json").read_text())
    spec["source_device"] = new
    (dst / "devices.json").write_text(json.dumps(spec))
    shutil.copy(src / "summary.json", dst / "summary.json")
    return dst


def test_a_source_device_not_called_a(tiny_benchmark, tmp_path):
    """Device augmentations and band-wise matching take the source device from the run's domain."""
    from sceneshift.augment import build_augmentations
    from sceneshift.data.domain import Domain
    from sceneshift.data.splits import DataSource
    from sceneshift.evaluation.evaluate import evaluate
    from sceneshift.training.recipe import load_recipe
    root = rename_source_device(tiny_benchmark, tmp_path / "renamed")
    recipe = tmp_path / "device_aug.yaml"
    recipe.write_text("base: baseline\nname: device_aug\naugment:\n  - name: one_of\n    p: 1.0\n    choices:\n"
                      "      - {name: spectrum_correction}\n      - {name: reverb_drc}\n")
    cfg = load_recipe(recipe)
    cfg["data"]["root"] = str(root)
    source = DataSource(cfg["data"], log=QUIET)
    domain = Domain.from_dataset(source.adapter, source.clips("train"))
    source.domain = domain
    assert domain.source == "ref" and domain.source_index == domain.devices.index("ref")
    [one_of], _ = build_augmentations(cfg["augment"], domain, 16000)
    train = source.split("train")
    one_of.fit(train)
    sc = one_of.choices[0]
    assert sc.fitted and not torch.allclose(sc.ratio, torch.ones_like(sc.ratio))
    rows = np.r_[train.rows(device="ref")[:4], train.rows(device="b")[:2]]
    x = torch.from_numpy(np.asarray(train.waves[rows], dtype=np.float32))
    y = torch.nn.functional.one_hot(torch.from_numpy(train.labels[rows]), len(domain.classes)).float()
    out, _ = one_of(x, y, torch.from_numpy(train.devices[rows]))
    changed = (out - x).abs().amax(dim=1) > 1e-4
    assert changed[:4].all() and not changed[4:].any()              # source clips augmented, others untouched

    run = train_and_evaluate(recipe, data=root, out=tmp_path / "run",
                             overrides=["train.epochs=1", "train.progress=false"], log=QUIET)
    assert json.loads((run / "domain.json").read_text())["source"] == "ref"
    default = evaluate(run, adapt="bandwise", log=QUIET)
    assert default["meta"]["adapted_devices"] == ["s4", "s5", "s6"]     # only devices the run never trained on
    everything = evaluate(run, adapt="bandwise", adapt_devices="all", log=QUIET)
    assert everything["meta"]["adapted_devices"] == ["b", "c", "s1", "s2", "s3", "s4", "s5", "s6"]
    plain = evaluate(run, log=QUIET)
    for dev in ("ref", "b", "s1"):                                    # not adapted: scored exactly as without
        assert default["devices"][dev] == plain["devices"][dev]
    assert default["devices"]["s4"]["log_loss"] != plain["devices"]["s4"]["log_loss"]
    assert everything["devices"]["b"]["log_loss"] != plain["devices"]["b"]["log_loss"]


@SYSTEMS.register("toy_two_streams")
class TwoStreamSystem(ClassifierSystem):
    """A test system shaped like teacher/student or semi-supervised training: it asks for a labeled and an
    unlabeled stream through its own loader hook and trains on both (cross-entropy + entropy minimisation),
    with no edit to run.py, the recipe schema or the command line."""

    def __init__(self, cfg, domain, data, unlabeled_weight: float = 0.5):
        super().__init__(cfg, domain, data)
        self.unlabeled_weight = unlabeled_weight
        self.unlabeled_seen = 0

    def train_dataloader(self):
        from lightning.pytorch.utilities import CombinedLoader
        t = self.cfg["train"]
        labeled = loader(self.train_data, t["batch_size"], True, t["seed"], indices=self.train_data.rows(labeled=True))
        unlabeled = loader(self.train_data, t["batch_size"], True, t["seed"] + 1,
                           indices=np.flatnonzero(self.train_data.labels < 0))
        return CombinedLoader({"labeled": labeled, "unlabeled": unlabeled}, mode="max_size_cycle")

    def training_step(self, batch, batch_idx):
        wave, y, _, _ = batch["labeled"]      # waveforms, or front-end features with train.cache_features
        logits = self.net.head(self.train_backbone(self.input_features(wave)))
        supervised = torch.nn.functional.cross_entropy(logits, y)
        unlabeled = self.net.head(self.train_backbone(self.input_features(batch["unlabeled"][0])))
        probs = torch.softmax(unlabeled, dim=1)
        self.unlabeled_seen += len(probs)
        entropy = -(probs * probs.clamp_min(1e-8).log()).sum(1).mean()
        loss = supervised + self.unlabeled_weight * entropy
        self.log("train/loss", loss, on_epoch=True, on_step=False, batch_size=len(y))
        return loss


def test_a_system_owns_its_data(tmp_path, shared_dir):
    from sceneshift.training.recipe import load_recipe
    from sceneshift.training.run import train
    from test_datasets import make_icme_audio
    root = tmp_path / "icme"
    root.mkdir()
    shutil.copy(shared_dir / "data/metadata/icme2024-cas/ICME2024_ASC_dev_label.csv", root)
    make_icme_audio(root, per_class=2, unlabeled=8)
    recipe = tmp_path / "toy.yaml"
    recipe.write_text("base: baseline\nname: toy\nsystem: toy_two_streams\nsystem_options: {unlabeled_weight: 0.2}\n"
                      "data: {clip_seconds: 1.0, dataset_options: {validate_fraction: 0.5}}\n"
                      "train: {epochs: 2, batch_size: 4, progress: false}\n")
    with pytest.raises(ValueError, match="system_options.unlabeled_wt: unknown option"):
        load_recipe(recipe, ["system_options.unlabeled_wt=1"])
    seen = {}
    original = TwoStreamSystem.on_train_end

    def record(self):
        seen["unlabeled"] = self.unlabeled_seen
        return original(self)
    TwoStreamSystem.on_train_end = record
    try:
        run = train(recipe, data=root, out=tmp_path / "run", log=QUIET)
    finally:
        TwoStreamSystem.on_train_end = original
    assert (run / "model.pt").is_file() and seen["unlabeled"] >= 2 * 8      # both epochs drew the unlabeled stream
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs"] == 2
    # what the run was made with (runs repeat on one machine, not across machines: docs/beyond.md)
    assert summary["software"]["torch"].startswith(torch.__version__.split("+")[0]) and summary["software"]["numpy"]


def test_evaluation_builds_networks_without_lightning(tiny_run):
    """Prediction rebuilds the run's network from config.yaml + domain.json through the network registry."""
    code = ("import sys, numpy as np; from sceneshift.networks.predictor import load_predictor; "
            f"p = load_predictor({str(tiny_run)!r}); print(p.probabilities(np.zeros((2, p.n_samples), 'f') + 0.1).shape); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "(2, 10)" and out[1] == "[]"


def test_benchmark_versions(tiny_benchmark, tmp_path, monkeypatch, capsys, shared_dir):
    from sceneshift.data.benchmark import build_benchmark, builder_version, built_version
    assert builder_version(shared_dir) == "v2" and built_version(tiny_benchmark) == "v2"
    monkeypatch.setenv("SCENESHIFT_DATA", str(tmp_path / "data"))
    cached = tmp_path / "data" / "urban-mobile"
    shutil.copytree(tiny_benchmark, cached)
    summary = json.loads((cached / "summary.json").read_text())
    summary["benchmark_version"] = "v1"
    (cached / "summary.json").write_text(json.dumps(summary))
    assert main(["train", "baseline", "--out", str(tmp_path / "r"), "train.epochs=1"]) == 2
    err = capsys.readouterr().err
    assert "urban-mobile v1 is cached, but the builder now makes v2" in err and "`sceneshift benchmark build`" in err
    assert not (tmp_path / "r").exists()
    del summary["benchmark_version"]                   # a build from before versions existed is version 1
    (cached / "summary.json").write_text(json.dumps(summary))
    assert main(["features", "extract", "--out", str(tmp_path / "f")]) == 2
    assert "urban-mobile v1 is cached" in capsys.readouterr().err
    build_benchmark(cached, max_per_class=1, shared=shared_dir, log=QUIET)  # rebuilds (1 clip a class: quick)
    assert built_version(cached) == "v2"
