"""Speed options: cached front-end features, batched loading, precision and memory format, allocator settings."""
import json
import shutil

import numpy as np
import pytest
import torch

from sceneshift.data.splits import SplitData, WaveDataset, cached_transform, loader, with_features
from sceneshift.registry import RecipeError
from sceneshift.training.recipe import load_recipe

QUIET = lambda *a: None


def memmap_split(tmp_path, n=10, samples=8000, scale=0.1):
    rng = np.random.default_rng(0)
    path = tmp_path / "waves.npy"
    np.save(path, (scale * rng.standard_normal((n, samples))).astype(np.float16))
    waves = np.load(path, mmap_mode="r")
    return SplitData(waves, [None] * n, np.arange(n) % 3, np.arange(n) % 2, [])


class PerClip(torch.utils.data.Dataset):
    """The loading path before batched fetches: one copy per clip, then default collation."""

    def __init__(self, data):
        self.data = data

    def __len__(self):
        return len(self.data.labels)

    def __getitem__(self, r):
        return (torch.from_numpy(np.array(self.data.waves[r], dtype=np.float32)), int(self.data.labels[r]),
                int(self.data.devices[r]), r)


def test_batched_fetch_equals_per_clip_reads(tmp_path):
    data = memmap_split(tmp_path)
    from sceneshift.data.splits import EpochShuffle      # the order loader() uses: set by (seed, epoch)
    before = list(torch.utils.data.DataLoader(PerClip(data), batch_size=4,
                                              sampler=EpochShuffle(len(data.labels), seed=3)))
    batches = list(loader(data, 4, shuffle=True, seed=3))
    assert len(batches) == len(before) == 3
    for new, old in zip(batches, before):                # same order, same values, same dtypes
        assert all(torch.equal(a, b) and a.dtype == b.dtype for a, b in zip(new, old))
    for wave, y, d, rows in batches:
        for k, r in enumerate(rows.tolist()):
            w1, y1, d1, r1 = WaveDataset(data)[r]
            assert torch.equal(wave[k], w1) and (int(y[k]), int(d[k]), int(r1)) == (y1, d1, r)
        assert wave.dtype == torch.float32 and y.dtype == torch.int64


def test_front_end_features_are_cached_once(tmp_path):
    from sceneshift.frontend import FRONTENDS
    data = memmap_split(tmp_path)
    fe = FRONTENDS.build("logmel", {"n_mels": 32, "normalize": "zscore"}, sample_rate=16000).eval()
    cached = with_features(data, fe, key="k1", batch_size=4, log=QUIET)
    with torch.no_grad():
        direct = fe(torch.from_numpy(np.asarray(data.waves, dtype=np.float32))).numpy()
    assert cached.waves.dtype == np.float16 and cached.waves.shape == direct.shape
    assert np.allclose(cached.waves.astype(np.float32), direct, atol=2e-3 * np.abs(direct).max())
    assert cached.labels is data.labels and cached.clips is data.clips
    files = sorted(p.name for p in tmp_path.glob("*.features.npy"))
    assert len(files) == 1
    again = with_features(data, fe, key="k1", log=lambda *a: pytest.fail("recomputed"))
    assert np.array_equal(np.asarray(again.waves), np.asarray(cached.waves))
    with_features(data, fe, key="k2", log=QUIET)                     # another front end: another file
    assert len(list(tmp_path.glob("*.features.npy"))) == 2


def test_features_outside_float16_are_not_cached(tmp_path):
    data = memmap_split(tmp_path)
    out = cached_transform(data.waves, lambda x: x * 1e6, "huge", log=QUIET)
    assert out is None and not list(tmp_path.glob("*features*")) and not list(tmp_path.glob(".*tmp*"))
    assert with_features(SplitData(np.zeros((2, 10), np.float16), [None] * 2, np.zeros(2), np.zeros(2), []),
                         torch.nn.Identity(), "in-memory", log=QUIET) is None      # not a cache file: not cached


