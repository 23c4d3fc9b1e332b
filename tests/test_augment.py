"""Seed-003 augmentations: shape, seed determinism and the property each one must have."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sceneshift.augment import AUGMENTATIONS, build_augmentations, check_augmentations
from sceneshift.data.domain import Domain
from sceneshift.data.splits import SplitData
from sceneshift.registry import RecipeError

SR = 16000
DOMAIN = Domain(classes=tuple(f"c{i}" for i in range(4)), devices=("a", "b", "c"), source="a")
WAVE_AUGS = ["pitch_shift", "speed_change", "gaussian_noise", "same_scene_mix", "spectrum_correction", "reverb_drc"]


def build(name, **options):
    wave, spec = build_augmentations([{"name": name, **options}], DOMAIN, SR)
    return (list(wave) + list(spec))[0]


def batch(n=6, seconds=0.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = 0.1 * torch.randn(n, int(seconds * SR), generator=g)
    y = torch.nn.functional.one_hot(torch.arange(n) % 2, len(DOMAIN.classes)).float()
    device = torch.arange(n) % 3          # a, b, c, a, b, c
    return x, y, device


def sine(freq, seconds=1.0, onset=None):
    t = torch.arange(int(seconds * SR)) / SR
    x = 0.5 * torch.sin(2 * math.pi * freq * t)
    if onset is not None:
        x = x * (t >= onset)
    return x


def dominant_hz(x):
    spec = np.abs(np.fft.rfft(np.asarray(x, dtype=np.float64) * np.hanning(len(x))))
    return np.argmax(spec) * SR / len(x)


def split_data(waves, labels, devices):
    w = np.asarray(waves, dtype=np.float16)
    return SplitData(w, [None] * len(w), np.asarray(labels), np.asarray(devices), [])


@pytest.fixture(scope="module")
def fitted_pool():
    """Training data where device a is low-passed noise and b, c are differently coloured."""
    g = torch.Generator().manual_seed(1)
    noise = 0.1 * torch.randn(12, SR // 2, generator=g)
    spec = torch.fft.rfft(noise)
    f = torch.linspace(0, 1, spec.shape[-1])
    colour = {0: (f < 0.4).float() + 0.01, 1: torch.ones_like(f), 2: 0.3 + f}
    devices = np.arange(12) % 3
    waves = torch.stack([torch.fft.irfft(spec[i] * colour[int(devices[i])], n=SR // 2) for i in range(12)])
    return split_data(waves.numpy(), np.arange(12) % 2, devices)


def fit_if_needed(aug, pool):
    if hasattr(aug, "fit"):
        aug.fit(pool)
    return aug


@pytest.mark.parametrize("name", WAVE_AUGS)
def test_wave_shape_and_seed_determinism(name, fitted_pool):
    x, y, d = batch()
    runs = []
    for seed in (7, 7, 8):
        aug = fit_if_needed(build(name, seed=seed, p=1.0, **({"source_only": False}
                                                             if name in ("reverb_drc",) else {})), fitted_pool)
        assert aug.stage == "wave" and name in AUGMENTATIONS.names()
        if name == "reverb_drc":
            aug.set_bank(torch.stack([torch.exp(-torch.arange(800) / 100.0) * torch.randn(800, generator=torch.Generator().manual_seed(k)) for k in range(3)]))
        out, target = aug(x, y, d)
        assert out.shape == x.shape and out.dtype == x.dtype and torch.isfinite(out).all()
        assert torch.equal(target, y)                        # label-preserving
        runs.append(out)
    assert torch.equal(runs[0], runs[1]), "same seed must give the same output"
    changed = ~torch.isclose(runs[0], x).all(dim=1)
    assert changed.any()
    if name != "spectrum_correction":                        # deterministic given the fitted spectra
        assert not torch.equal(runs[0], runs[2]), "another seed must give another output"


def test_probability_zero_changes_nothing():
    x, y, d = batch()
    for name in ("gaussian_noise", "speed_change"):
        out, _ = build(name, p=0.0)(x, y, d)
        assert torch.equal(out, x)


def test_bad_options_name_the_augmentation():
    with pytest.raises(RecipeError, match=r"augment\[0\]\.name: unknown augmentation 'no_such_thing'"):
        build("no_such_thing")
    with pytest.raises(RecipeError, match=r"augment\[0\]\.beta: unknown option \(allowed: .*alpha"):
        build("mixup", beta=3)
    with pytest.raises(RecipeError, match=r"augment\[0\] \(mixup\): mixup.alpha"):
        build("mixup", alpha=0)
    with pytest.raises(ValueError, match="gaussian_noise.p"):
        build("gaussian_noise", p=1.5)
    with pytest.raises(RecipeError, match=r"augment\[0\]\.p: input should be a valid number"):
        build("gaussian_noise", p="often")
    # the domain and the sample rate are injected, never recipe options
    with pytest.raises(RecipeError, match=r"augment\[0\]\.sample_rate: not a recipe option .*data.sample_rate"):
        check_augmentations([{"name": "reverb_drc", "sample_rate": 8000}])
    with pytest.raises(RecipeError, match=r"augment\[1\]\.domain: not a recipe option"):
        check_augmentations([{"name": "mixup"}, {"name": "mixup", "domain": "a"}])
    # checking fills in the defaults and descends into one_of's choices
    checked = check_augmentations([{"name": "one_of", "choices": [{"name": "gaussian_noise"}]}])
    assert checked[0]["p"] == 1.0 and checked[0]["choices"][0]["snr_low"] == 15.0
    # the device augmentations default to source clips only, checked or built
    specs = [{"name": "spectrum_correction"}, {"name": "reverb_drc"}, {"name": "gaussian_noise"}]
    assert [s["source_only"] for s in check_augmentations(specs)] == [True, True, False]
    assert [a.source_only for a in build_augmentations(specs, DOMAIN, SR)[0]] == [True, True, False]
    with pytest.raises(RecipeError, match=r"augment\[0\]\.choices\[0\]\.snr: unknown option"):
        check_augmentations([{"name": "one_of", "choices": [{"name": "gaussian_noise", "snr": 3}]}])


def test_mixup_mixes_features_and_labels_alike():
    x = torch.rand(8, 3, 16, 20)
    y = torch.nn.functional.one_hot(torch.arange(8) % 4, 4).float()
    out, target = build("mixup", alpha=0.4, seed=1)(x, y, None)
    assert out.shape == x.shape and target.shape == y.shape
    assert torch.allclose(target.sum(1), torch.ones(8))
    # each output row is lam * x_i + (1 - lam) * x_j, and its label is the same combination
    lam = target.max(dim=1).values
    assert (target > 0).sum(1).le(2).all()
    assert not torch.equal(out, x)
    assert out.min() >= x.min() - 1e-6 and out.max() <= x.max() + 1e-6
    again, _ = build("mixup", alpha=0.4, seed=1)(x, y, None)
    assert torch.equal(out, again)
    assert (lam >= 0.5 - 1e-6).all()


def test_random_crop_takes_a_contiguous_window():
    x = torch.arange(4 * 2 * 3 * 30, dtype=torch.float32).view(4, 2, 3, 30)
    out, _ = build("random_crop", frames=12, seed=3)(x, None, None)
    assert out.shape == (4, 2, 3, 12)
    for i in range(4):
        s = int(out[i, 0, 0, 0] - x[i, 0, 0, 0])
        assert torch.equal(out[i], x[i, ..., s:s + 12])
    starts = {int(out[i, 0, 0, 0] - x[i, 0, 0, 0]) for i in range(4)}
    assert len(starts) > 1                                   # a random offset per clip
    short, _ = build("random_crop", frames=40)(x, None, None)
    assert torch.equal(short, x)                             # clips shorter than the crop stay whole


def test_spec_augment_masks_at_most_ten_percent_with_zeros():
    x = torch.rand(16, 3, 50, 100) + 1.0
    out, _ = build("spec_augment", seed=2)(x, None, None)
    assert out.shape == x.shape
    zero = out == 0
    assert torch.equal(out[~zero], x[~zero])                 # only zeros are introduced
    masked_frames = zero.all(dim=(1, 2)).sum(1)               # fully masked time columns per clip
    masked_bins = zero.all(dim=(1, 3)).sum(1)
    assert masked_frames.max() <= 10 and masked_bins.max() <= 5
    assert zero.any()


def test_spectrum_correction_moves_source_toward_reference(fitted_pool):
    aug = fit_if_needed(build("spectrum_correction", n_fft=256, hop_length=64), fitted_pool)
    spectra = aug.device_spectra
    assert (spectra > 0).all(), "every device's spectrum is measured (no device left at zero)"
    assert torch.allclose(aug.reference, spectra[1:].mean(0))  # mean of the non-source devices b, c
    x = torch.from_numpy(np.asarray(fitted_pool.waves[:6], dtype=np.float32))
    d = torch.from_numpy(fitted_pool.devices[:6])
    out, _ = aug(x, None, d)
    assert torch.equal(out[d != 0], x[d != 0])               # only source clips are corrected

    def log_distance(w):
        from sceneshift.augment.device import mean_spectrum
        s = mean_spectrum(w[None].numpy(), np.array([0]), 256, 64)
        return float((torch.log(s + 1e-8) - torch.log(aug.reference + 1e-8)).abs().mean())
    for i in np.flatnonzero(d.numpy() == 0):
        assert log_distance(out[i]) < 0.5 * log_distance(x[i])


def test_spectrum_correction_takes_the_source_from_the_domain(fitted_pool):
    """The source device is the domain's, wherever it sits in the device list (no literal 'a')."""
    domain = Domain(classes=DOMAIN.classes, devices=("ref", "dev1", "dev2"), source="dev1")
    wave, _ = build_augmentations([{"name": "spectrum_correction", "n_fft": 256, "hop_length": 64}], domain, SR)
    aug = wave[0]
    aug.fit(fitted_pool)
    assert aug.source_index == 1
    assert torch.allclose(aug.reference, aug.device_spectra[[0, 2]].mean(0))
    x = torch.from_numpy(np.asarray(fitted_pool.waves[:6], dtype=np.float32))
    d = torch.from_numpy(fitted_pool.devices[:6])
    out, _ = aug(x, None, d)
    assert torch.equal(out[d != 1], x[d != 1]) and not torch.allclose(out[d == 1], x[d == 1])
    # a run whose dataset names no source device: source-only augmentations leave every clip alone
    wave, _ = build_augmentations([{"name": "spectrum_correction", "n_fft": 256, "hop_length": 64}],
                                  Domain(classes=DOMAIN.classes, devices=("a", "b", "c")), SR)
    with pytest.raises(ValueError, match="source device"):
        wave[0].fit(fitted_pool)


