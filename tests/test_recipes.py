"""Typed recipes: every section checked against its schema, one sample rate, several bases, overrides."""
import librosa
import numpy as np
import pytest

from sceneshift.data.domain import Domain
from sceneshift.networks import build_network
from sceneshift.registry import RecipeError
from sceneshift.training.recipe import check_recipe, list_recipes, load_recipe


def write(tmp_path, text, name="r.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("name", list_recipes())
def test_every_packaged_recipe_loads_and_builds(name):
    cfg = load_recipe(name)
    assert set(cfg) == {"name", "system", "system_options", "network", "data", "frontend", "augment", "model",
                        "head", "train"}
    n = len(set(cfg["data"]["scene_map"].values())) if cfg["data"]["scene_map"] else 10
    net = build_network(cfg, Domain.placeholder(n, 6))
    assert net.head.out_features == n


def test_sample_rate_reaches_the_front_end():
    """data.sample_rate=44100 used to train with a 16 kHz filterbank on 44.1 kHz spectra."""
    cfg = load_recipe("baseline", ["data.sample_rate=44100", "frontend.n_fft=2048"])
    net = build_network(cfg, Domain.placeholder(10))
    assert net.frontend.sample_rate == 44100
    want = librosa.filters.mel(sr=44100, n_fft=2048, n_mels=64, norm="slaney")
    assert np.allclose(net.frontend.mel_fb.numpy(), want, atol=1e-6)
    with pytest.raises(RecipeError, match=r"frontend.sample_rate: .*set from data.sample_rate"):
        load_recipe("baseline", ["frontend.sample_rate=44100"])


def test_reverb_takes_the_recipe_sample_rate():
    from sceneshift.augment import build_augmentations
    cfg = load_recipe("seed003_resnet", ["data.sample_rate=22050"])
    wave, _ = build_augmentations(cfg["augment"], Domain.placeholder(10), cfg["data"]["sample_rate"])
    reverb = [c for c in wave[0].choices if c.name == "reverb_drc"][0]
    assert reverb.sample_rate == 22050 and reverb.frame == int(10 * 22050 / 1000)


def test_misspelled_sections_and_options_fail(tmp_path):
    with pytest.raises(RecipeError, match=r"unknown section 'augmnet' \(sections: name, system"):
        load_recipe(write(tmp_path, "base: baseline\naugmnet: []\n"))
    with pytest.raises(RecipeError, match="unknown section 'sytem'"):
        load_recipe(write(tmp_path, "sytem: disentangle\n"))
    with pytest.raises(RecipeError, match=r"train.lr_max: unknown option \(allowed: .*epochs"):
        load_recipe(write(tmp_path, "train:\n  lr_max: 1\n"))
    with pytest.raises(RecipeError, match=r"system_options.config: unknown option \(allowed: none\)"):
        load_recipe("baseline", ["system_options.config=C3"])          # the classifier system has no options
    with pytest.raises(RecipeError, match=r"system_options.w_dev: unknown option \(allowed: .*w_device"):
        load_recipe("c3m", ["system_options.w_dev=3"])
    with pytest.raises(RecipeError, match=r"augment\[0\].alpah: unknown option \(allowed: .*alpha"):
        load_recipe(write(tmp_path, "augment:\n  - {name: mixup, alpah: 0.2}\n"))
    with pytest.raises(RecipeError, match=r"augment\[0\].choices\[1\].semitone: unknown option"):
        load_recipe(write(tmp_path, "augment:\n  - name: one_of\n    choices:\n      - {name: speed_change}\n"
                                    "      - {name: pitch_shift, semitone: 2}\n"))
    with pytest.raises(RecipeError, match="unknown augmentation 'mixupp'"):
        load_recipe(write(tmp_path, "augment:\n  - {name: mixupp}\n"))
    with pytest.raises(RecipeError, match="unknown system 'semi'"):
        load_recipe("baseline", ["system=semi"])
    with pytest.raises(RecipeError, match=r"train.monitor: 'val/acc_source' is not logged by the classifier"):
        load_recipe("baseline", ["train.monitor=val/acc_source"])


@pytest.mark.parametrize("override, message", [
    ("train.epochs=ten", "train.epochs: input should be a valid integer"),
    ("train.epochs=1.5", "train.epochs: input should be a valid integer"),
    ("train.epochs=-1", "train.epochs: input should be greater than or equal to 1"),
    ("train.epochs=0", "train.epochs: input should be greater than or equal to 1"),
    ("train.lr=abc", "train.lr: input should be a valid number"),
    ("train.optimizer=adamm", "train.optimizer: input should be 'adam', 'adamw' or 'sgd'"),
    ("data.clip_seconds=0", "data.clip_seconds: input should be greater than 0"),
    ("model.embed_dim=big", "model.embed_dim: input should be a valid integer"),
    ("frontend.n_mels=sixty", "frontend.n_mels: input should be a valid integer"),
    ("train.limit_train_batches=2.5", "train.limit_train_batches: value error"),
    ("train.epochs", "expected key=value"),
])
def test_wrong_types_name_the_key(override, message):
    with pytest.raises(RecipeError) as e:
        load_recipe("baseline", [override])
    assert message in str(e.value) and "\n" not in str(e.value)


def test_values_are_typed_and_defaulted():
    cfg = load_recipe("baseline", ["train.epochs=3", "train.lr=5e-4", "model.embed_dim=128", "frontend.log=log"])
    assert cfg["train"]["epochs"] == 3 and cfg["train"]["lr"] == 5e-4 and cfg["model"]["embed_dim"] == 128
    assert cfg["model"]["hidden"] == 256 and cfg["frontend"]["window"] == "hann"      # defaults filled in
    assert load_recipe("baseline")["train"]["epochs"] == 30


def test_several_bases_and_component_replacement(tmp_path):
    cfg = load_recipe("seed003_resnet_3class")
    assert cfg["model"]["name"] == "resnet_fsplit" and cfg["data"]["scene_map"]["siren"] == "alert"
    assert load_recipe("seed003_fcnn_3class")["data"]["scene_map"] == cfg["data"]["scene_map"]
    # a new model name replaces the section: the Kaggle CNN's `hidden` is not inherited by fcnn
    child = write(tmp_path, "base: baseline\nmodel: {name: fcnn, width: 8}\n")
    assert load_recipe(child)["model"] == load_recipe("baseline", ["model.name=fcnn", "model.width=8"])["model"]
    assert "hidden" not in load_recipe(child)["model"]
    # bases beside the file win over packaged names; later bases override earlier ones
    write(tmp_path, "train: {epochs: 7, lr: 0.01}\n", "a.yaml")
    write(tmp_path, "train: {epochs: 9}\n", "b.yaml")
    c = load_recipe(write(tmp_path, "base: [baseline, a.yaml, b.yaml]\nname: c\n"))
    assert (c["train"]["epochs"], c["train"]["lr"], c["model"]["name"]) == (9, 0.01, "kaggle_cnn")
    write(tmp_path, "base: loop2.yaml\n", "loop1.yaml")
    write(tmp_path, "base: loop1.yaml\n", "loop2.yaml")
    with pytest.raises(RecipeError, match="cycle"):
        load_recipe(tmp_path / "loop1.yaml")
    with pytest.raises(FileNotFoundError, match="packaged recipes"):
        load_recipe("no-such-recipe")


def test_list_overrides_and_network_spec():
    cfg = load_recipe("seed003_resnet", ["augment.0.p=0.5", "augment.1.frames=150"])
    assert cfg["augment"][0]["p"] == 0.5 and cfg["augment"][1]["frames"] == 150
    with pytest.raises(RecipeError, match="not an index"):
        load_recipe("seed003_resnet", ["augment.9.p=0.5"])
    assert load_recipe("c2m")["network"] == {"name": "disentangle", "masked": True, "eval_mask": None}
    assert load_recipe("c3", ["system_options.eval_mask=all"])["network"]["eval_mask"] == "all"
    assert check_recipe({})["network"] == {"name": "classifier"}
