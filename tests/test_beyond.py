"""Issue 10: CP-ResNet, Freq-MixStyle, device impulse responses with the leakage guard, distillation, ONNX export."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from sceneshift.augment import build_augmentations
from sceneshift.augment.mixstyle import mix_frequency_statistics
from sceneshift.data.domain import Domain
from sceneshift.models import MODELS, count_macs, count_parameters


# ---- Freq-MixStyle ---------------------------------------------------------------------------------------
def test_freq_mixstyle_formula_on_known_tensors():
    # two clips, one channel, two frequency bands, two frames; statistics per band over channels and frames
    x = torch.tensor([[[[1.0, 3.0], [10.0, 10.0]]], [[[5.0, 7.0], [0.0, 4.0]]]])
    lam, perm = torch.tensor([0.25, 1.0]), torch.tensor([1, 0])
    y = mix_frequency_statistics(x, lam, perm, eps=0.0)
    # clip 0, band 0: mean 2, std sqrt(2); its partner's band 0: mean 6, std sqrt(2)
    # -> mixed mean 0.25 * 2 + 0.75 * 6 = 5, mixed std sqrt(2): y = (x - 2) + 5
    assert torch.allclose(y[0, 0, 0], torch.tensor([4.0, 6.0]))
    assert torch.allclose(y[1], x[1], atol=1e-6)                  # lambda = 1 keeps a clip as it is


def test_freq_mixstyle_detaches_statistics_and_keeps_labels():
    x = torch.randn(6, 1, 8, 20, requires_grad=True)
    lam, perm = torch.full((6,), 0.5), torch.randperm(6)
    y = mix_frequency_statistics(x, lam, perm)
    (y * torch.arange(20.0)).sum().backward()
    # with statistics detached, d y / d x = sig_mix / sig (a per-band constant): the gradient is that constant
    # times the upstream gradient, not the full normalisation's Jacobian
    sig = (x.detach().var(dim=(1, 3), keepdim=True) + 1e-6).sqrt()
    sig_mix = 0.5 * sig + 0.5 * sig[perm]
    assert torch.allclose(x.grad, (sig_mix / sig).expand_as(x) * torch.arange(20.0), atol=1e-5)
    _, spec = build_augmentations([{"name": "freq_mixstyle", "p": 1.0}], Domain.placeholder(3), 16000)
    target = torch.eye(3)[[0, 1, 2, 0, 1, 2]]
    out, t = spec[0](x.detach(), target, None)
    assert t is target and out.shape == x.shape and not torch.equal(out, x.detach())
    _, never = build_augmentations([{"name": "freq_mixstyle", "p": 0.0}], Domain.placeholder(3), 16000)
    assert torch.equal(never[0](x.detach(), target, None)[0], x.detach())


# ---- device impulse responses and the leakage guard ------------------------------------------------------------
def _domain_with_irs(irs):
    return Domain(("x", "y"), ("a", "b"), {"source": ["a"], "seen": ["b"], "unseen": ["s4"]}, "a", irs)


def test_device_ir_excludes_or_refuses_the_benchmark_devices_responses(shared_dir, tmp_path):
    micirp = shared_dir / "data" / "micirp"
    names = sorted(p.name for p in micirp.iterdir())
    domain = _domain_with_irs({"b": names[0], "s4": names[1]})
    wave, _ = build_augmentations([{"name": "device_ir"}], domain, 16000)
    assert wave[0].excluded == sorted(names[:2]) and len(wave[0].files) == len(names) - 2
    with pytest.raises(ValueError, match=rf"{names[1]} \(device s4\)"):
        build_augmentations([{"name": "device_ir", "exclude_dataset_devices": False}], domain, 16000)
    # a renamed copy of a device's response is caught by its content
    folder = tmp_path / "irs"
    folder.mkdir()
    shutil.copy(micirp / names[1], folder / "innocent.wav")
    shutil.copy(micirp / names[5], folder / names[5])
    with pytest.raises(ValueError, match=r"innocent.wav \(device s4\)"):
        build_augmentations([{"name": "device_ir", "folder": str(folder), "exclude_dataset_devices": False}],
                            domain, 16000)
    kept, _ = build_augmentations([{"name": "device_ir", "folder": str(folder)}], domain, 16000)
    assert [f.name for f in kept[0].files] == [names[5]]


def test_device_ir_convolves_source_clips_only_and_keeps_level(shared_dir):
    domain = _domain_with_irs({})
    wave, _ = build_augmentations([{"name": "device_ir", "p": 1.0}], domain, 16000)
    aug = wave[0]
    aug.set_bank(torch.tensor([[0.0, 1.0, 0.0, 0.0]]))         # a one-sample delay
    x = torch.randn(4, 1000)
    device = torch.tensor([0, 1, 0, 1])                       # a, b, a, b
    y, _ = aug(x, None, device)
    assert torch.equal(y[1], x[1]) and torch.equal(y[3], x[3])
    delayed = torch.cat([torch.zeros(1), x[0, :-1]])
    assert torch.allclose(y[0], delayed * x[0].pow(2).mean().sqrt() / delayed.pow(2).mean().sqrt(), atol=1e-5)


# ---- CP-ResNet -----------------------------------------------------------------------------------------------
def test_cp_resnet_receptive_field_rule_size_and_length_independence():
    m = MODELS.build("cp_resnet", {}, where="model", in_channels=1).eval()
    assert m.kernels == [(3, 3), (3, 3), (3, 3), (3, 1), (1, 1), (1, 1)] and m.receptive_field <= 87
    assert count_parameters(m) + 96 * 10 + 10 <= 128_000          # int8 bytes of a 10-class model
    assert count_macs(m, torch.randn(1, 1, 64, 201)) < 30e6 * 4      # DCASE: 30 M MACs per second of audio
    with torch.no_grad():
        assert m(torch.randn(2, 1, 64, 201)).shape == (2, 96) and m(torch.randn(1, 1, 64, 57)).shape == (1, 96)
    wide = MODELS.build("cp_resnet", {"max_rf": 500}, where="model", in_channels=1)
    assert all(k == (3, 3) for k in wide.kernels) and count_parameters(wide) > count_parameters(m)


def test_complexity_counts_agree_with_torchinfo():
    torchinfo = pytest.importorskip("torchinfo")
    for name, opts in (("cp_resnet", {}), ("kaggle_cnn", {})):
        m = MODELS.build(name, opts, where="model", in_channels=1)
        stats = torchinfo.summary(m, input_size=(1, 1, 64, 201), verbose=0)
        assert stats.total_params == count_parameters(m)
        # torchinfo also counts batch norm and layer norm as multiply-adds; ours counts conv + linear only
        ours = count_macs(m, torch.randn(1, 1, 64, 201))
        assert ours <= stats.total_mult_adds and (stats.total_mult_adds - ours) / ours < 0.05, (name, ours)


# ---- distillation ------------------------------------------------------------------------------------------
def test_distillation_student_learns_from_a_cached_teacher(tiny_benchmark, tiny_run, tmp_path):
    from sceneshift.training.run import train
    out = train("cp_resnet", data=tiny_benchmark, out=tmp_path / "student", log=lambda *a: None,
                overrides=["system=distill", f"system_options.teacher={tiny_run}", "train.epochs=2",
                           "train.progress=false", "model.width=8", "train.batch_size=32"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == 2
    cached = list((tiny_run / "eval" / "proba").glob("*.npy"))
    assert cached, "the teacher's probabilities of the training clips are cached beside the teacher"
    # the second student reuses the teacher's cache (same files, nothing new written)
    before = {p.name for p in cached}
    train("cp_resnet", data=tiny_benchmark, out=tmp_path / "student2", log=lambda *a: None,
          overrides=["system=distill", f"system_options.teacher={tiny_run}", "train.epochs=1", "train.progress=false",
                     "model.width=8", "train.seed=1"])
    assert {p.name for p in (tiny_run / "eval" / "proba").glob("*.npy")} == before


def test_distillation_refuses_a_missing_teacher(tiny_benchmark, tmp_path):
    from sceneshift.training.run import train
    with pytest.raises((ValueError, FileNotFoundError), match="teacher"):
        train("cp_resnet", data=tiny_benchmark, out=tmp_path / "s", log=lambda *a: None,
              overrides=["system=distill", "train.epochs=1", "train.progress=false"])


def test_distillation_loss_is_the_published_one():
    import torch.nn.functional as F
    from sceneshift.training.distill import DistillSystem
    from sceneshift.training.recipe import load_recipe
    cfg = load_recipe("cp_resnet", ["model.width=4"])
    system = DistillSystem(cfg, Domain.placeholder(4), data=None, teacher="unused", kd_weight=0.7, temperature=3.0)
    system.log = lambda *a, **k: None
    system.eval()                                        # batch norm by running statistics: one forward = another
    teacher = torch.randn(6, 4).log_softmax(dim=1)       # the teacher's log-probabilities of six training clips
    system.teacher_log_proba = teacher
    wave, y, rows = 0.1 * torch.randn(3, 64000), torch.tensor([0, 2, 3]), torch.tensor([5, 1, 4])
    loss = system.training_step((wave, y, torch.zeros(3, dtype=torch.long), rows), 0)
    with torch.no_grad():
        z = system.net(wave)
        q = F.softmax(teacher[rows] / 3.0, dim=1)
        kd = (q * (q.log() - F.log_softmax(z / 3.0, dim=1))).sum(1).mean() * 9.0
        want = 0.3 * F.cross_entropy(z, y) + 0.7 * kd
    assert torch.allclose(loss, want, atol=1e-5)
    assert DistillSystem.__init__.__defaults__ == ("", 0.98, 2.0)


# ---- export -------------------------------------------------------------------------------------------------
def test_onnx_export_matches_pytorch_and_predict_takes_it(tiny_benchmark, tiny_run, tmp_path, shared_dir):
    pytest.importorskip("onnxruntime")
    from sceneshift.evaluation.predict import predict_files
    from sceneshift.export.onnx import export_onnx
    from sceneshift.networks.predictor import RunPredictor, load_predictor
    r = export_onnx(tiny_run, out=tmp_path / "m.onnx", log=lambda *a: None)
    assert r["fp32_max_difference"] <= 1e-4
    onnx_model, torch_model = load_predictor(tmp_path / "m.onnx"), RunPredictor(tiny_run)
    waves = (0.1 * np.random.default_rng(0).standard_normal((3, torch_model.n_samples))).astype(np.float32)
    assert np.abs(onnx_model.logits(waves) - torch_model.logits(waves)).max() <= 1e-4
    assert onnx_model.classes == torch_model.classes
    scene = sorted((shared_dir / "data" / "scenes").iterdir())[0]
    a, _ = predict_files(tmp_path / "m.onnx", [scene])
    b, _ = predict_files(tiny_run, [scene])
    assert a[0]["scene"] == b[0]["scene"] and a[0]["windows"] == b[0]["windows"]
    # int8: smaller, and its decisions agree with fp32's on most calibration clips
    q = export_onnx(tiny_run, out=tmp_path / "m8.onnx", int8=True, calibration_clips=64, data=tiny_benchmark,
                    log=lambda *a: None)
    assert q["bytes"] < 0.5 * r["bytes"] and q["int8_agreement"] >= 0.8 and q["compared_clips"] > 0
    assert load_predictor(tmp_path / "m8.onnx").precision == "int8"
    # weights in 7 bits ([-64, 64]): full-range int8 weights saturate onnxruntime's kernels on CPUs without VNNI
    import onnx
    from onnx import numpy_helper
    graph = onnx.load(str(tmp_path / "m8.onnx")).graph
    int8_weights = [numpy_helper.to_array(t) for t in graph.initializer if t.data_type == onnx.TensorProto.INT8
                    and len(t.dims) > 1]
    assert int8_weights and max(int(np.abs(w.astype(np.int32)).max()) for w in int8_weights) <= 64
    # every report states the complexity of what it scored, at the stored precision
    from sceneshift.evaluation.evaluate import evaluate
    rep_torch = evaluate(tiny_run, data=tiny_benchmark, out=tmp_path / "e32", log=lambda *a: None)
    rep_int8 = evaluate(tmp_path / "m8.onnx", data=tiny_benchmark, out=tmp_path / "e8", log=lambda *a: None)
    c32, c8 = rep_torch["complexity"], rep_int8["complexity"]
    assert c32["parameters"] == c8["parameters"] == sum(p.numel() for p in torch_model.net.parameters())
    assert c32["parameter_bytes"] == 4 * c32["parameters"]
    assert c8["parameters"] <= c8["parameter_bytes"] < 0.3 * c32["parameter_bytes"]   # 1 byte a weight + scales
    assert c8["precision"] == "int8" and "complexity:" in (tmp_path / "e8" / "report.md").read_text()


def test_onnx_export_of_a_global_pooling_network_takes_any_length(tiny_benchmark, tmp_path):
    pytest.importorskip("onnxruntime")
    from sceneshift.export.onnx import export_onnx
    from sceneshift.networks.predictor import load_predictor
    from sceneshift.training.run import train
    run = train("cp_resnet", data=tiny_benchmark, out=tmp_path / "cp", log=lambda *a: None,
                overrides=["train.epochs=1", "train.progress=false", "model.width=8", "train.limit_train_batches=2"])
    r = export_onnx(run, out=tmp_path / "cp.onnx", frontend="excluded", log=lambda *a: None)
    assert r["dynamic_length"] and r["input"] == "features"
    model = load_predictor(tmp_path / "cp.onnx")
    feats = np.random.default_rng(1).standard_normal((2, 1, 64, 77)).astype(np.float32)
    with torch.no_grad():
        from sceneshift.networks.predictor import RunPredictor
        net = RunPredictor(run).net
        ref = net.head(net.backbone(torch.from_numpy(feats))).numpy()
    assert np.abs(model.session.run(None, {model.input_name: feats})[0] - ref).max() <= 1e-4


def test_export_refuses_to_drop_a_learned_front_end(tiny_benchmark, tmp_path):
    pytest.importorskip("onnxruntime")
    from sceneshift.export.onnx import export_onnx
    from sceneshift.training.run import train
    run = train("seed001_pretrain", data=tiny_benchmark, out=tmp_path / "wg", log=lambda *a: None,
                overrides=["train.epochs=1", "train.progress=false", "train.limit_train_batches=1",
                           "frontend.wavegram=rank1"])
    with pytest.raises(ValueError, match="front end is learned"):
        export_onnx(run, out=tmp_path / "wg.onnx", frontend="excluded")


def test_export_refuses_a_system_file(tmp_path):
    from sceneshift.export.onnx import export_onnx
    f = tmp_path / "ens.yaml"
    f.write_text("ensemble: [a, b]\n")
    with pytest.raises(ValueError, match="one run folder"):
        export_onnx(f)


def test_export_adapted_to_one_devices_recordings(tiny_benchmark, tiny_run, tmp_path):
    """--adapt bandwise --adapt-to: the device's band statistics, fitted on its recordings, are in the file."""
    pytest.importorskip("onnxruntime")
    from sceneshift.adaptation.bandwise import band_statistics
    from sceneshift.cli import main
    from sceneshift.data.audio import load_audio
    from sceneshift.export.onnx import export_onnx, run_split
    from sceneshift.networks.predictor import RunPredictor, load_predictor, windows
    recordings = tmp_path / "phone"
    (recordings / "day1").mkdir(parents=True)
    for f in sorted((tiny_benchmark / "audio").glob("*-s4.*"))[:6]:
        shutil.copy(f, recordings / "day1" / f.name)
    (recordings / "broken.wav").write_bytes(b"not audio")
    (recordings / ".hidden.wav").write_bytes(b"never read")
    # the reference: x' = (x - mean_T) / std_T * std_S + mean_S per band, then the run's network
    run = RunPredictor(tiny_run)
    net = run.net
    target = np.concatenate([windows(load_audio(f, run.sample_rate), run.n_samples)
                             for f in sorted((recordings / "day1").iterdir())])
    train = run_split(run, tiny_benchmark, log=lambda *a: None)
    sm, ss = band_statistics(net.frontend, train.waves, train.rows(device="a"))
    tm, ts = band_statistics(net.frontend, target)
    with torch.no_grad():
        x = net.frontend(torch.from_numpy(target))
        band = [torch.from_numpy(v)[..., None].float() for v in (sm, ss, tm, ts)]
        want = net.head(net.backbone((x - band[2]) / band[3] * band[1] + band[0])).numpy()
        plain = net.head(net.backbone(x)).numpy()
    for frontend in ("included", "excluded"):
        out = tmp_path / f"s4-{frontend}.onnx"
        r = export_onnx(tiny_run, out=out, frontend=frontend, adapt="bandwise", adapt_to=[recordings],
                        log=lambda *a: None)
        assert [f for f, _ in r["adapted"]["skipped"]] == [str(recordings / "broken.wav")]
        assert r["adapted"]["windows"] == len(target) and r["adapted"]["recordings"] == 6
        model = load_predictor(out)
        got = model.logits(target) if frontend == "included" else model.session.run(None, {model.input_name: x.numpy()})[0]
        assert np.abs(got - want).max() <= 1e-4 and np.abs(got - plain).max() > 1e-3
        assert model.adapted["method"] == "bandwise" and model.adapted["source_device"] == "a"
    # int8 through the command: calibrated on 3 recordings' windows, compared on the other 3's; exit 1 for the skip
    assert main(["export", str(tiny_run), "--int8", "--adapt", "bandwise", "--adapt-to", str(recordings),
                 "--out", str(tmp_path / "s4.int8.onnx")]) == 1
    assert load_predictor(tmp_path / "s4.int8.onnx").precision == "int8"
    q = export_onnx(tiny_run, out=tmp_path / "q.onnx", int8=True, adapt="bandwise", adapt_to=[recordings / "day1"],
                    log=lambda *a: None)
    assert q["calibration_clips"] + q["compared_clips"] == len(target) and not q["compared_on_calibration"]
    with pytest.raises(ValueError, match="go together"):
        export_onnx(tiny_run, adapt="bandwise")
    (tmp_path / "empty").mkdir()
    for given, why in ((recordings / "broken.wav", "no readable recording.*broken.wav"),
                       (tmp_path / "empty", "no audio file found")):
        with pytest.raises(ValueError, match=why):
            export_onnx(tiny_run, out=tmp_path / "x.onnx", adapt="bandwise", adapt_to=[given])
    with pytest.raises(ValueError, match="--adapt"):
        export_onnx(tiny_run, out=tmp_path / "x.onnx", adapt="bandwidth", adapt_to=[recordings])
    assert not (tmp_path / "x.onnx").exists()
