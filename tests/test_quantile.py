"""Band-wise quantile matching: a monotone bend of a band is undone, ties and tails stay finite and
monotone, quantiles do not depend on the batch size, and the adapted export carries the map."""
import numpy as np
import torch

from sceneshift.adaptation import adapted
from sceneshift.adaptation.quantile import KNOTS, MAX_SLOPE, QuantileMatch, band_quantiles, fit_quantile


def features(values):
    """``(n, 1, F, T)`` features from per-band value arrays ``(F, n * T)``, T = 50."""
    v = np.asarray(values, dtype=np.float32)
    f, total = v.shape
    return v.reshape(f, total // 50, 50).transpose(1, 0, 2)[:, None].copy()


def identity_frontend():
    net = torch.nn.Module()
    net.frontend = torch.nn.Identity()
    return net


def test_band_quantiles_per_band_and_independent_of_batch_size():
    rng = np.random.default_rng(0)
    x = features(np.stack([rng.normal(0, 1, 20000), rng.uniform(-3, 5, 20000)]))
    ref = None
    for batch_size in (7, 128, 400):
        q = band_quantiles(torch.nn.Identity(), x, batch_size=batch_size)
        assert q.shape == (1, 2, len(KNOTS))
        ref = q if ref is None else ref
        assert np.array_equal(q, ref)
    assert abs(q[0, 0, 49] - 0.0) < 0.05 and abs(q[0, 1, 49] - 1.0) < 0.1      # medians
    assert abs(q[0, 1, 0] - (-3 + 0.08)) < 0.05                                # 1st percentile of U(-3, 5)
    # the frame cap keeps every k-th frame of the clips one after another (here k = 10), whatever the batches
    frames = x[:, 0].transpose(1, 0, 2).reshape(2, -1)
    want = np.moveaxis(np.quantile(frames[:, ::10], KNOTS, axis=-1), 0, -1)
    for batch_size in (7, 128, 400):
        sub = band_quantiles(torch.nn.Identity(), x, batch_size=batch_size, max_values=2000)
        assert np.allclose(sub[0], want, atol=1e-6)
    assert np.abs(sub - ref).max() < 0.3                    # and close to the quantiles of every frame


def test_a_monotone_bend_is_undone_and_tails_are_shifted():
    rng = np.random.default_rng(1)
    src = rng.normal(0, 1, (1, 1, 100000))
    bend = lambda v: 0.2 * v + np.log1p(np.exp(v)) - 2     # noqa: E731  a soft floor, as a noise floor makes
    tgt = bend(src)
    sq = np.moveaxis(np.quantile(src, KNOTS, axis=-1), 0, -1)
    tq = np.moveaxis(np.quantile(tgt, KNOTS, axis=-1), 0, -1)
    match = QuantileMatch(sq, tq)
    grid = np.linspace(-2.2, 2.2, 200)
    got = match(torch.tensor(bend(grid), dtype=torch.float32).view(1, 1, 1, -1)).flatten().numpy()
    body = np.abs(grid) < 1.6                               # 5th-95th percentiles: the source value
    assert np.abs(got - grid)[body].max() < 0.02 and np.abs(got - grid).max() < 0.1    # the 1st-99th: nearly
    # the same target values matched by mean/std only stay bent
    from sceneshift.adaptation.bandwise import BandwiseMatch
    moments = BandwiseMatch([src.mean()], [src.std()], [tgt.mean()], [tgt.std()])
    assert np.abs(moments(torch.tensor(bend(grid), dtype=torch.float32).view(1, 1, 1, -1)).flatten().numpy()
                  - grid).max() > 0.3
    # beyond the outermost knots: slope 1, continuous at the knot
    hi = torch.tensor([tq[0, 0, -1], tq[0, 0, -1] + 1.0, tq[0, 0, -1] + 3.0], dtype=torch.float32).view(1, 1, 1, 3)
    out = match(hi).flatten().numpy()
    assert abs(out[0] - sq[0, 0, -1]) < 1e-4 and np.allclose(np.diff(out), [1.0, 2.0], atol=2e-3)


def test_plateaus_keep_the_map_finite_and_monotone():
    # a target band with a floor of identical values (a quarter of its frames) and a constant band
    rng = np.random.default_rng(2)
    floor = np.where(rng.random(5000) < 0.25, -4.0, rng.normal(0, 1, 5000))
    tgt = features(np.stack([floor, np.full(5000, 0.5)]))
    src = features(np.stack([rng.normal(0, 1, 5000), rng.normal(1, 2, 5000)]))
    match = fit_quantile(identity_frontend(), source=(src, None), targets={"t": (tgt, None)})["t"]
    before = tgt.copy()
    x = torch.linspace(-8, 8, 1001).repeat(2, 1).view(1, 1, 2, -1)
    y = match(x)
    assert torch.isfinite(y).all() and (torch.diff(y, dim=-1) >= 0).all()
    slopes = torch.cumsum(match.slope_change[..., 0], dim=-1) + 1        # each segment's slope, from the map itself
    assert slopes.max() <= MAX_SLOPE * 1.0001               # the floor and the constant band are not blown up
    # a plateau lands in the middle of the source range it covers: the constant band halfway between the source's
    # 1st and 99th percentiles (its median: the band is symmetric), the floor (a quarter of the frames) halfway
    # between the source's 1st and 25th percentiles, not at its 1st
    sq = band_quantiles(torch.nn.Identity(), src)
    const = match(torch.full((1, 1, 2, 1), 0.5))[0, 0, 1, 0].item()
    assert abs(const - np.median(src[:, 0, 1])) < 0.3
    floor_to = match(torch.full((1, 1, 2, 1), -4.0))[0, 0, 0, 0].item()
    assert abs(floor_to - np.quantile(src[:, 0, 0], [0.01, 0.25]).mean()) < 0.1
    # every source quantile is still reached, at the (moved apart) target knots
    at_knots = match(match.knots[..., 0][None])[0]          # band f's knots as its frames: (C, F, K)
    assert torch.allclose(at_knots, torch.tensor(sq, dtype=torch.float32), atol=1e-3)
    assert np.array_equal(tgt, before)                      # the fitted arrays are not touched


def test_quantile_on_a_trained_run_evaluate_and_export(tiny_run, tiny_benchmark, tmp_path):
    """``evaluate --adapt quantile`` moves only the untrained devices; ``export --adapt quantile`` carries the
    map (fp32 file = the PyTorch adaptation's logits; int8 leaves it in fp32)."""
    from sceneshift.data.audio import load_audio
    from sceneshift.evaluation.evaluate import evaluate
    from sceneshift.export.onnx import export_onnx
    from sceneshift.networks.predictor import RunPredictor, load_predictor, windows
    quiet = lambda *a: None  # noqa: E731
    plain = evaluate(tiny_run, tiny_benchmark, log=quiet)
    r = evaluate(tiny_run, tiny_benchmark, adapt="quantile", log=quiet)
    assert r["meta"]["adapted_devices"] == ["s4", "s5", "s6"] and r["meta"]["out"].endswith("evaluate-quantile")
    assert r["devices"]["a"] == plain["devices"]["a"]
    files = sorted((tiny_benchmark / "audio").glob("*-s5.*"))[:6]
    run = RunPredictor(tiny_run)
    target = np.concatenate([windows(load_audio(f, run.sample_rate), run.n_samples) for f in files])
    from sceneshift.adaptation import fit_to_recordings
    from sceneshift.export.onnx import run_split
    adapter = fit_to_recordings("quantile", run.net, run.domain, run_split(run, tiny_benchmark, log=quiet), target)
    with adapted(run.net, adapter):
        want = run.logits(target)
    out = export_onnx(tiny_run, out=tmp_path / "s5.onnx", adapt="quantile", adapt_to=files, data=tiny_benchmark,
                      log=quiet)
    got = load_predictor(out["file"]).logits(target)
    assert np.abs(got - want).max() <= 1e-4 * max(1.0, np.abs(want).max())
    assert np.abs(got - run.logits(target)).max() > 1e-3            # and the adaptation is in the file
    out8 = export_onnx(tiny_run, out=tmp_path / "s5.int8.onnx", int8=True, adapt="quantile", adapt_to=files,
                       data=tiny_benchmark, log=quiet)
    import onnx
    plain8 = export_onnx(tiny_run, out=tmp_path / "plain.int8.onnx", int8=True, data=tiny_benchmark, log=quiet)
    ops = lambda f: [n.op_type for n in onnx.load(f).graph.node]    # noqa: E731
    adapted8, unadapted8 = ops(out8["file"]), ops(plain8["file"])
    for op in ("Sub", "Relu", "Mul"):                       # the map's 99 ramps are in the file, not quantised
        assert adapted8.count(op) - unadapted8.count(op) == 99, op
    assert "QLinearConv" not in adapted8 and np.isfinite(load_predictor(out8["file"]).logits(target)).all()
