"""Seed 001's network parts (issue 9): Wavegram front end, attention, MobileFaceNet, ArcFace."""
from __future__ import annotations

import math

import pytest
import torch

from sceneshift.frontend import FRONTENDS
from sceneshift.heads import HEADS
from sceneshift.models import MODELS, count_parameters


def test_wavegram_frames_line_up_and_the_two_variants_differ_in_size():
    full = FRONTENDS.build("logmel_wavegram", {}, where="frontend", sample_rate=16000)
    rank1 = FRONTENDS.build("logmel_wavegram", {"wavegram": "rank1"}, where="frontend", sample_rate=16000)
    x = 0.1 * torch.randn(2, 64000)
    out = full(x)
    assert out.shape == (2, 2, 128, 126) and rank1(x).shape == out.shape
    assert count_parameters(full) == 128 * 1024 + 128 and count_parameters(rank1) == 1024 + 1 + 128 + 128
    # per-clip z-normalised channels
    assert torch.allclose(out.mean(dim=(2, 3)), torch.zeros(2, 2), atol=1e-4)
    # the rank-1 Wavegram's rows are affine copies of one filtered signal
    rows = rank1.wavegram(x[:1, None])[0]
    centred = rows - rows.mean(dim=1, keepdim=True)
    assert torch.linalg.matrix_rank(centred.double(), tol=1e-3 * centred.abs().max().item()) == 1
    with pytest.raises(ValueError, match="frontend.wavegram"):
        FRONTENDS.build("logmel_wavegram", {"wavegram": "half"}, where="frontend", sample_rate=16000)


def test_attention_weights_span_zero_to_one():
    m = MODELS.build("mobilefacenet", {}, where="model", in_channels=2).eval()
    with torch.no_grad():
        w = m.attention.weights(3 * torch.randn(4, 2, 32, 40))
    assert w.min() > 0 and w.max() < 1
    assert w.min() < 0.5 < w.max()           # not every weight >= 0.5, as with the authors' BN + ReLU


def test_mobilefacenet_size_and_length_independence():
    m = MODELS.build("mobilefacenet", {}, where="model", in_channels=2).eval()
    assert 0.8e6 < count_parameters(m) < 0.9e6
    with torch.no_grad():
        assert m(torch.randn(2, 2, 128, 126)).shape == (2, 128)
        assert m(torch.randn(1, 2, 128, 313)).shape == (1, 128) and m(torch.randn(1, 2, 128, 40)).shape == (1, 128)


def test_arcface_margin_in_training_only():
    head = HEADS.build("arcface", {}, where="head", embed_dim=4, num_classes=3)
    e = torch.randn(5, 4)
    y = torch.eye(3)[[0, 1, 2, 0, 1]]
    cos = head.cosines(e)
    assert torch.allclose(head(e), 8.0 * cos)                                # scoring: plain scaled cosines
    z = head.training_logits(e, y)
    theta = torch.arccos(cos.clamp(-1, 1))
    want = torch.where(y.bool(), torch.where(theta + 0.2 < math.pi, torch.cos(theta + 0.2), cos - 0.2 * math.sin(0.2)),
                       cos)
    assert torch.allclose(z, 8.0 * want, atol=1e-4)
    assert (z[y.bool()] < head(e)[y.bool()]).all()                           # the margin lowers the true class
    assert torch.allclose(z[~y.bool()], head(e)[~y.bool()])


def test_seed001_pretraining_runs_end_to_end(tiny_benchmark, tmp_path):
    from sceneshift.training.run import train
    run = train("seed001_pretrain", data=tiny_benchmark, out=tmp_path / "s001", log=lambda *a: None,
                overrides=["train.epochs=1", "train.progress=false", "train.cache_features=true"])
    state = torch.load(run / "model.pt", weights_only=True)
    assert "frontend.wavegram.weight" in state                               # the learned front end is saved
    from sceneshift.networks.predictor import RunPredictor
    import numpy as np
    p = RunPredictor(run).probabilities(np.zeros((2, 64000), np.float32) + 0.01)
    assert p.shape == (2, 10) and np.allclose(p.sum(1), 1, atol=1e-5)


def test_the_learned_front_end_gets_gradients_in_training():
    from sceneshift.data.domain import Domain
    from sceneshift.training.classifier import ClassifierSystem
    from sceneshift.training.recipe import load_recipe
    system = ClassifierSystem(load_recipe("seed001_pretrain", []), Domain.placeholder(10), data=None)
    system.log = lambda *a, **k: None
    wave, y = 0.1 * torch.randn(4, 64000), torch.tensor([0, 1, 2, 3])
    system.training_step((wave, y, torch.zeros(4, dtype=torch.long), torch.arange(4)), 0).backward()
    assert system.frontend_learned and system.net.frontend.wavegram.weight.grad.abs().sum() > 0
    logmel = ClassifierSystem(load_recipe("baseline", []), Domain.placeholder(10), data=None)
    assert not logmel.frontend_learned


def test_seed001_drops_a_last_batch_of_one_clip_mobilefacenet_cannot_train_on():
    import numpy as np

    from sceneshift.data.splits import SplitData, loader
    from sceneshift.training.recipe import check_recipe, read_recipe
    train = check_recipe(read_recipe("seed001"))["train"]
    bs = train["batch_size"]
    data = SplitData(waves=np.zeros((bs + 1, 800), np.float16), clips=[None] * (bs + 1),
                     labels=np.zeros(bs + 1, np.int64), devices=np.zeros(bs + 1, np.int64), skipped=[])
    sizes = [len(b[0]) for b in loader(data, bs, shuffle=True, drop_last=train["drop_last"])]
    assert sizes == [bs]                                                  # the lone clip waits for the next epoch
    assert [len(b[0]) for b in loader(data, bs, shuffle=True)] == [bs, 1]  # the default keeps every clip
    assert [len(b[0]) for b in loader(data, bs + 5, shuffle=True, drop_last=True)] == [bs + 1]   # < one batch
    m = MODELS.build("mobilefacenet", {}, where="model", in_channels=2).train()
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        m(torch.randn(1, 2, 128, 40))
