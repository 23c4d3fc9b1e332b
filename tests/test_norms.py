"""Seed 002 and its successors: normalisation layers, the event extraction block, Mini-SegNet (issue 8)."""
from __future__ import annotations

import pytest
import torch

from sceneshift.models import MODELS, count_parameters
from sceneshift.models.mini_segnet import event_extraction
from sceneshift.models.norms import NORMS, build_norm

# one clip, two channels, two frequency bands, two frames, written out by hand
X = torch.tensor([[[[1.0, 3.0], [5.0, 7.0]],          # channel 0: mean 4, population var 5
                   [[0.0, 0.0], [2.0, 2.0]]]])        # channel 1: mean 1, var 1


def test_instance_and_mixup_norm_on_known_tensors():
    inst = build_norm("instance", 2)
    expected_in = torch.tensor([[[[-3, -1], [1, 3]], [[-1, -1], [1, 1]]]], dtype=torch.float) / \
        torch.tensor([5.0, 1.0]).add(1e-5).sqrt().view(1, 2, 1, 1)
    assert torch.allclose(inst(X), expected_in, atol=1e-6)
    mix = build_norm("mixup", 2)                                  # lambda 0.1 by default
    assert torch.allclose(mix(X), 0.1 * X + 0.9 * expected_in, atol=1e-6)
    assert torch.allclose(build_norm("mixup", 2, lam=0.0)(X), expected_in, atol=1e-6)      # lambda 0 is IN
    assert torch.allclose(build_norm("mixup", 2, lam=1.0)(X), X)
    assert sum(p.numel() for p in build_norm("mixup", 2, affine=True).parameters()) == 4
    with pytest.raises(ValueError, match="lambda"):
        build_norm("mixup", 2, lam=1.5)


def test_resnorm_and_rfn_on_known_tensors():
    # frequency-wise statistics (over channels and frames): band 0 = {1, 3, 0, 0} mean 1 var 1.5,
    # band 1 = {5, 7, 2, 2} mean 4 var 4.5; layer statistics over everything: mean 2.5, var 5.25
    fin = torch.empty_like(X)
    fin[:, :, 0] = (X[:, :, 0] - 1.0) / (1.5 + 1e-5) ** 0.5
    fin[:, :, 1] = (X[:, :, 1] - 4.0) / (4.5 + 1e-5) ** 0.5
    ln = (X - 2.5) / (5.25 + 1e-5) ** 0.5
    assert torch.allclose(build_norm("resnorm", 2)(X), 0.1 * X + fin, atol=1e-6)
    assert torch.allclose(build_norm("rfn", 2)(X), 0.5 * ln + 0.5 * fin, atol=1e-6)
    assert torch.allclose(build_norm("rfn", 2, lam=0.0)(X), fin, atol=1e-6)


def test_every_norm_keeps_the_shape_and_unknown_names_fail():
    x = torch.randn(3, 8, 5, 7)
    for name in NORMS:
        assert build_norm(name, 8)(x).shape == x.shape
    with pytest.raises(ValueError, match="unknown normalisation 'layer'"):
        build_norm("layer", 8)


def test_event_extraction_on_a_hand_made_tensor():
    # 4 channels over a 2 x 3 grid; the winners per point (argmax over channels):
    # [[2, 2, 1], [3, 2, 1]] -> counts ch0 0, ch1 2, ch2 3, ch3 1 -> ranking 2, 1, 3, 0
    maps = torch.zeros(1, 4, 2, 3)
    for (f, t), c in {(0, 0): 2, (0, 1): 2, (0, 2): 1, (1, 0): 3, (1, 1): 2, (1, 2): 1}.items():
        maps[0, c, f, t] = 1.0
    assert torch.equal(event_extraction(maps, k=4), torch.tensor([[2, 1, 3, 0]]) / 4)
    # ties: equal maxima go to the lowest channel; equal counts rank the lower channel first
    tied = torch.zeros(1, 4, 1, 2)
    tied[0, 1:, 0, 0] = 1.0                          # channels 1, 2, 3 tie at point 0 -> channel 1 wins
    tied[0, 3, 0, 1] = 1.0                           # channel 3 wins point 1: counts ch1 1, ch3 1
    assert torch.equal(event_extraction(tied, k=3), torch.tensor([[1, 3, 0]]) / 4)
    # deterministic, and no gradient flows through it
    x = torch.randn(2, 8, 5, 6, requires_grad=True)
    a, b = event_extraction(x), event_extraction(x)
    assert torch.equal(a, b) and not a.requires_grad


