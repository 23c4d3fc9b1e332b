"""Seed-003 models: registered, fully convolutional, width-scalable; parameter and MAC counts."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from sceneshift.models import MODELS, count_macs, count_parameters
from sceneshift.registry import RecipeError

NAMES = ["resnet_fsplit", "fcnn", "fsfcnn"]


def create_model(name, in_channels, **options):
    return MODELS.build(name, options, in_channels=in_channels)


@pytest.mark.parametrize("name", NAMES)
def test_shape_length_independence_and_pooling(name):
    assert name in MODELS.names() and name in MODELS
    torch.manual_seed(0)
    m = create_model(name, 3, width=2).eval()
    for frames in (40, 97):
        x = torch.randn(2, 3, 64, frames)
        emb = m(x)
        assert emb.shape == (2, m.embed_dim)
        assert torch.allclose(m.pool(m.feature_maps(x)), emb)


@pytest.mark.parametrize("name", NAMES)
def test_width_scales_size_and_cost(name):
    x = torch.randn(1, 3, 64, 100)
    small, big = create_model(name, 3, width=2), create_model(name, 3, width=4)
    assert count_parameters(big) > 3 * count_parameters(small)
    assert count_macs(big, x) > 3 * count_macs(small, x)
    # convolutional cost grows with the clip length (no fixed-size dense layer)
    assert 1.8 < count_macs(small, torch.randn(1, 3, 64, 200)) / count_macs(small, x) < 2.2
    with pytest.raises(ValueError, match="width"):
        create_model(name, 3, width=0)
    with pytest.raises(RecipeError, match=r"model.depth: unknown option \(allowed: .*width"):
        create_model(name, 3, depth=3)


def test_count_macs_by_hand():
    conv = nn.Conv2d(3, 8, (3, 5), padding=(1, 2))
    assert count_macs(conv, torch.zeros(1, 3, 10, 20)) == 8 * 10 * 20 * 3 * 3 * 5
    grouped = nn.Conv2d(8, 8, 3, padding=1, groups=4)
    assert count_macs(grouped, torch.zeros(2, 8, 4, 4)) == 8 * 4 * 4 * 2 * 3 * 3   # per example
    lin = nn.Sequential(nn.Linear(16, 4), nn.ReLU(), nn.Linear(4, 2))
    assert count_macs(lin, torch.zeros(5, 16)) == 16 * 4 + 4 * 2


def test_resnet_splits_frequency_into_two_paths():
    torch.manual_seed(0)
    m = create_model("resnet_fsplit", 3, width=2, stages=2, blocks=1).eval()
    x = torch.randn(1, 3, 64, 40)
    base = m.feature_maps(x)
    assert base.shape[2] == 64                                # no pooling along frequency
    y = x.clone()
    y[:, :, 40:] += 1.0                                       # change only the high half
    changed = (m.feature_maps(y) - base).abs().amax(dim=(0, 1, 3)) > 1e-6
    assert not changed[:32].any() and changed[32:].any()     # the low path never sees the high bands


def test_recipe_cost_table_matches_the_built_classifier():
    from sceneshift.data.domain import Domain
    from sceneshift.evaluation.complexity import cost_table, network_cost
    from sceneshift.networks import build_network
    from sceneshift.training.recipe import load_recipe
    rows = cost_table(["seed003_resnet", "seed003_fcnn_3class"])
    assert [r["classes"] for r in rows] == [10, 3]
    cfg = load_recipe("seed003_resnet")
    net = build_network(cfg, Domain.placeholder(10))
    assert {k: v for k, v in network_cost(cfg).items() if k != "options"} == \
        {k: v for k, v in rows[0].items() if k not in ("name", "options")}
    assert rows[0]["parameters"] == count_parameters(net)
    assert rows[0]["input"] == [3, 64, 193]                   # 201 frames less 2 x 4 for the valid deltas
    assert rows[0]["macs"] == count_macs(net, torch.zeros(1, 64000))
