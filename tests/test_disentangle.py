"""Seed 000: masks, loss values on hand-computed examples, batch composition per configuration,
target scene labels never used by C2/C2M, and a tiny end-to-end C3M run (train, evaluate, Table 1)."""
import json
import math
import warnings

import numpy as np
import pytest
import torch

from sceneshift.augment import check_augmentations
from sceneshift.data.datasets import Clip
from sceneshift.data.domain import Domain
from sceneshift.data.splits import SplitData
from sceneshift.heads.losses import cross_entropy, variance_loss
from sceneshift.models import MODELS, count_parameters
from sceneshift.networks import build_network
from sceneshift.networks.disentangle import DisentangleNet
from sceneshift.registry import RecipeError
from sceneshift.training import SYSTEMS
from sceneshift.training.disentangle import CONFIGS, DisentangleSystem, config_loss
from sceneshift.training.recipe import apply_overrides, check_recipe, load_recipe, read_recipe

LN3 = math.log(3.0)
DEVICES = ["a", "b", "c"]
DOMAIN = Domain(classes=("x", "y", "z"), devices=tuple(DEVICES), source="a")


def create_model(name, in_channels, **options):
    return MODELS.build(name, options, in_channels=in_channels)


def small_cfg(config: str, **over) -> dict:
    """A packaged recipe made tiny: small core, source device named (the domain comes separately)."""
    return load_recipe(config.lower(), ["model.embed_dim=8", "model.hidden=16", "train.batch_size=8",
                                        "system_options.source_device=a", "data.root=/nonexistent"]
                       + [f"{k}={v}" for k, v in over.items()])


class FixedSource:
    """A stand-in DataSource: every split is the given SplitData."""

    def __init__(self, data):
        self.data = data

    def split(self, name):
        return self.data


def make_system(cfg: dict, data: SplitData | None = None, domain: Domain = DOMAIN) -> DisentangleSystem:
    """The system as ``train`` builds it (options from the recipe's system_options), set up for fitting."""
    system = SYSTEMS.build(cfg["system"], cfg["system_options"], where="system_options", cfg=cfg, domain=domain,
                           data=FixedSource(data))
    assert isinstance(system, DisentangleSystem)
    if data is not None:
        system.setup("fit")
    return system


def fake_split(n_source=10, n_target=6, samples=16000, seed=0) -> SplitData:
    rng = np.random.default_rng(seed)
    devs = np.array([0] * n_source + [1 + i % 2 for i in range(n_target)])
    clips = [Clip(f"audio/x-{i}-{DEVICES[d]}.wav", "x", DEVICES[d]) for i, d in enumerate(devs)]
    waves = (0.1 * rng.standard_normal((len(devs), samples))).astype(np.float16)
    return SplitData(waves, clips, rng.integers(0, 3, len(devs)), devs, [])


# --- network and masks ---------------------------------------------------------------------------

def test_masks_select_embedding_halves():
    core = create_model("kaggle_cnn", in_channels=1, embed_dim=8, hidden=16)
    net = DisentangleNet(torch.nn.Identity(), core, num_classes=3, num_devices=2, masked=True)
    assert net.mask("+").tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    assert net.mask("-").tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert net.mask("all").tolist() == [1] * 8 and net.eval_mask == "+"
    z = torch.randn(5, 8)
    z2 = z.clone()
    z2[:, 4:] = 100.0                                   # the second half cannot reach the heads under m+
    for a, b in zip(net.heads(z, net.mask("+")), net.heads(z2, net.mask("+"))):
        assert torch.allclose(a, b)
    z3 = z.clone()
    z3[:, :4] = -7.0                                    # nor the first half under m-
    for a, b in zip(net.heads(z, net.mask("-")), net.heads(z3, net.mask("-"))):
        assert torch.allclose(a, b)
    # per-row masks (training: m+ on the first batch half, m- on the second)
    rows = torch.stack([net.mask("+"), net.mask("-")])
    s, d = net.heads(z[:2], rows)
    assert torch.allclose(s[0], net.head(z[0] * net.mask("+"))) and torch.allclose(d[1], net.device_head(z[1] * net.mask("-")))
    unmasked = DisentangleNet(torch.nn.Identity(), create_model("kaggle_cnn", in_channels=1, embed_dim=8, hidden=16),
                              3, 2, masked=False)
    assert unmasked.eval_mask == "all"
    with pytest.raises(ValueError, match="model.embed_dim"):
        DisentangleNet(torch.nn.Identity(), create_model("kaggle_cnn", in_channels=1, embed_dim=7, hidden=16), 3, 2, True)
    with pytest.raises(ValueError, match="eval_mask"):
        DisentangleNet(torch.nn.Identity(), core, 3, 2, True, eval_mask="half")


