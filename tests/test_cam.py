"""Class activation maps (seed 003): shapes, exactness, and the explain figure."""
from __future__ import annotations

import pytest
import torch

from sceneshift.data.domain import Domain
from sceneshift.evaluation.cam import class_activation_map
from sceneshift.training.recipe import check_recipe

FRONTEND = {"n_deltas": 2, "delta_width": 5, "delta_mode": "valid", "normalize": "minmax"}


def classifier(model: str, **options):
    from sceneshift.networks import build_network
    torch.manual_seed(0)
    cfg = check_recipe({"model": {"name": model, **options}, "frontend": {"name": "logmel", **FRONTEND}})
    return build_network(cfg, Domain.placeholder(10)).eval()


@pytest.mark.parametrize("model, freq_pool", [("resnet_fsplit", 1), ("fcnn", 8), ("fsfcnn", 4)])
def test_cam_shapes_and_exactness(model, freq_pool):
    net = classifier(model, width=2)
    wave = 0.1 * torch.randn(16000)                         # 1 s: 51 frames, 43 after the valid deltas
    r = class_activation_map(net, wave)
    assert r["features"].shape == (3, 64, 43)
    assert r["cam"].shape == (64, 43)                        # upsampled to the input grid
    assert r["cam_raw"].shape[0] == 64 // freq_pool          # the ResNet keeps every mel band
    c = r["class_index"]
    assert c == int(r["logits"].argmax())
    # the CAM's mean plus the bias is the class logit: the map is the whole evidence for the class
    assert torch.allclose(r["cam_raw"].mean() + net.head.bias[c], r["logits"][c], atol=1e-4)
    assert torch.allclose(r["logits"], net(wave[None])[0], atol=1e-4)
    other = class_activation_map(net, wave, class_index=(c + 1) % 10)
    assert other["class_index"] == (c + 1) % 10 and not torch.allclose(other["cam_raw"], r["cam_raw"])


def test_cam_needs_feature_maps():
    with pytest.raises(ValueError, match="feature_maps"):
        class_activation_map(classifier("kaggle_cnn"), torch.randn(16000))


def test_explain_writes_figure_for_run_and_two_stage(tmp_path, shared_dir):
    import matplotlib.image
    from sceneshift.evaluation.cam import explain
    from sceneshift.networks import build_network
    from sceneshift.training.recipe import resolve, save_config
    scenes = ["air_conditioner", "car_horn", "children_playing", "dog_bark", "drilling", "engine_idling",
              "gun_shot", "jackhammer", "siren", "street_music"]
    for name, recipe, classes in (("fine", "seed003_resnet", scenes),
                                  ("coarse", "seed003_resnet_3class", ["alert", "life", "machinery"])):
        cfg = resolve(recipe, tmp_path, ["model.width=2"])
        domain = Domain(classes=tuple(classes), devices=("a",), source="a")
        (tmp_path / name).mkdir()
        save_config(cfg, tmp_path / name / "config.yaml")
        domain.save(tmp_path / name / "domain.json")
        torch.save(build_network(cfg, domain).state_dict(), tmp_path / name / "model.pt")
    (tmp_path / "ts.yaml").write_text("two_stage: {fine: fine, coarse: coarse}\n")
    audio = sorted((shared_dir / "data" / "urbansound8k-16k").rglob("*.flac"))[0]
    one = explain(tmp_path / "fine", audio, out=tmp_path / "one.png", log=lambda *a: None)
    two = explain(tmp_path / "ts.yaml", audio, out=tmp_path / "two.png", class_name="siren", log=lambda *a: None)
    h1, h2 = matplotlib.image.imread(one).shape[0], matplotlib.image.imread(two).shape[0]
    assert h2 > 1.3 * h1                                     # a third panel: the 3-class model's CAM
    with pytest.raises(ValueError, match="--class"):
        explain(tmp_path / "fine", audio, class_name="bus", log=lambda *a: None)
