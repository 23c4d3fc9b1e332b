"""Band-wise statistics matching: known statistics, std (not variance), originals never modified,
per-device fitting at evaluation time on any run."""
import hashlib

import numpy as np
import pytest
import torch

from sceneshift.adaptation import adapted, fit_adapters, per_device
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
    features_only = torch.nn.Module()                          # a network whose front end passes features through
    features_only.frontend = torch.nn.Identity()
    matches = fit_bandwise(features_only, source=(src, None), targets={"t": (tgt, None)})
    assert set(matches) == {"t"}
    match = matches["t"]
    t = torch.from_numpy(tgt.copy())
    out = match(t)
    assert torch.equal(t, torch.tensor(tgt))                   # the input tensor is not modified in place
    assert hashlib.sha1(tgt.tobytes()).hexdigest() == before
    m, s = band_statistics(torch.nn.Identity(), out.numpy())
    assert np.allclose(m[0], [0.0, 5.0], atol=1e-5) and np.allclose(s[0], [1.0, 3.0], atol=1e-5)
    # a constant target band is shifted, not blown up
    flat = BandwiseMatch([1.0], [2.0], [0.5], [0.0])
    assert torch.isfinite(flat(torch.full((1, 1, 1, 4), 0.5))).all()


def test_rows_per_device_and_adapted_context():
    # statistics of selected rows are those of the subset (rows in any order, the array untouched)
    x = known_features([0.0, 5.0], [1.0, 3.0], n=4)
    both = np.concatenate([x, known_features([7.0, -1.0], [2.0, 0.5], n=4)])
    m, s = band_statistics(torch.nn.Identity(), both, rows=[7, 5, 4, 6], batch_size=3)
    assert np.allclose(m[0], [7.0, -1.0], atol=1e-6) and np.allclose(s[0], [2.0, 0.5], atol=1e-6)

    net = torch.nn.Module()
    net.adapt = None
    with adapted(net, torch.nn.Identity()):
        assert isinstance(net.adapt, torch.nn.Identity)
    assert net.adapt is None

    # per_device: each device's rows are scored with its own adapter set, in the order of ``rows``
    class Clip:
        def __init__(self, device):
            self.device = device

    class Split:
        clips = [Clip(d) for d in ["a", "b", "a", "c", "b"]]

    adapters = {"b": torch.nn.Identity(), "c": torch.nn.Identity()}
    tag = {None: 0.0, id(adapters["b"]): 10.0, id(adapters["c"]): 20.0}

    def score(rows):            # which adapter is set while these rows are scored, plus the row index
        return np.array([[tag[id(net.adapt) if net.adapt is not None else None] + r] for r in rows])

    out = per_device(net, Split(), [4, 0, 3, 1], adapters, score)
    assert out[:, 0].tolist() == [14.0, 0.0, 23.0, 11.0]
    assert net.adapt is None                                   # restored after scoring


@pytest.fixture(scope="module")
def quick_baseline(tmp_path_factory, tiny_benchmark):
    """A baseline run after a few steps: adaptation works on any run, trained well or not."""
    from sceneshift.training.run import train
    out = tmp_path_factory.mktemp("bandwise") / "baseline"
    return train("baseline", data=tiny_benchmark, out=out, log=lambda *a: None,
                 overrides=["train.epochs=1", "train.limit_train_batches=3", "train.batch_size=16",
                            "train.progress=false", "model.embed_dim=32", "model.hidden=32"])


def test_bandwise_on_a_baseline_run(quick_baseline, tiny_benchmark):
    """Any run: per target device, fitted on the split's clips, source device unchanged, cache untouched."""
    from sceneshift.evaluation.evaluate import open_split
    from sceneshift.networks.predictor import load_predictor
    quiet = lambda *a: None
    predictor = load_predictor(quick_baseline)
    domain = predictor.domain
    assert domain.source == "a" and set(domain.devices) == {"a", "b", "c", "s1", "s2", "s3"}
    source, data = open_split(predictor.cfg, domain, "evaluate", tiny_benchmark, log=quiet)
    train_data = source.split(predictor.cfg["data"]["train_split"])
    digest = hashlib.sha1(np.asarray(data.waves).tobytes()).hexdigest()
    adapters = fit_adapters("bandwise", predictor.net, domain, train_data, data, which="all", log=quiet)
    assert set(adapters) == {"b", "c", "s1", "s2", "s3", "s4", "s5", "s6"}   # every non-source device
    untrained = fit_adapters("bandwise", predictor.net, domain, train_data, data, log=quiet)
    assert set(untrained) == {"s4", "s5", "s6"}                              # default: devices never trained on
    rows = np.arange(len(data.clips))
    plain = predictor.probabilities(data.waves)
    matched = per_device(predictor.net, data, rows, adapters,
                         lambda r: predictor.probabilities(data.waves, rows=r))
    devices = np.array([c.device for c in data.clips])
    assert np.allclose(matched[devices == "a"], plain[devices == "a"], atol=1e-6)
    assert not np.allclose(matched[devices == "s4"], plain[devices == "s4"], atol=1e-4)
    assert not np.allclose(matched[devices == "b"], plain[devices == "b"], atol=1e-4)
    assert np.allclose(matched.sum(1), 1.0, atol=1e-5)
    assert predictor.net.adapt is None                                   # restored after scoring
    assert hashlib.sha1(np.asarray(data.waves).tobytes()).hexdigest() == digest
    # with the default choice the seen devices are scored as without adaptation
    default = per_device(predictor.net, data, rows, untrained,
                         lambda r: predictor.probabilities(data.waves, rows=r))
    seen = np.isin(devices, ["a", "b", "c", "s1", "s2", "s3"])
    assert np.allclose(default[seen], plain[seen], atol=1e-6)
    assert np.allclose(default[devices == "s4"], matched[devices == "s4"], atol=1e-6)
    # each device's adapter maps that device's band statistics onto the source ones
    sm, ss = band_statistics(predictor.net.frontend, train_data.waves, train_data.rows(device="a"))
    feats = predictor.net.frontend(torch.from_numpy(np.asarray(data.waves[devices == "c"], dtype=np.float32)))
    m, s = band_statistics(torch.nn.Identity(), adapters["c"](feats).numpy())
    assert np.allclose(m, sm, atol=1e-3) and np.allclose(s, ss, rtol=1e-3, atol=1e-3)
    with pytest.raises(ValueError, match="--adapt"):
        fit_adapters("histogram", predictor.net, domain, train_data, data)


def test_adaptation_needs_a_single_network():
    class Ensemble:            # an ensemble or two-stage predictor has no single front end to adapt
        cfg = {}
    with pytest.raises(ValueError, match="run folder"):
        fit_adapters("bandwise", Ensemble(), None, None, None)
