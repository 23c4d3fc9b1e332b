"""The model registry, the Kaggle CNN's published size, and networks built from recipes."""
import pytest
import torch

from sceneshift.data.domain import Domain
from sceneshift.models import MODELS, count_parameters
from sceneshift.models.mobilefacenet import Attention
from sceneshift.networks import build_network
from sceneshift.registry import RecipeError
from sceneshift.training.recipe import load_recipe


def test_kaggle_cnn_size_and_length_independence():
    assert "kaggle_cnn" in MODELS.names()
    m = MODELS.build("kaggle_cnn", {}, in_channels=1)
    assert 1.35e6 < count_parameters(m) < 1.45e6                      # about 1.4 M (REFERENCE)
    m2 = MODELS.build("kaggle_cnn", {"embed_dim": 512, "hidden": 512}, in_channels=1)
    assert 1.9e6 < count_parameters(m2) < 2.05e6                      # about 2 M with the doubled embedding
    m.eval()
    assert m(torch.randn(2, 1, 64, 201)).shape == (2, 256)
    assert m(torch.randn(2, 1, 64, 431)).shape == (2, 256)
    # seed 001's attention in front (docs/seed001.md's part-by-part rows): its parameters added, trained
    attended = MODELS.build("kaggle_cnn", {"attention": True}, in_channels=2)
    plain = MODELS.build("kaggle_cnn", {}, in_channels=2)
    assert count_parameters(attended) == count_parameters(plain) + count_parameters(Attention(2))
    attended(torch.randn(2, 2, 64, 201))[:, 0].sum().backward()   # (the LayerNorm makes a plain sum constant)
    assert attended.attention.project.weight.grad.abs().sum() > 0
    with pytest.raises(RecipeError, match="model.depth: unknown option"):
        MODELS.build("kaggle_cnn", {"depth": 3}, where="model", in_channels=1)
    with pytest.raises(RecipeError, match="unknown model 'vgg99'"):
        MODELS.build("vgg99", {}, in_channels=1)


def test_classifier_runs_on_waveforms():
    net = build_network(load_recipe("baseline"), Domain.placeholder(10)).eval()
    assert net(torch.randn(3, 64000)).shape == (3, 10)
