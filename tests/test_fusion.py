"""Two-stage fusion and ensembles (seed 003): a hand-computed example and systems scored like runs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sceneshift.data.domain import Domain
from sceneshift.networks.ensemble import EnsemblePredictor, TwoStagePredictor, fuse_two_stage, load_system


class Fixed:
    """A stand-in predictor with fixed probabilities."""

    def __init__(self, classes, proba, scene_map=None):
        self.classes, self.proba = classes, np.asarray(proba, dtype=float)
        self.cfg = {"data": {"scene_map": scene_map}, "train": {}}
        self.domain = Domain(classes=tuple(classes), devices=("a",), source="a")
        self.sample_rate, self.n_samples = 16000, 64000

    def probabilities(self, waves, batch_size=128, rows=None):
        return self.proba if rows is None else self.proba[rows]


def test_fusion_hand_example():
    # scenes x, y, z with parents A, B, B; fine model prefers x, coarse model is sure of B
    p_fine = np.array([[0.5, 0.3, 0.2]])
    p_coarse = np.array([[0.2, 0.8]])
    fused = fuse_two_stage(p_fine, p_coarse, [0, 1, 1])
    # products 0.5*0.2 = 0.10, 0.3*0.8 = 0.24, 0.2*0.8 = 0.16; sum 0.5
    assert np.allclose(fused, [[0.20, 0.48, 0.32]])
    assert fused.argmax() == 1                      # the coarse stage overturns the fine decision


def test_two_stage_predictor_uses_the_recipe_map_and_checks_it():
    fine = Fixed(["x", "y", "z"], [[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    coarse = Fixed(["A", "B"], [[0.2, 0.8], [0.9, 0.1]], scene_map={"x": "A", "y": "B", "z": "B"})
    system = TwoStagePredictor(fine, coarse)
    p = system.probabilities(None)
    assert np.allclose(p[0], [0.20, 0.48, 0.32])
    assert np.allclose(p[1], np.array([0.09, 0.01, 0.08]) / 0.18)
    assert system.classes == ["x", "y", "z"] and system.cfg is fine.cfg and system.domain is fine.domain
    assert np.allclose(system.probabilities(None, rows=[1]), p[1:])      # a subset of rows
    with pytest.raises(ValueError, match="no parent for z"):
        TwoStagePredictor(fine, coarse, parents={"x": "A", "y": "B"})
    with pytest.raises(ValueError, match="C not among the coarse classes"):
        TwoStagePredictor(fine, coarse, parents={"x": "A", "y": "B", "z": "C"})
    with pytest.raises(ValueError, match="no class-to-parent map"):
        TwoStagePredictor(fine, Fixed(["A", "B"], [[0.5, 0.5]]))


def test_ensemble_averages_softmax_outputs():
    a = Fixed(["x", "y"], [[0.9, 0.1], [0.4, 0.6]])
    b = Fixed(["x", "y"], [[0.3, 0.7], [0.2, 0.8]])
    assert np.allclose(EnsemblePredictor([a, b]).probabilities(None), [[0.6, 0.4], [0.3, 0.7]])
    with pytest.raises(ValueError, match="different classes"):
        EnsemblePredictor([a, Fixed(["y", "x"], [[0.5, 0.5]])])


def fake_run(folder, recipe, data, classes, devices):
    """A run folder with untrained weights: what load_predictor needs, without training."""
    from sceneshift.networks import build_network
    from sceneshift.training.recipe import resolve, save_config
    cfg = resolve(recipe, data, ["model.width=2", "train.eval_batch_size=64"])
    domain = Domain(classes=tuple(classes), devices=tuple(devices), source="a")
    folder.mkdir(parents=True)
    save_config(cfg, folder / "config.yaml")
    domain.save(folder / "domain.json")
    torch.manual_seed(len(str(folder)))
    torch.save(build_network(cfg, domain).state_dict(), folder / "model.pt")
    return folder


@pytest.fixture(scope="module")
def fake_runs(tmp_path_factory, tiny_benchmark):
    from sceneshift.data.datasets.tau import TauDataset
    root = tmp_path_factory.mktemp("systems")
    scenes = sorted({c.scene for c in TauDataset(tiny_benchmark).clips("train")})
    devices = ["a", "b", "c", "s1", "s2", "s3"]
    fake_run(root / "fine1", "seed003_fcnn", tiny_benchmark, scenes, devices)
    fake_run(root / "fine2", "seed003_resnet", tiny_benchmark, scenes, devices)
    fake_run(root / "coarse", "seed003_fcnn_3class", tiny_benchmark, ["alert", "life", "machinery"], devices)
    return root


def test_systems_are_evaluated_like_runs(fake_runs, tiny_benchmark):
    from sceneshift.evaluation.evaluate import evaluate
    from sceneshift.networks.predictor import RunPredictor
    (fake_runs / "ens.yaml").write_text("ensemble: [fine1, fine2]\n")
    (fake_runs / "ts.yaml").write_text("two_stage:\n  fine: ens.yaml\n  coarse: [coarse]\n")
    quiet = lambda *a: None
    report = evaluate(fake_runs / "ts.yaml", tiny_benchmark, log=quiet)
    assert report["overall"]["n"] == 360 and set(report["groups"]) == {"source", "seen", "unseen"}
    assert (fake_runs / "ts-eval" / "tiny-evaluate" / "report.json").is_file()

    # the fused scores are the hand formula applied to the members' own outputs
    system = load_system(fake_runs / "ts.yaml", device="cpu")
    waves = np.random.default_rng(0).normal(0, 0.1, (3, system.n_samples)).astype(np.float32)
    members = [RunPredictor(fake_runs / n, "cpu").probabilities(waves) for n in ("fine1", "fine2", "coarse")]
    parents = system.parents
    coarse_classes = ["alert", "life", "machinery"]
    expected = (members[0] + members[1]) / 2 * members[2][:, [coarse_classes.index(parents[c]) for c in system.classes]]
    expected /= expected.sum(1, keepdims=True)
    assert np.allclose(system.probabilities(waves), expected, atol=1e-6)
    assert parents["jackhammer"] == "machinery" and parents["siren"] == "alert"   # from the 3-class recipe

    (fake_runs / "bad.yaml").write_text("stack: [fine1]\n")
    with pytest.raises(ValueError, match="exactly one key"):
        load_system(fake_runs / "bad.yaml")


def test_cli_evaluate_accepts_an_ensemble_file(fake_runs, tiny_benchmark, capsys):
    from sceneshift.cli import main
    (fake_runs / "ens2.yaml").write_text("ensemble: [fine1, coarse]\n")
    assert main(["evaluate", str(fake_runs / "ens2.yaml"), "--data", str(tiny_benchmark)]) == 2
    assert "different classes" in capsys.readouterr().err


def test_a_seed003_two_stage_ensemble_teaches_a_student(fake_runs, tiny_benchmark, tmp_path, monkeypatch):
    """Issue 10: the teacher of `system=distill` may be a seed 003 system file; the student's targets are the
    system's fused probabilities of the training clips."""
    import json
    from sceneshift.networks.predictor import RunPredictor
    from sceneshift.training import distill
    from sceneshift.training.run import train
    (fake_runs / "kd_ens.yaml").write_text("ensemble: [fine1, fine2]\n")
    (fake_runs / "kd_ts.yaml").write_text("two_stage:\n  fine: kd_ens.yaml\n  coarse: [coarse]\n")
    seen = {}
    load, targets = distill.load_teacher, distill.DistillSystem.teacher_targets

    def spy_load(path):
        teacher = load(path)
        seen["teacher"], probabilities = teacher, teacher.probabilities
        def record(waves, *a, **k):
            seen["waves"] = np.array(waves)
            return probabilities(waves, *a, **k)
        teacher.probabilities = record
        return teacher

    def spy_targets(self):
        seen["targets"] = targets(self)
        return seen["targets"]
    monkeypatch.setattr(distill, "load_teacher", spy_load)
    monkeypatch.setattr(distill.DistillSystem, "teacher_targets", spy_targets)
    out = train("cp_resnet", data=tiny_benchmark, out=tmp_path / "student", log=lambda *a: None,
                overrides=["system=distill", f"system_options.teacher={fake_runs / 'kd_ts.yaml'}", "train.epochs=1",
                           "train.progress=false", "model.width=4", "train.batch_size=32"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == 1
    teacher, waves = seen["teacher"], seen["waves"]
    assert isinstance(teacher, TwoStagePredictor)
    assert len(waves) == summary["train_clips"]
    # the fusion formula applied to the members' own, uncached outputs
    fine1, fine2, coarse = (RunPredictor(fake_runs / n, "cpu").probabilities(waves) for n in ("fine1", "fine2", "coarse"))
    coarse_classes = ["alert", "life", "machinery"]
    expected = (fine1 + fine2) / 2 * coarse[:, [coarse_classes.index(teacher.parents[c]) for c in teacher.classes]]
    expected /= expected.sum(1, keepdims=True)
    assert np.allclose(np.exp(seen["targets"].numpy()), expected, atol=1e-5)