def test_embedding_doubled_in_masked_recipes():
    for name in ("c0", "c1", "c2", "c3"):
        cfg = load_recipe(name)
        assert cfg["model"]["embed_dim"] == 256
        assert cfg["network"]["name"] == "disentangle" and cfg["network"]["masked"] is False
    for name in ("c2m", "c3m"):
        cfg = load_recipe(name)
        assert cfg["model"]["embed_dim"] == 512
        assert cfg["network"] == {"name": "disentangle", "masked": True, "eval_mask": None}   # set by the system
        domain = Domain(classes=tuple("abcdefghij"), devices=tuple(DEVICES), source="a")
        net = build_network(cfg, domain)
        assert isinstance(net, DisentangleNet) and net.device_head.out_features == 3
        assert net.masked and 1.9e6 < count_parameters(net.backbone) < 2.05e6
        assert net(torch.randn(2, 64000)).shape == (2, 10)       # forward: scene logits under m+


# --- losses on hand-computed values ----------------------------------------------------------------

def test_cross_entropy_and_variance_by_hand():
    logits = torch.tensor([[0.0, LN3], [LN3, 0.0], [0.0, 0.0]])   # softmax .25/.75, .75/.25, .5/.5
    y = torch.tensor([1, 0, 0])
    assert cross_entropy(logits, y).item() == pytest.approx((2 * -math.log(0.75) + math.log(2)) / 3, abs=1e-6)
    rows = torch.tensor([False, False, True])
    assert cross_entropy(logits, y, rows).item() == pytest.approx(math.log(2), abs=1e-6)
    assert variance_loss(logits[:1]).item() == pytest.approx(0.0625, abs=1e-7)   # ((.25)^2 + (.25)^2) / 2
    assert variance_loss(logits[2:]).item() == pytest.approx(0.0, abs=1e-9)      # uniform: the minimum
    one_hot = torch.tensor([[100.0, 0.0, 0.0, 0.0]])
    assert variance_loss(one_hot).item() == pytest.approx(3 / 16, abs=1e-6)     # ((3/4)^2 + 3 (1/4)^2) / 4
    empty = torch.zeros(3, dtype=torch.bool)
    assert cross_entropy(logits, y, empty).item() == 0.0 and variance_loss(logits, empty).item() == 0.0
    with pytest.raises(ValueError, match="no label"):
        cross_entropy(logits, torch.tensor([1, -1, 0]))