def test_spectrum_correction_never_divides_by_zero():
    aug = build("spectrum_correction", n_fft=64, hop_length=16, max_gain_db=20)
    source = torch.zeros(33)
    source[5:20] = 1.0                                       # empty bins in |A|
    aug.set_spectra(source, torch.ones(33))
    assert torch.isfinite(aug.ratio).all()
    assert aug.ratio.max() <= 10 ** (20 / 20) + 1e-4 and aug.ratio.min() > 0
    with pytest.raises(ValueError, match="other device"):
        only_a = split_data(np.random.randn(3, 400), [0, 1, 0], [0, 0, 0])
        build("spectrum_correction", n_fft=64, hop_length=16).fit(only_a)


def test_reverb_identity_impulse_and_tail():
    aug = build("reverb_drc", seed=0, ratio=[1.0, 1.0], source_only=False)
    x, y, d = batch(n=3)
    aug.set_bank(torch.nn.functional.pad(torch.ones(1, 1), (0, 99)))   # a unit impulse: no room
    out, _ = aug(x, y, d)
    assert torch.allclose(out, x, atol=1e-5)
    decay = torch.exp(-torch.arange(2000) / 300.0)
    aug.set_bank((decay / decay.norm())[None])
    click = torch.zeros(1, SR // 2)
    click[0, 100] = 1.0
    wet, _ = aug(click, y[:1], d[:1])
    assert wet[0, 600:2000].abs().sum() > 0.1 * wet[0].abs().sum()    # energy after the click: a tail


def test_drc_reduces_dynamic_range():
    from sceneshift.augment.device import compress
    x = torch.cat([0.01 * sine(500, 0.5), 0.8 * sine(500, 0.5)])[None]
    out = compress(x, torch.tensor([-20.0]), torch.tensor([8.0]), frame=160, smooth=1)
    quiet, loud = out[0, :7000].abs().max(), out[0, -7000:].abs().max()
    assert loud / quiet < 0.5 * (0.8 / 0.01)


def test_real_rooms_load_at_the_run_rate(shared_dir, tmp_path, monkeypatch):
    from sceneshift.data.irs import load_impulse_responses
    bank = load_impulse_responses(shared_dir / "data" / "rooms", SR, 0.5)
    assert isinstance(bank, np.ndarray) and bank.dtype == np.float32
    assert bank.shape == (96, SR // 2)
    assert np.allclose(np.linalg.norm(bank, axis=1), np.ones(96), atol=1e-4)
    assert (np.abs(bank).argmax(axis=1) < SR // 100).all()  # aligned on the direct path
    # reverb_drc loads the same bank at the recipe's rate when it first runs
    aug = build("reverb_drc", rooms=str(shared_dir / "data" / "rooms"), max_ir_seconds=0.5, source_only=False)
    x, y, d = batch(n=2)
    out, _ = aug(x, y, d)
    assert torch.equal(aug.bank, torch.from_numpy(bank)) and not torch.allclose(out, x)
    # without the shared material, the default rooms fail with the option to set (the GPU check's case)
    monkeypatch.setenv("SCENESHIFT_SHARED", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="reverb_drc: no rooms folder named.*default one is missing"):
        build("reverb_drc", source_only=False)(x, y, d)


def test_pitch_shift_changes_pitch_not_tempo():
    from sceneshift.augment.signal import phase_vocoder, read_rows
    x = sine(440, 1.0, onset=0.5)[None]
    f = torch.tensor([2 ** (3 / 12)])
    out = read_rows(phase_vocoder(x, f), f, x.shape[-1], n_valid=(x.shape[-1] * f).floor())
    assert out.shape == x.shape
    assert abs(dominant_hz(out[0, SR // 2 + 800:]) - 440 * 2 ** (3 / 12)) < 8
    env = out[0].abs().unfold(0, 400, 400).mean(1)
    assert env[:18].max() < 0.1 * env[22:].mean()            # the onset stays at 0.5 s
    aug = build("pitch_shift", semitones=2, seed=0)
    shifted, _ = aug(sine(1000, 1.0)[None].repeat(4, 1), None, None)
    for row in shifted:
        assert 1000 * 2 ** (-2 / 12) - 8 < dominant_hz(row[2000:]) < 1000 * 2 ** (2 / 12) + 8


def test_speed_change_scales_frequency_and_time():
    from sceneshift.augment.signal import read_rows
    x = sine(440, 1.0, onset=0.5)[None]
    out = read_rows(x, torch.tensor([1.25]), x.shape[-1])
    assert abs(dominant_hz(out[0, int(0.45 * SR):int(0.75 * SR)]) - 550) < 8
    env = out[0].abs().unfold(0, 400, 400).mean(1)
    assert env[:9].max() < 0.1 * env[11:19].mean()           # the onset moved to 0.4 s
    aug = build("speed_change", low=0.9, high=1.1)
    y, _ = aug(x.repeat(3, 1), None, None)
    assert y.shape == (3, SR)


def test_noise_has_the_drawn_snr():
    x = sine(700, 1.0)[None].repeat(20, 1)
    out, _ = build("gaussian_noise", snr_low=10, snr_high=20, seed=4)(x, None, None)
    snr = 10 * torch.log10(x.pow(2).mean(1) / (out - x).pow(2).mean(1))
    assert (snr > 9.5).all() and (snr < 20.5).all() and snr.std() > 0.5


def test_same_scene_mix_only_mixes_within_a_scene():
    tones = {0: 300.0, 1: 1200.0}
    labels = np.array([0, 1] * 4)
    pool = split_data(torch.stack([sine(tones[int(c)], 0.5) * (0.5 + 0.1 * i) for i, c in enumerate(labels)]).numpy(),
                      labels, np.zeros(8, dtype=int))
    aug = build("same_scene_mix", seed=5)
    aug.fit(pool)
    x = torch.stack([sine(tones[int(c)] * 1.5, 0.5) for c in labels[:4]])   # other tones, same scenes
    y = torch.nn.functional.one_hot(torch.from_numpy(labels[:4]), 4).float()
    out, target = aug(x, y, torch.zeros(4, dtype=torch.long))
    assert torch.equal(target, y)
    for i, c in enumerate(labels[:4]):
        spec = np.abs(np.fft.rfft(out[i].numpy()))
        other = tones[1 - int(c)]
        assert spec[int(tones[int(c)] / 2)] > 10 * spec[int(other / 2)]     # partner of the same scene only
        assert spec[int(tones[int(c)] * 1.5 / 2)] > 0                        # original still there
    assert torch.allclose(out.pow(2).mean(1), x.pow(2).mean(1), rtol=1e-3)  # level kept


def test_one_of_applies_one_augmentation_to_a_share_of_rows():
    wave, _ = build_augmentations([{"name": "one_of", "p": 0.5, "seed": 1, "choices": [
        {"name": "gaussian_noise", "snr_low": 0, "snr_high": 0}, {"name": "spectrum_correction", "n_fft": 64,
                                                                    "hop_length": 16}]}], DOMAIN, SR)
    aug = wave[0]
    aug.choices[1].set_spectra(torch.ones(33), torch.full((33,), 2.0))   # a pure gain of 2 (6 dB)
    x = sine(500, 0.25)[None].repeat(400, 1)
    device = torch.arange(400) % 3
    out, _ = aug(x, None, device)
    changed = ~torch.isclose(out, x).all(1)
    assert 0.35 < changed.float().mean() < 0.6
    doubled = torch.isclose(out[:, 100:-100], 2 * x[:, 100:-100], atol=1e-4).all(1)
    assert (device[doubled] == 0).all() and doubled.any()    # source-only child touched device a only
    noisy = changed & ~doubled
    assert noisy.any()
    with pytest.raises(ValueError, match="one_of.choices"):
        build_augmentations([{"name": "one_of", "choices": []}], DOMAIN, SR)


def test_offline_generation_writes_the_same_kind_of_data(tiny_benchmark, tmp_path):
    """`augment generate` appends source-device copies made by the very modules used on the fly."""
    import soundfile as sf
    from sceneshift.augment.offline import augmented_batches, generate
    from sceneshift.data.datasets.tau import TauDataset
    from sceneshift.data.splits import DataSource
    from sceneshift.training.recipe import resolve
    quiet = lambda *a: None
    specs = [{"name": "gaussian_noise", "snr_low": 20, "snr_high": 30, "seed": 2}, {"name": "spectrum_correction"}]
    cfg = resolve("seed003_resnet", tiny_benchmark, [])
    cfg["augment"] = [specs[0], {"name": "one_of", "p": 0.5, "choices": specs[1:]}, {"name": "mixup"}]
    out = generate(cfg, tmp_path / "extra", seed=11, log=quiet)
    before, after = TauDataset(tiny_benchmark).clips("train"), TauDataset(out).clips("train")
    n_source = sum(c.device == "a" for c in before)
    new = after[len(before):]
    assert after[:len(before)] == before and len(new) == 2 * n_source   # one copy per augmentation
    assert all(c.device == "a" and ("-gaussian_noise0-a" in c.filename or "-spectrum_correction0-a" in c.filename)
               for c in new)
    assert len(TauDataset(out).clips("evaluate")) == len(TauDataset(tiny_benchmark).clips("evaluate"))
    extra = DataSource({**cfg["data"], "root": str(out)}, log=quiet).split("train")
    assert len(extra.clips) == len(after) and not extra.skipped

    # the first generated noise clip equals the on-the-fly module's output for the same seed
    domain = Domain(classes=tuple(sorted({c.scene for c in before})), devices=("a", "b", "c", "s1", "s2", "s3"),
                    source="a")
    made = Domain.from_dataset(TauDataset(tiny_benchmark), before)     # the domain generate() works with
    assert (made.classes, made.devices, made.source) == (domain.classes, domain.devices, domain.source)
    train = DataSource(cfg["data"], domain, log=quiet).split("train")
    wave, _ = build_augmentations(specs[:1], domain, cfg["data"]["sample_rate"])
    wave[0].reseed(11)
    rows = np.flatnonzero(train.devices == 0)
    r, on_the_fly = next(augmented_batches(wave[0], train, rows, 10))
    offline, sr = sf.read(str(out / new[0].filename), dtype="float32")
    assert sr == SR and new[0].filename.startswith("audio/" + train.clips[int(r[0])].filename[6:-7])
    assert np.abs(offline - on_the_fly[0]).max() < 2e-4                 # 16-bit FLAC quantisation

    cfg["augment"] = [{"name": "spec_augment"}]
    with pytest.raises(ValueError, match="no waveform augmentation"):
        generate(cfg, tmp_path / "bad", log=quiet)
