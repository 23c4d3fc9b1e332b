"""Seed 001's semi-supervised system and pipeline (issue 9) on the tiny benchmark."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sceneshift.training.semi import labeled_subset, semi_stages


def test_labeled_subset_is_per_class_deterministic_and_at_least_one():
    labels = np.array([0] * 10 + [1] * 3 + [2] * 1)
    names = [f"clip{i}.flac" for i in range(len(labels))]
    rows = np.arange(len(labels))
    a = labeled_subset(rows, labels, names, 0.2)
    assert np.array_equal(a, labeled_subset(rows[::-1].copy(), labels, names, 0.2))
    assert [int((labels[a] == c).sum()) for c in (0, 1, 2)] == [2, 1, 1]


def test_stages_chain_their_weights(tmp_path):
    stages = semi_stages({"finetune_iterations": 2, "pseudo_rounds": 1}, tmp_path)
    assert [n for n, _ in stages] == ["1-pretrain", "2-finetune-1", "2-finetune-2", "3-pseudo-1"]
    assert f"system_options.init_from={tmp_path / '2-finetune-2'}" in stages[3][1]
    assert "system_options.reset_head=true" in stages[1][1] and "system_options.reset_head=false" in stages[3][1]
    assert not any(o.startswith("train.epochs=") for _, over in stages for o in over)
    timed = dict(semi_stages({"finetune_iterations": 1, "finetune_epochs": 4, "pseudo_epochs": 6}, tmp_path))
    assert "train.epochs=4" in timed["2-finetune-1"] and "train.epochs=6" in timed["3-pseudo-1"]
    assert not any(o.startswith("train.epochs=") for o in timed["1-pretrain"])


def test_pipeline_end_to_end_resumable(tiny_benchmark, tmp_path, capsys):
    from sceneshift.cli import main
    recipe = tmp_path / "semi.yaml"
    recipe.write_text("base: baseline\nname: semi_kaggle\nsystem: semi_supervised\n"
                      "system_options: {finetune_iterations: 1, pseudo_rounds: 1, threshold: 0.2}\n")
    out = tmp_path / "semi"
    args = ["semi", str(recipe), "--out", str(out), "--data", str(tiny_benchmark), "train.epochs=1",
            "train.progress=false", "train.batch_size=16"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    for stage in ("1-pretrain", "2-finetune-1", "3-pseudo-1"):
        assert (out / stage / "model.pt").is_file() and stage in (out / "stages.txt").read_text()
        assert list((out / stage / "eval").glob("*/report.json"))
    cfg = (out / "3-pseudo-1" / "config.yaml").read_text()
    assert "init_from: " + str(out / "2-finetune-1") in cfg and "stage: pseudo" in cfg
    assert "pseudo-labels:" in printed
    # a second call keeps every finished stage
    assert main(args) == 0
    assert capsys.readouterr().out.count("done, kept") == 3


def test_pseudo_stage_weights_are_min_max_normalised_confidences(tiny_benchmark, tmp_path):
    from sceneshift.data.domain import Domain
    from sceneshift.data.splits import DataSource
    from sceneshift.training import SYSTEMS
    from sceneshift.training.recipe import resolve
    from sceneshift.training.run import train
    start = train("baseline", data=tiny_benchmark, out=tmp_path / "start", log=lambda *a: None,
                  overrides=["train.epochs=1", "train.progress=false"])
    cfg = resolve("baseline", str(tiny_benchmark), ["system=semi_supervised", "system_options.stage=pseudo",
                                                     f"system_options.init_from={start}"])
    source = DataSource(cfg["data"], log=lambda *a: None)
    domain = Domain.load(start / "domain.json")
    source.domain = domain
    system = SYSTEMS.build("semi_supervised", cfg["system_options"], where="system_options", cfg=cfg, domain=domain,
                           data=source)
    system.prepare_stage()
    split = source.split(cfg["data"]["train_split"])
    parts = system.partition(split)
    w = system.weights[parts["unlabeled"]]
    assert w.min() == 0 and w.max() == pytest.approx(1.0)                     # min-max normalised
    assert torch.all(system.weights[parts["labeled"]] == 1) and torch.all(system.weights[parts["source"]] == 0)
    assert len(parts["labeled"]) + len(parts["unlabeled"]) + len(parts["source"]) == len(split.clips)
    with pytest.raises(ValueError, match="init_from"):
        SYSTEMS.build("semi_supervised", {"stage": "finetune"}, where="system_options", cfg=cfg, domain=domain,
                      data=source)


def test_pipeline_on_the_icme_layout_keeps_its_own_labels(tmp_path, shared_dir, capsys):
    """Real ICME 2024 file names and label file (empty label = unlabeled), audio the test makes."""
    import shutil
    from test_datasets import make_icme_audio
    from sceneshift.cli import main
    root = tmp_path / "icme"
    root.mkdir()
    shutil.copy(shared_dir / "data/metadata/icme2024-cas/ICME2024_ASC_dev_label.csv", root)
    keep = make_icme_audio(root, per_class=3, unlabeled=6)
    recipe = tmp_path / "semi.yaml"
    recipe.write_text("base: baseline\nname: semi_icme\nsystem: semi_supervised\n"
                      "system_options: {finetune_iterations: 1, pseudo_rounds: 1}\n"
                      "data: {clip_seconds: 1.0, test_split: validate, dataset_options: {validate_fraction: 0.34}}\n"
                      "train: {epochs: 1, batch_size: 8, progress: false}\n")
    assert main(["semi", str(recipe), "--out", str(tmp_path / "out"), "--data", str(root)]) == 0
    printed = capsys.readouterr().out
    labeled = sum(1 for _, s in keep if s)
    # no source device: pre-training uses every labeled training clip, the 6 empty-label clips are pseudo-labeled
    assert "pseudo-labels: 6 of 6 unlabeled clips" in printed
    lines = [ln for ln in printed.splitlines() if ln.startswith("pretrain: ")]
    assert lines and "unlabeled 6" in lines[0] and int(lines[0].split()[1]) < labeled
    report = json.loads(next((tmp_path / "out" / "3-pseudo-1" / "eval").glob("*/report.json")).read_text())
    assert report["overall"]["n"] > 0 and "macro_accuracy" in report["overall"]