def test_gradients_reach_the_network_through_the_pooled_path_only():
    m = MODELS.build("mini_segnet", {"width": 8, "event_block": True, "hidden": 16}, where="model", in_channels=3)
    x = torch.randn(2, 3, 16, 30)
    maps = m.feature_maps(x)
    pooled = m.pool_maps(maps)
    assert pooled.shape == (2, 8 + 4)
    grad = torch.autograd.grad(pooled[:, 8:].sum(), maps, allow_unused=True)[0]
    assert grad is None or not grad.any()            # the event values are constants to autograd
    m(x).sum().backward()
    assert m.conv1[1].weight.grad is not None and m.conv1[1].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("opts", [{}, {"event_block": True}, {"upsample": "nearest"}, {"decoder_blocks": 2},
                                  {"norm": "batch"}, {"norm": "instance"}, {"norm": "resnorm"}, {"norm": "rfn"},
                                  {"norm_at": "encoder"}])
def test_mini_segnet_variants_are_length_independent(opts):
    m = MODELS.build("mini_segnet", {"width": 8, "hidden": 32, **opts}, where="model", in_channels=3).eval()
    with torch.no_grad():
        for shape in ((2, 3, 64, 193), (1, 3, 63, 50), (1, 3, 17, 7)):
            assert m(torch.randn(*shape)).shape == (shape[0], 32)


def test_mini_segnet_norm_at_encoder_keeps_batch_norm_before_pooling():
    m = MODELS.build("mini_segnet", {"width": 4, "hidden": 8, "norm_at": "encoder"}, where="model", in_channels=3)
    assert type(m.norm1).__name__ == "MixupNorm" and isinstance(m.norm5, torch.nn.BatchNorm2d)
    both = MODELS.build("mini_segnet", {"width": 4, "hidden": 8}, where="model", in_channels=3)
    assert type(both.norm5).__name__ == "MixupNorm"
    with pytest.raises(ValueError, match="model.norm_at"):
        MODELS.build("mini_segnet", {"norm_at": "decoder"}, where="model", in_channels=3)


def test_mini_segnet_unpools_into_the_pooled_positions():
    m = MODELS.build("mini_segnet", {"width": 4, "hidden": 8}, where="model", in_channels=3).eval()
    x = torch.randn(1, 3, 8, 9)
    y = torch.relu(m.norm1(m.conv1(x)))
    pooled, idx = m.pool(y)
    up = m.unpool(pooled, idx, output_size=y.shape[-2:])
    assert (up != 0).sum() <= pooled.numel() and torch.equal(up.amax(dim=(2, 3)), y.amax(dim=(2, 3)))


def test_norm_is_a_choice_of_cp_resnet_too():
    plain = MODELS.build("cp_resnet", {}, where="model", in_channels=1)
    mixed = MODELS.build("cp_resnet", {"norm": "mixup"}, where="model", in_channels=1)
    assert type(mixed.stem[1]).__name__ == "MixupNorm"
    assert count_parameters(plain) - count_parameters(mixed) == 2 * (24 + 96)    # two BNs without affine params


def test_warm_restarts_schedule_as_the_paper():
    from sceneshift.training.optim import build_optimizer, restart_epochs
    assert restart_epochs(10, 2, 400) == [10, 30, 70, 150, 310]       # "after 11, 31, 71, 151, 311 epochs"
    t = {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0, "scheduler": "warm_restarts",
         "epochs": 40, "restart_epochs": 10, "restart_mult": 2, "min_lr": 1e-5}
    sched = build_optimizer([torch.nn.Parameter(torch.zeros(1))], t)["lr_scheduler"]["scheduler"]
    lrs = []
    for _ in range(32):
        lrs.append(sched.optimizer.param_groups[0]["lr"])
        sched.optimizer.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.1) and lrs[10] == pytest.approx(0.1) and lrs[30] == pytest.approx(0.1)
    assert lrs[9] < 0.01 and lrs[29] < 0.002 and min(lrs) >= 1e-5
    assert lrs[20] == pytest.approx(1e-5 + (0.1 - 1e-5) * 0.5)        # halfway through the 20-epoch cycle


def test_seed002_recipe_end_to_end_on_the_tiny_benchmark(tiny_benchmark, tmp_path):
    from sceneshift.cli import train_and_evaluate
    run = train_and_evaluate("seed002", data=tiny_benchmark, out=tmp_path / "s002", log=lambda *a: None,
                             overrides=["train.epochs=2", "train.progress=false", "model.norm=rfn"])
    import json
    report = json.loads((run / "eval" / "tiny-evaluate" / "report.json").read_text())
    assert set(report["groups"]) == {"source", "seen", "unseen"} and report["overall"]["n"] > 0
    assert report["complexity"]["parameters"] == 28_682           # width 16, event block, 10 classes


def test_seed002_recipe_gives_each_norm_its_own_lambda():
    """The recipe's MixupNorm lambda must not leak into RFN (0.5) or ResNorm (0.1); an override still applies."""
    from sceneshift.api import build_model
    lam = {n: build_model("seed002", overrides=[f"model.norm={n}"]).backbone.norm1.lam for n in ("mixup", "resnorm", "rfn")}
    assert lam == {"mixup": 0.1, "resnorm": 0.1, "rfn": 0.5}
    assert build_model("seed002", overrides=["model.norm=mixup", "model.norm_lambda=0.3"]).backbone.norm1.lam == 0.3