# Four rows; first batch half = rows 0, 1; source rows = 0, 2.
SCENE = torch.tensor([[0.0, LN3], [LN3, 0.0], [0.0, 0.0], [0.0, LN3]])
DEVICE = torch.tensor([[0.0, 0.0], [0.0, LN3], [LN3, 0.0], [0.0, 0.0]])
Y, D = torch.tensor([1, 0, 0, 1]), torch.tensor([0, 1, 0, 1])
SOURCE, FIRST = torch.tensor([True, False, True, False]), torch.tensor([True, True, False, False])
CE75, LN2 = -math.log(0.75), math.log(2)
L_D_MASKED = (CE75 + LN2) / 2 + 500 * (0.0 + 0.0625) / 2          # CE(dev, second) + w_v var(dev, first)
CE_DEV_ALL = (LN2 + CE75 + CE75 + LN2) / 4
EXPECTED = {
    "C0": (CE75 * 3 + LN2) / 4,
    "C1": (CE75 + CE75) / 2 + (CE75 + LN2) / 2,                    # CE(target) + CE(source)
    "C2": (CE75 + LN2) / 2 + 10 * CE_DEV_ALL,                      # CE(source) + w_D CE(dev, all)
    "C3": (CE75 * 3 + LN2) / 4 + 10 * CE_DEV_ALL,
    "C2M": CE75 + 10 * L_D_MASKED,                                 # CE(first & source) = row 0 only
    "C3M": (CE75 + CE75) / 2 + 500 * (0.0 + 0.0625) / 2 + 10 * L_D_MASKED,
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_configuration_losses_by_hand(name):
    loss, parts = config_loss(CONFIGS[name], SCENE, DEVICE, Y, D, SOURCE, FIRST, w_device=10.0, w_var=500.0)
    assert loss.item() == pytest.approx(EXPECTED[name], rel=1e-5)
    assert (parts["loss_device"].item() == 0.0) == (not CONFIGS[name].device)


# --- batch composition -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_batch_composition(name):
    data = fake_split(n_source=12, n_target=12)
    cfg = small_cfg(name)
    loader = make_system(cfg, data).train_dataloader()
    batches = list(loader)
    used = 12 if name == "C0" else 24
    assert len(batches) == math.ceil(used / 8)
    seen = []
    mixed_first_half = False
    for wave, y, d, row in batches:
        assert len(row) == 8
        src = d == 0
        if name == "C0":
            assert src.all()
        else:
            assert src.sum() == 4 and (~src).sum() == 4            # B/2 source + B/2 target
            mixed_first_half |= bool(src[:4].any() and (~src[:4]).any())
            labels_given = CONFIGS[name].target_scene_labels
            assert (y[~src] >= 0).all() if labels_given else (y[~src] == -1).all()
        assert (y[src] == torch.from_numpy(data.labels[row[src].numpy()])).all()   # source labels intact
        seen += row[src].tolist()
    if name != "C0":
        assert mixed_first_half                                   # shuffled across batch positions
    counts = np.bincount(seen, minlength=12)                      # drawn without replacement:
    assert counts.min() >= 1 and counts.max() - counts.min() <= 1  # every source clip equally often


def test_bad_options_name_the_option():
    with pytest.raises(RecipeError, match=r"system_options.config: input should be .*'C3M'.*'C9'"):
        load_recipe("c3", ["system_options.config=C9"])
    with pytest.raises(RecipeError, match=r"system_options.config"):
        SYSTEMS.check("disentangle", {"config": "C9"}, "system_options")
    with pytest.raises(RecipeError, match=r"system_options.w_dev: unknown option \(allowed: .*w_device"):
        check_recipe(apply_overrides(read_recipe("c3"), ["system_options.w_dev=3"]))
    with pytest.raises(ValueError, match="train.batch_size"):
        make_system(small_cfg("C3", **{"train.batch_size": 7}), fake_split()).train_dataloader()
    with pytest.raises(ValueError, match="source_device"):
        make_system(small_cfg("C3", **{"system_options.source_device": "z"}), fake_split())
    with pytest.raises(ValueError, match="augment"):
        cfg = small_cfg("C3")
        cfg["augment"] = check_augmentations([{"name": "mixup"}])
        make_system(cfg, fake_split())
    # the source device defaults to the domain's; a dataset without one must name it
    cfg = load_recipe("c3", ["model.embed_dim=8", "model.hidden=16", "train.batch_size=8"])
    assert make_system(cfg, fake_split()).source_names == ["a"]
    with pytest.raises(ValueError, match="system_options.source_device"):
        make_system(cfg, fake_split(), domain=Domain(classes=DOMAIN.classes, devices=DOMAIN.devices))


# --- C2 / C2M never learn from target scene labels -------------------------------------------------

def _loss_and_grads(module, batch):
    module.zero_grad()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                          # self.log outside a Trainer
        loss = module.training_step(batch, 0)
    loss.backward()
    return loss.item(), [p.grad.clone() if p.grad is not None else None for p in module.parameters()]


@pytest.mark.parametrize("name", ["C2", "C2M", "C3"])
def test_target_scene_labels_unused_by_c2(name):
    torch.manual_seed(0)
    data = fake_split(n_source=8, n_target=8)
    cfg = small_cfg(name)
    module = make_system(cfg, data)
    module.net.eval()                                            # BatchNorm statistics fixed between passes
    wave, y, d, row = next(iter(module.train_dataloader()))
    truth = torch.from_numpy(data.labels[row.numpy()])           # labels as stored, target ones included
    corrupted = truth.clone()
    corrupted[d != 0] = (corrupted[d != 0] + 1) % 3              # every target label changed
    loss_a, grads_a = _loss_and_grads(module, (wave, truth, d, row))
    loss_b, grads_b = _loss_and_grads(module, (wave, corrupted, d, row))
    same = loss_a == pytest.approx(loss_b, rel=1e-6) and all(
        (a is None and b is None) or torch.allclose(a, b, atol=1e-7) for a, b in zip(grads_a, grads_b))
    if name == "C3":
        assert not same                                          # the check is sensitive: C3 uses them
    else:
        assert same
        # and the loader never hands them over: the batch it yields carries -1 for target clips
        assert (y[d != 0] == -1).all()
        loss_c, _ = _loss_and_grads(module, (wave, y, d, row))
        assert loss_c == pytest.approx(loss_a, rel=1e-6)


# --- tiny end-to-end C3M: train -> evaluate (+ band-wise) -> Table 1 -------------------------------

def test_c3m_end_to_end(tmp_path, tiny_benchmark):
    from sceneshift.cli import main
    from sceneshift.evaluation.evaluate import evaluate
    from sceneshift.evaluation.table1 import table1
    from sceneshift.training.run import train
    run = tmp_path / "c3m"
    train("c3m", data=tiny_benchmark, out=run, log=lambda *a: None,
          overrides=["train.epochs=2", "train.batch_size=16", "train.progress=false", "train.threads=1",
                     "model.embed_dim=64", "model.hidden=64"])
    metrics = (run / "logs" / "metrics.csv").read_text().splitlines()[0]
    for key in ("train/loss_scene", "train/loss_device", "val/acc_source", "val/acc_target", "val/device_acc"):
        assert key in metrics
    domain = json.loads((run / "domain.json").read_text())
    assert domain["source"] == "a" and domain["devices"] == ["a", "b", "c", "s1", "s2", "s3"]
    assert not (run / "eval").exists()                            # train() alone does not evaluate
    plain = evaluate(run, tiny_benchmark, log=lambda *a: None)
    assert (run / "eval" / "tiny-evaluate" / "report.json").is_file()
    assert plain["meta"]["adapted_devices"] == [] and plain["meta"]["benchmark_version"] == domain["benchmark_version"]
    matched = evaluate(run, tiny_benchmark, adapt="bandwise", log=lambda *a: None)
    assert matched["meta"]["adapt"] == "bandwise" and matched["overall"]["n"] == plain["overall"]["n"] == 360
    assert matched["meta"]["adapted_devices"] == ["s4", "s5", "s6"]    # by default: devices never trained on
    # the source device is not adapted: its predictions are the same; by default nor are the seen devices
    for d in ("a", "b"):
        assert matched["devices"][d]["log_loss"] == pytest.approx(plain["devices"][d]["log_loss"], rel=1e-6)
    assert abs(matched["devices"]["s4"]["log_loss"] - plain["devices"]["s4"]["log_loss"]) > 1e-6
    every = evaluate(run, tiny_benchmark, adapt="bandwise", adapt_devices="all", log=lambda *a: None)
    assert every["meta"]["adapted_devices"] == ["b", "c", "s1", "s2", "s3", "s4", "s5", "s6"]
    assert every["meta"]["out"].endswith("tiny-evaluate-bandwise-all")
    assert every["devices"]["a"]["log_loss"] == pytest.approx(plain["devices"]["a"]["log_loss"], rel=1e-6)
    assert abs(every["devices"]["b"]["log_loss"] - plain["devices"]["b"]["log_loss"]) > 1e-6
    assert every["devices"]["s4"]["log_loss"] == pytest.approx(matched["devices"]["s4"]["log_loss"], rel=1e-6)

    out = tmp_path / "table"
    assert main(["table1", str(run), "--adapt", "bandwise", str(run), "--data", str(tiny_benchmark),
                 "--out", str(out)]) == 0
    table = json.loads((out / "table1.json").read_text())
    first, adapted = table["rows"]
    assert first["config"] == "C3M" and first["adapt"] is None and adapted["adapt"] == "bandwise"
    assert set(first["masks"]) == {"+", "-"} and first["n"] == {"S": 40, "T": 200, "U": 120}
    for m in ("+", "-"):
        assert set(first["masks"][m]["scene"]) == {"S", "T", "U"} and set(first["masks"][m]["device"]) == {"S", "T"}
        assert all(0.0 <= v <= 1.0 for v in first["masks"][m]["device"].values())
    # Table 1's scene accuracy under the evaluation mask (+) agrees with the evaluation report
    assert first["devices"]["b"]["accuracy"] == pytest.approx(plain["devices"]["b"]["accuracy"])
    assert first["masks"]["+"]["scene"]["S"] == pytest.approx(plain["devices"]["a"]["accuracy"])
    md = (out / "table1.md").read_text()
    assert "| C3M | S |" in md and "C3M + bandwise" in md and "| s6 |" in md
