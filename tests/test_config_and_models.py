"""Recipes, overrides, the model registry and the Kaggle CNN's published size."""
import pytest
import torch

from sceneshift.classifier import build_classifier
from sceneshift.config import apply_overrides, load_recipe
from sceneshift.models import count_parameters, create_model, list_models


def test_recipe_and_overrides(tmp_path):
    cfg = load_recipe("baseline")
    assert cfg["model"]["name"] == "kaggle_cnn" and cfg["frontend"]["n_mels"] == 64
    cfg2 = apply_overrides(cfg, ["train.epochs=3", "train.lr=5e-4", "model.embed_dim=128", "frontend.log=log"])
    assert cfg2["train"]["epochs"] == 3 and cfg2["train"]["lr"] == 5e-4 and cfg2["model"]["embed_dim"] == 128
    assert cfg["train"]["epochs"] == 30                       # the original is untouched
    with pytest.raises(ValueError, match="train.epochz"):
        apply_overrides(cfg, ["train.epochz=3"])
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides(cfg, ["train.epochs"])
    child = tmp_path / "child.yaml"
    child.write_text("base: baseline\nname: child\ntrain:\n  epochs: 2\n")
    c = load_recipe(child)
    assert c["name"] == "child" and c["train"]["epochs"] == 2 and c["train"]["optimizer"] == "adam"
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lr_max: 1\n")
    with pytest.raises(ValueError, match="unknown option train.lr_max"):
        load_recipe(bad)
    with pytest.raises(FileNotFoundError, match="packaged recipes"):
        load_recipe("no-such-recipe")


def test_kaggle_cnn_size_and_length_independence():
    assert "kaggle_cnn" in list_models()
    m = create_model("kaggle_cnn", in_channels=1)
    assert 1.35e6 < count_parameters(m) < 1.45e6                      # about 1.4 M (REFERENCE)
    m2 = create_model("kaggle_cnn", in_channels=1, embed_dim=512, hidden=512)
    assert 1.9e6 < count_parameters(m2) < 2.05e6                      # about 2 M with the doubled embedding
    m.eval()
    assert m(torch.randn(2, 1, 64, 201)).shape == (2, 256)
    assert m(torch.randn(2, 1, 64, 431)).shape == (2, 256)
    with pytest.raises(ValueError, match="model.depth"):
        create_model("kaggle_cnn", in_channels=1, depth=3)
    with pytest.raises(ValueError, match="unknown model"):
        create_model("vgg99", in_channels=1)


def test_classifier_runs_on_waveforms():
    net = build_classifier(load_recipe("baseline"), num_classes=10).eval()
    assert net(torch.randn(3, 64000)).shape == (3, 10)
