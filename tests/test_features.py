"""Precomputed features: extraction, the same predictions as from audio, training from features,
pickles refused, time-first layouts, shape checks."""
import json
import pickle
import shutil

import numpy as np
import pytest
import torch
import yaml

from sceneshift.cli import main
from sceneshift.data.datasets import Clip
from sceneshift.data.datasets.tau import TauDataset
from sceneshift.data.features import feature_path, load_features, read_array
from sceneshift.frontend.precomputed import PrecomputedFrontend

QUIET = dict(log=lambda *a: None)


@pytest.fixture(scope="module")
def feature_folder(tmp_path_factory, tiny_benchmark):
    out = tmp_path_factory.mktemp("features") / "tiny-logmel"
    assert main(["features", "extract", "baseline", "--data", str(tiny_benchmark), "--out", str(out)]) == 0
    return out


def test_extracted_folder_layout_and_values(feature_folder, tiny_benchmark):
    from sceneshift.data.splits import DataSource
    from sceneshift.frontend import FRONTENDS
    from sceneshift.training.recipe import resolve
    spec = json.loads((feature_folder / "features.json").read_text())
    assert spec["layout"] == "CFT" and spec["shape"] == [1, 64, 201]
    for split in ("train", "validate", "evaluate"):
        assert (feature_folder / "evaluation_setup" / f"fold1_{split}.csv").is_file()
    assert (feature_folder / "devices.json").is_file() and (feature_folder / "meta.csv").is_file()
    clips = TauDataset(tiny_benchmark).clips("evaluate")
    assert all(feature_path(feature_folder, c.filename).is_file() for c in clips)
    cfg = resolve("baseline", tiny_benchmark)
    data = DataSource(cfg["data"], **QUIET).split("evaluate")
    assert [c.filename for c in data.clips] == [c.filename for c in clips]
    opts = dict(cfg["frontend"])
    frontend = FRONTENDS.build(opts.pop("name"), opts, sample_rate=cfg["data"]["sample_rate"])
    expect = frontend(torch.from_numpy(np.array(data.waves[:3], dtype=np.float32))).numpy()
    got = np.stack([read_array(feature_path(feature_folder, c.filename)) for c in clips[:3]])
    assert np.allclose(got, expect, atol=1e-5)


def test_same_predictions_from_features_as_from_audio(tmp_path, feature_folder, tiny_benchmark):
    """A run trained on audio, pointed at the extracted features, scores exactly the same."""
    from sceneshift.evaluation.evaluate import evaluate
    from sceneshift.training.run import train
    audio_run = train("baseline", data=tiny_benchmark, out=tmp_path / "audio",
                      overrides=["train.epochs=1", "train.limit_train_batches=3", "train.batch_size=16",
                                 "train.progress=false", "model.embed_dim=32", "model.hidden=32"], **QUIET)
    assert (audio_run / "domain.json").is_file() and not (audio_run / "eval").exists()   # train alone: no eval
    feat_run = tmp_path / "as-features"
    shutil.copytree(audio_run, feat_run)
    cfg = yaml.safe_load((feat_run / "config.yaml").read_text())
    cfg["data"]["features"] = str(feature_folder)
    (feat_run / "config.yaml").write_text(yaml.safe_dump(cfg))
    a = evaluate(audio_run, tiny_benchmark, **QUIET)
    f = evaluate(feat_run, tiny_benchmark, **QUIET)
    assert f["overall"]["n"] == a["overall"]["n"] == 360
    for d in a["devices"]:
        assert f["devices"][d]["accuracy"] == a["devices"][d]["accuracy"]
        assert f["devices"][d]["log_loss"] == pytest.approx(a["devices"][d]["log_loss"], abs=1e-4)
    # band-wise matching works on feature runs too (the front end is a pass-through)
    fb = evaluate(feat_run, feature_folder, adapt="bandwise", **QUIET)
    ab = evaluate(audio_run, tiny_benchmark, adapt="bandwise", **QUIET)
    assert fb["overall"]["log_loss"] == pytest.approx(ab["overall"]["log_loss"], abs=1e-3)


def test_train_c3m_from_features(tmp_path, feature_folder):
    from sceneshift.cli import train_and_evaluate
    from sceneshift.networks.predictor import load_predictor
    run = train_and_evaluate("c3m", data=feature_folder, out=tmp_path / "c3m-feat", **QUIET,
                             overrides=[f"data.features={feature_folder}", "train.epochs=1",
                                        "train.limit_train_batches=2", "train.batch_size=16", "train.progress=false",
                                        "model.embed_dim=16", "model.hidden=16"])
    report = json.loads(next((run / "eval").glob("*/report.json")).read_text())
    assert report["overall"]["n"] == 360 and set(report["groups"]) == {"source", "seen", "unseen"}
    predictor = load_predictor(run)
    assert isinstance(predictor.net.frontend, PrecomputedFrontend)
    with pytest.raises(ValueError, match="not audio"):
        predictor.logits(np.zeros((1, 64000), np.float32))


def test_pickles_refused_and_layouts(tmp_path):
    clips = [Clip(f"audio/x-{i}-a.wav", "x", "a") for i in range(4)]
    (tmp_path / "audio").mkdir()
    good = np.arange(2 * 5, dtype=np.float32).reshape(2, 5)
    np.save(feature_path(tmp_path, clips[0].filename), good)
    np.save(feature_path(tmp_path, clips[1].filename), np.array([{"code": 1}], dtype=object))   # object array
    feature_path(tmp_path, clips[2].filename).write_bytes(pickle.dumps(good))                 # a raw pickle
    np.save(feature_path(tmp_path, clips[3].filename), np.zeros((3, 5), np.float32))           # other shape
    feats, kept, skipped = load_features(tmp_path, clips + [Clip("audio/missing-a.wav", "x", "a")], **QUIET)
    assert [c.filename for c in kept] == [clips[0].filename] and feats.shape == (1, 1, 2, 5)
    reasons = dict(skipped)
    assert "pickled" in reasons[clips[1].filename] and "pickled" in reasons[clips[2].filename]
    assert "unlike" in reasons[clips[3].filename] and "no feature file" in reasons["audio/missing-a.wav"]
    assert not feats.flags.writeable
    # time-first arrays (the DCASE 2018 set of the paper): features.json says so
    (tmp_path / "features.json").write_text(json.dumps({"layout": "TF"}))
    feats, kept, _ = load_features(tmp_path, clips[:1], **QUIET)
    assert feats.shape == (1, 1, 5, 2) and np.array_equal(feats[0, 0], good.T)
    (tmp_path / "features.json").write_text(json.dumps({"layout": "XY"}))
    with pytest.raises(ValueError, match="layout"):
        load_features(tmp_path, clips[:1], **QUIET)
    with pytest.raises(FileNotFoundError, match="data.features"):
        load_features(tmp_path / "nope", clips, **QUIET)


def test_precomputed_frontend_checks_channels():
    fe = PrecomputedFrontend(channels=3)
    assert fe(torch.zeros(2, 3, 64, 10)).shape == (2, 3, 64, 10)
    with pytest.raises(ValueError, match="frontend.n_deltas"):
        fe(torch.zeros(2, 64, 10))
    assert PrecomputedFrontend(1)(torch.zeros(2, 64, 10)).shape == (2, 1, 64, 10)
