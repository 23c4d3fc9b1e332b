"""Batch-norm statistics re-estimated on a target device (adabn, bandwise+adabn): exact statistics,
the network untouched outside the adapted block, evaluation and export on a trained run."""
import numpy as np
import pytest
import torch
from torch import nn

from sceneshift.adaptation import adapted, install
from sceneshift.adaptation.bandwise import band_statistics, fit_bandwise
from sceneshift.adaptation.batchnorm import (batches_of_two_or_more, fit_adabn, fit_bandwise_adabn, norm_layers,
                                             target_norm_state)


class TinyNet(nn.Module):
    """Front end (with its own batch norm, which adaptation must leave alone) -> conv + BN -> BN head."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.frontend = nn.Sequential(nn.Unflatten(1, (1, 4, 8)), nn.BatchNorm2d(1))
        self.adapt = None
        self.backbone = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.BatchNorm1d(3), nn.Linear(3, 2))

    def forward(self, wave):
        x = self.frontend(wave)
        x = self.adapt(x) if self.adapt is not None else x
        return self.head(self.backbone(x))


def target_waves(n=10, seed=1):
    return (3.0 + 2.0 * np.random.default_rng(seed).standard_normal((n, 32))).astype(np.float32)


def test_first_layer_statistics_are_exact_and_the_network_is_untouched():
    net = TinyNet().eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    waves = target_waves()
    with torch.no_grad():
        conv_out = net.backbone[0](net.frontend(torch.from_numpy(waves))).double()
    want_mean = conv_out.mean(dim=(0, 2, 3))
    want_var = conv_out.var(dim=(0, 2, 3), unbiased=False)
    for batch_size in (3, 128):         # float64 sums over all clips: the first layer's do not depend on batching
        state = target_norm_state(net, waves, None, batch_size=batch_size)
        assert set(state) == {"backbone.1.running_mean", "backbone.1.running_var",
                              "head.0.running_mean", "head.0.running_var"}      # not the front end's layer
        assert torch.allclose(state["backbone.1.running_mean"].double(), want_mean, atol=1e-5)
        assert torch.allclose(state["backbone.1.running_var"].double(), want_var, rtol=1e-4)
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)               # buffers restored
    assert not net.training and all(not m.training for m in net.modules())
    assert list(norm_layers(net)) == ["backbone.1", "head.0"]


def test_adapted_swaps_statistics_in_and_out_and_install_keeps_them():
    net = TinyNet().eval()
    x = torch.from_numpy(target_waves(6, seed=2))
    plain = net(x).detach()
    adapter = fit_adabn(net, source=None, targets={"s4": (target_waves(), None)})["s4"]
    assert adapter(torch.ones(2, 1, 4, 8)).equal(torch.ones(2, 1, 4, 8))       # features unchanged
    with adapted(net, adapter):
        assert torch.equal(net.backbone[1].running_mean, adapter.norm_state["backbone.1.running_mean"])
        moved = net(x).detach()
    assert not torch.allclose(moved, plain, atol=1e-4)
    assert torch.equal(net(x).detach(), plain) and net.adapt is None            # restored after the block
    install(net, adapter)
    assert torch.allclose(net(x).detach(), moved) and net.adapt is adapter


def test_bandwise_adabn_measures_on_matched_features():
    net = TinyNet().eval()
    source, target = target_waves(8, seed=3) * 0.5, target_waves(8, seed=4)
    both = fit_bandwise_adabn(net, source=(source, None), targets={"t": (target, None)})["t"]
    match = fit_bandwise(net, source=(source, None), targets={"t": (target, None)})["t"]
    with torch.no_grad():
        matched = match(net.frontend(torch.from_numpy(target)))
        conv_out = net.backbone[0](matched).double()
    m, _ = band_statistics(nn.Identity(), matched.numpy())
    sm, _ = band_statistics(net.frontend, source)
    assert np.allclose(m, sm, atol=1e-4)                      # the features are band-wise matched first
    assert torch.allclose(both.norm_state["backbone.1.running_mean"].double(), conv_out.mean(dim=(0, 2, 3)), atol=1e-5)
    assert torch.allclose(both(net.frontend(torch.from_numpy(target))), matched)


def test_batches_never_leave_a_single_clip():
    assert [len(b) for b in batches_of_two_or_more(10, 3)] == [3, 3, 4]
    assert [len(b) for b in batches_of_two_or_more(9, 3)] == [3, 3, 3]
    assert np.concatenate(batches_of_two_or_more(257, 128)).tolist() == list(range(257))
    with pytest.raises(ValueError, match="at least two clips"):
        batches_of_two_or_more(1, 128)
    with pytest.raises(ValueError, match="adabn: device s4 needs at least two clips"):
        fit_adabn(TinyNet().eval(), source=None, targets={"s4": (target_waves(1), None)})


def test_a_network_without_batch_norm_is_refused():
    net = nn.Module()
    net.frontend, net.adapt = nn.Identity(), None
    net.backbone = nn.Linear(4, 2)
    with pytest.raises(ValueError, match="adabn: the network has no batch-norm"):
        target_norm_state(net, np.zeros((2, 4), np.float32), None)


def test_adabn_on_a_trained_run_evaluate_and_export(tiny_run, tiny_benchmark, tmp_path):
    """``evaluate --adapt adabn|bandwise+adabn``: only untrained devices move; the adapted export carries
    the statistics (fp32 file = the PyTorch adaptation's logits)."""
    from sceneshift.evaluation.evaluate import evaluate
    from sceneshift.export.onnx import export_onnx
    from sceneshift.networks.predictor import RunPredictor, load_predictor, windows
    from sceneshift.data.audio import load_audio
    quiet = lambda *a: None  # noqa: E731
    plain = evaluate(tiny_run, tiny_benchmark, log=quiet)
    for method in ("adabn", "bandwise+adabn"):
        r = evaluate(tiny_run, tiny_benchmark, adapt=method, log=quiet)
        assert r["meta"]["adapted_devices"] == ["s4", "s5", "s6"]
        assert r["meta"]["out"].endswith(f"evaluate-{method}")
        assert r["devices"]["a"] == plain["devices"]["a"]          # the source device is not adapted
    files = sorted((tiny_benchmark / "audio").glob("*-s5.*"))[:6]
    run = RunPredictor(tiny_run)
    target = np.concatenate([windows(load_audio(f, run.sample_rate), run.n_samples) for f in files])
    adapter = fit_adabn(run.net, source=None, targets={"s5": (target, None)})["s5"]
    with adapted(run.net, adapter):
        want = run.logits(target)
    out = export_onnx(tiny_run, out=tmp_path / "s5.onnx", adapt="adabn", adapt_to=files, log=quiet)
    got = load_predictor(out["file"]).logits(target)
    # float32 agreement relative to the logits' scale: with the packages of a fresh install on 2026-12-03
    # (onnxruntime 1.32.0) the file differed by 1.3e-4 on logits of magnitude 5.2 (2.4e-5 relative)
    assert np.abs(got - want).max() <= 1e-4 * max(1.0, np.abs(want).max())
    assert np.abs(got - run.logits(target)).max() > 1e-3                 # and the adaptation is in the file