def test_speed_options_are_typed():
    t = load_recipe("cp_resnet", ["train.precision=bf16-mixed", "train.channels_last=true"])["train"]
    assert t["precision"] == "bf16-mixed" and t["channels_last"] is True and t["cache_features"] is False
    # the default recipe trains channels-last on cached features (docs/performance.md); a run can opt out
    t = load_recipe("baseline", [])["train"]
    assert t["precision"] == "32-true" and t["channels_last"] is True and t["cache_features"] is True
    assert load_recipe("baseline", ["train.cache_features=false"])["train"]["cache_features"] is False
    assert load_recipe("baseline", ["train.precision=32"])["train"]["precision"] == "32-true"
    with pytest.raises(RecipeError, match="train.precision: value error, must be 32"):
        load_recipe("baseline", ["train.precision=fp8"])


def test_allocator_settings_are_applied_once():
    from sceneshift.runtime import keep_freed_memory
    assert keep_freed_memory() is keep_freed_memory()


def test_allocator_mode_is_checked_and_default_changes_nothing(monkeypatch):
    from sceneshift import runtime
    monkeypatch.setattr(runtime, "_TUNED", [])
    with pytest.raises(ValueError, match="SCENESHIFT_MALLOC"):
        runtime.keep_freed_memory("fast")
    monkeypatch.setenv("SCENESHIFT_MALLOC", "default")
    assert runtime.keep_freed_memory() is False


@pytest.mark.parametrize("options", [["train.channels_last=true", "train.precision=bf16-mixed"],
                                     ["train.cache_features=true", "train.channels_last=true"],
                                     ["train.cache_features=false", "train.channels_last=false"]])
def test_training_with_speed_options(tiny_benchmark, tmp_path, monkeypatch, options):
    import sceneshift.training.classifier as classifier
    from sceneshift.cli import train_and_evaluate
    cached, real = [], classifier.with_features     # the splits the system swapped for cached features
    monkeypatch.setattr(classifier, "with_features", lambda *a, **k: cached.append(real(*a, **k)) or cached[-1])
    run = train_and_evaluate("baseline", data=tiny_benchmark, out=tmp_path / "run", log=QUIET,
                             overrides=["train.epochs=1", "train.progress=false", "train.batch_size=32", *options])
    report = json.loads((run / "eval" / "tiny-evaluate" / "report.json").read_text())
    assert report["overall"]["n"] == 360 and np.isfinite(report["overall"]["log_loss"])
    if "train.cache_features=true" in options:        # training and validation read the feature cache
        assert len(cached) == 2 and all(c is not None and c.waves.ndim == 4 for c in cached)
    if "train.cache_features=false" in options:       # the default recipe's settings before 2026-12-05
        assert not cached
    state = torch.load(run / "model.pt", weights_only=True)
    assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())   # weights stay fp32


needs_compiler = pytest.mark.skipif(not (shutil.which("g++") or shutil.which("c++") or shutil.which("gcc")),
                                    reason="torch.compile (inductor) needs a C++ compiler")


@needs_compiler
def test_compiled_backbone_trains_like_the_module():
    """train.compile: the compiled training step computes what the module does (outputs and gradients)."""
    from sceneshift.models.resnet_fsplit import resnet_fsplit
    from sceneshift.training.classifier import compiled
    torch.manual_seed(0)
    net = resnet_fsplit(in_channels=3, width=2, stages=2, blocks=1).train()
    x = torch.randn(4, 3, 16, 24)
    eager = net(x)
    eager.square().sum().backward()
    grads = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    out = compiled(net)(x)
    out.square().sum().backward()
    torch.testing.assert_close(out, eager, rtol=1e-4, atol=1e-5)
    for g, p in zip(grads, net.parameters()):
        torch.testing.assert_close(p.grad, g, rtol=1e-3, atol=1e-5)


@needs_compiler
def test_training_with_compile_keeps_the_checkpoint_format(tiny_benchmark, tmp_path):
    """A compiled run saves the module's own keys: evaluation (a strict load of model.pt) scores it."""
    from sceneshift.cli import train_and_evaluate
    run = train_and_evaluate("seed003_resnet", data=tiny_benchmark, out=tmp_path / "run", log=QUIET,
                             overrides=["train.epochs=1", "train.progress=false", "train.batch_size=32", "model.width=2",
                                        "model.stages=2", "model.blocks=1", "train.compile=true"])
    assert not any("_orig_mod" in k for k in torch.load(run / "model.pt", weights_only=True))
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert not any("_orig_mod" in k for k in ckpt["state_dict"])
    report = json.loads((run / "eval" / "tiny-evaluate" / "report.json").read_text())
    assert report["overall"]["n"] == 360 and np.isfinite(report["overall"]["log_loss"])
