"""Band-wise statistics matching: known statistics, std (not variance), originals never modified,
per-device fitting at evaluation time on any run."""
import hashlib

import numpy as np
import pytest
import torch

from sceneshift.adaptation import RowView, adapted, apply_adaptation, fit_adapters
from sceneshift.adaptation.bandwise import BandwiseMatch, band_statistics, fit_bandwise


def known_features(means, stds, n=6, frames=10):
    """Features ``(n, 1, F, frames)`` whose band f has exactly mean ``means[f]`` and std ``stds[f]``."""
    pattern = np.where(np.arange(n * frames) % 2 == 0, 1.0, -1.0).reshape(n, frames)   # mean 0, std 1
    x = np.stack([m + s * pattern for m, s in zip(means, stds)], axis=1)[:, None]
    return x.astype(np.float32)


def test_band_statistics_known_values():
    means, stds = [0.0, 3.0, -2.0], [1.0, 2.0, 0.5]
    x = known_features(means, stds)
    for batch_size in (1, 4, 128):                   # float64 sums: independent of the batch size
        m, s = band_statistics(torch.nn.Identity(), x, batch_size=batch_size)
        assert m.shape == (1, 3) and np.allclose(m[0], means, atol=1e-6) and np.allclose(s[0], stds, atol=1e-6)


def test_matching_divides_by_std_not_variance():
    # target band values 1 and 5: mean 3, std 2 (variance 4); source mean 0, std 1
    match = BandwiseMatch(source_mean=[0.0], source_std=[1.0], target_mean=[3.0], target_std=[2.0])
    x = torch.tensor([1.0, 5.0, 3.0]).view(1, 1, 1, 3)
    assert match(x).flatten().tolist() == pytest.approx([-1.0, 1.0, 0.0])   # the variance would give +-0.5
    # and scaling to a source with mean 10, std 4
    match = BandwiseMatch([10.0], [4.0], [3.0], [2.0])
    assert match(x).flatten().tolist() == pytest.approx([6.0, 14.0, 10.0])


def test_matched_target_has_source_statistics_and_originals_untouched():
    src = known_features([0.0, 5.0], [1.0, 3.0])
    tgt = known_features([2.0, -1.0], [4.0, 0.5], n=4)
    src.flags.writeable = tgt.flags.writeable = False          # like the cached memory maps
    before = hashlib.sha1(tgt.tobytes()).hexdigest()
    match = fit_bandwise(torch.nn.Identity(), src, tgt)
    t = torch.from_numpy(tgt.copy())
    out = match(t)
    assert torch.equal(t, torch.tensor(tgt))                   # the input tensor is not modified in place
    assert hashlib.sha1(tgt.tobytes()).hexdigest() == before
    m, s = band_statistics(torch.nn.Identity(), out.numpy())
    assert np.allclose(m[0], [0.0, 5.0], atol=1e-5) and np.allclose(s[0], [1.0, 3.0], atol=1e-5)
    # a constant target band is shifted, not blown up
    flat = BandwiseMatch([1.0], [2.0], [0.5], [0.0])
    assert torch.isfinite(flat(torch.full((1, 1, 1, 4), 0.5))).all()


def test_row_view_and_adapted_context():
    a = np.arange(20).reshape(10, 2)
    v = RowView(a, [7, 2, 5])
    assert len(v) == 3 and v[0:2].tolist() == [[14, 15], [4, 5]]
    net = torch.nn.Module()
    net.adapt = None
    with adapted(net, torch.nn.Identity()):
        assert isinstance(net.adapt, torch.nn.Identity)
    assert net.adapt is None


@pytest.fixture(scope="module")
def quick_baseline(tmp_path_factory, tiny_benchmark):
    """A baseline run after a few steps: adaptation works on any run, trained well or not."""
    from sceneshift.training.run import train
    out = tmp_path_factory.mktemp("bandwise") / "baseline"
    return train("baseline", data=tiny_benchmark, out=out, evaluate_after=False, log=lambda *a: None,
                 overrides=["train.epochs=1", "train.limit_train_batches=3", "train.batch_size=16",
                            "train.progress=false", "model.embed_dim=32", "model.hidden=32"])


def test_bandwise_on_a_baseline_run(quick_baseline, tiny_benchmark):
    """Any run: per target device, fitted on the split's clips, source device unchanged, cache untouched."""
    from sceneshift.evaluation.predictor import load_predictor
    from sceneshift.training.data import load_split
    predictor = load_predictor(quick_baseline)
    data = load_split(tiny_benchmark, "evaluate", predictor.cfg["data"], predictor.classes,
                      predictor.labels["devices"], log=lambda *a: None)
    digest = hashlib.sha1(np.asarray(data.waves).tobytes()).hexdigest()
    adapters = fit_adapters("bandwise", predictor, data, log=lambda *a: None)
    assert set(adapters) == {"b", "c", "s1", "s2", "s3", "s4", "s5", "s6"}   # every non-source device
    rows = np.arange(len(data.clips))
    plain = predictor.probabilities(data.waves)
    matched = apply_adaptation("bandwise", predictor, data, rows, log=lambda *a: None)
    devices = np.array([c.device for c in data.clips])
    assert np.allclose(matched[devices == "a"], plain[devices == "a"], atol=1e-6)
    assert not np.allclose(matched[devices == "s4"], plain[devices == "s4"], atol=1e-4)
    assert np.allclose(matched.sum(1), 1.0, atol=1e-5)
    assert predictor.net.adapt is None                                   # restored after scoring
    assert hashlib.sha1(np.asarray(data.waves).tobytes()).hexdigest() == digest
    # each device's adapter maps that device's band statistics onto the source ones
    from sceneshift.adaptation import source_waves
    sm, ss = band_statistics(predictor.net.frontend, source_waves(predictor, log=lambda *a: None))
    feats = predictor.net.frontend(torch.from_numpy(np.asarray(data.waves[devices == "c"], dtype=np.float32)))
    m, s = band_statistics(torch.nn.Identity(), adapters["c"](feats).numpy())
    assert np.allclose(m, sm, atol=1e-3) and np.allclose(s, ss, rtol=1e-3, atol=1e-3)
    with pytest.raises(ValueError, match="--adapt"):
        fit_adapters("histogram", predictor, data)


def test_adaptation_needs_a_single_network():
    class Ensemble:            # an ensemble or two-stage predictor has no single front end to adapt
        cfg = {}
    with pytest.raises(ValueError, match="run folder"):
        fit_adapters("bandwise", Ensemble(), None)
