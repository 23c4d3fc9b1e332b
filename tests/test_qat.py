"""Issue 10 item 4: quantisation-aware fine-tuning before the int8 ONNX export (``export --qat EPOCHS``)."""
from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("onnxruntime")


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _int8_weights(path) -> dict:
    """{weight initializer name (without ``_quantized``): its dequantised value} of a QDQ int8 file."""
    import onnx
    from onnx import numpy_helper
    graph = onnx.load(str(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    out = {}
    for n in graph.node:
        if n.op_type == "DequantizeLinear" and inits.get(n.input[0], np.zeros(0)).dtype == np.int8:
            q, scale = inits[n.input[0]], inits[n.input[1]]
            axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
            shape = [-1 if d == axis % q.ndim else 1 for d in range(q.ndim)] if scale.ndim else []
            out[n.input[0].removesuffix("_quantized")] = q.astype(np.float32) * scale.reshape(shape)
    return out


def test_qat_export_writes_a_runnable_int8_model_and_leaves_model_pt(tiny_benchmark, tiny_run, tmp_path):
    from sceneshift.evaluation.evaluate import evaluate
    from sceneshift.export.onnx import export_onnx
    from sceneshift.networks.onnx_predictor import read_metadata
    from sceneshift.networks.predictor import RunPredictor, load_predictor, load_weights
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("eval"))    # the session's run stays as it was
    before = _sha(run / "model.pt")
    r = export_onnx(run, out=tmp_path / "q.onnx", qat=1, calibration_clips=32, data=tiny_benchmark,
                    log=lambda *a: None)
    assert _sha(run / "model.pt") == before                      # the run's weights are never written
    assert r["qat_epochs"] == 1 and len(r["qat_val_acc"]) == 2 and r["qat_selected_epoch"] in (0, 1)
    assert r["qat_folded_batch_norms"] == 0 and r["qat_layers"] == 8     # Kaggle CNN: 5 conv + 2 dense + head
    # every int8 node of the file was simulated, every simulated layer is int8 in the file, nothing left float
    assert r["qat_not_simulated"] == [] and r["qat_simulated_but_float"] == [] and r["int8_float_nodes"] == []
    assert r["int8_layers"] == 8 and "head" in r["qat_simulated"]
    tuned = load_weights(run / "model-qat.pt")
    original = load_weights(run / "model.pt")
    assert tuned.keys() == original.keys()                      # the run's state-dict format
    # the untuned weights are kept exactly when epoch 0 is selected, and only then
    assert (r["qat_selected_epoch"] == 0) == all(torch.equal(tuned[k], original[k]) for k in tuned)
    # the int8 file is built from the selected weights: each layer's int8 weights are the selected ones rounded
    # as QAT rounds them, and the QAT simulation of the selected network gives the file's logits
    from sceneshift.export.onnx import calibration_waves
    from sceneshift.export.qat import FakeQuantization, fake_quantize_weight
    net = RunPredictor(run, device="cpu").net.eval()
    net.load_state_dict(tuned)
    layers = {f"{name}.weight" for name, m in net.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))}
    stored = _int8_weights(tmp_path / "q.onnx")
    assert len(layers) == 8 and layers <= stored.keys()
    for k in layers:
        assert np.array_equal(stored[k], fake_quantize_weight(tuned[k]).numpy()), k
    if r["qat_selected_epoch"] > 0:         # and not from model.pt's (one QAT epoch moves some weights a step)
        assert any(not np.array_equal(stored[k], fake_quantize_weight(original[k]).numpy()) for k in layers)
    ref = RunPredictor(run)
    calibration = calibration_waves(ref, 32, tiny_benchmark, log=lambda *a: None)    # the export's clips
    clips = calibration_waves(ref, 16, tiny_benchmark, "val_split", log=lambda *a: None)
    with torch.no_grad():
        fp32 = net(torch.as_tensor(clips)).numpy()
        fq = FakeQuantization(net, torch.as_tensor(calibration[:2]))
        fq.calibrate(net, calibration)
        simulated = net(torch.as_tensor(clips)).numpy()
        fq.remove()
    sess = load_predictor(tmp_path / "q.onnx").session
    int8 = sess.run(None, {sess.get_inputs()[0].name: clips})[0]
    # logits on the file's output grid: 64 % identical when written (the rest one or two steps apart), fp32 none;
    # the simulation of model.pt's weights instead hit 0.6 % after one QAT epoch
    assert (np.abs(simulated - int8) < 1e-5).mean() >= 0.3 and (np.abs(fp32 - int8) < 1e-5).mean() < 0.05
    assert np.abs(simulated - int8).mean() < np.abs(fp32 - int8).mean()
    meta = read_metadata(tmp_path / "q.onnx")
    assert meta["precision"] == "int8" and json.loads(meta["qat"])["qat_epochs"] == 1
    # onnxruntime runs it: (clips, classes) logits
    model = load_predictor(tmp_path / "q.onnx")
    waves = (0.1 * np.random.default_rng(0).standard_normal((3, ref.n_samples))).astype(np.float32)
    z = model.session.run(None, {model.input_name: waves})[0]
    assert z.shape == (3, len(ref.classes)) and np.isfinite(z).all()
    # and it is scored on the tiny evaluation split like any exported model
    report = evaluate(tmp_path / "q.onnx", data=tiny_benchmark, out=tmp_path / "eval", log=lambda *a: None)
    assert report["overall"]["n"] > 0 and 0.0 <= report["overall"]["accuracy"] <= 1.0
    assert report["complexity"]["precision"] == "int8"


@pytest.mark.parametrize("bad", [-1, 0, 1.5, True])
def test_qat_refuses_a_bad_number_of_epochs(tiny_run, bad):
    from sceneshift.export.onnx import export_onnx
    with pytest.raises(ValueError, match="--qat"):
        export_onnx(tiny_run, qat=bad, log=lambda *a: None)


@pytest.mark.parametrize("args, says", [(["--int8", "--qat-lr", "1e-4"], "give --qat EPOCHS"),
                                        (["--qat", "1", "--qat-lr=-1e-4"], "positive"),
                                        (["--qat", "1", "--qat-lr", "nan"], "positive")])
def test_cli_qat_lr_needs_qat_and_a_positive_rate(tiny_run, capsys, args, says):
    from sceneshift.cli import main
    assert main(["export", str(tiny_run), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sceneshift: error: --qat-lr") and says in err
    assert not (tiny_run / "model-qat.pt").exists() and not list(tiny_run.glob("*.onnx"))


def test_cli_qat_negative_is_a_one_line_error(tiny_run, capsys):
    from sceneshift.cli import main
    assert main(["export", str(tiny_run), "--qat", "-2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sceneshift: error: --qat") and "-2" in err
    assert not (tiny_run / "model-qat.pt").exists() and not (tiny_run / "model.qat.int8.onnx").exists()


def test_fake_quantization_simulates_onnxruntimes_int8_model(tmp_path):
    """Same scales and weights as onnxruntime's quantiser (batch norms folded): the simulated network reproduces
    the int8 file's outputs; removing it restores the network exactly."""
    from sceneshift.export.onnx import _session, _to_onnx, quantize_int8
    from sceneshift.export.qat import FakeQuantization
    from sceneshift.models import MODELS
    torch.manual_seed(0)
    backbone = MODELS.build("cp_resnet", {"width": 8}, where="model", in_channels=1)
    net = nn.Sequential(backbone, nn.Linear(backbone.embed_dim, 5)).eval()
    for m in net.modules():                 # batch norms that are not the identity, so that folding matters
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1), m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5), m.bias.data.normal_(0, 0.1)
    keys = list(net.state_dict())
    calibration, x = torch.randn(16, 1, 64, 61), torch.randn(8, 1, 64, 61)
    _to_onnx(net, calibration[:2], tmp_path / "f.onnx", dynamic_length=False, opset=18)
    quantize_int8(tmp_path / "f.onnx", tmp_path / "q.onnx", [calibration[:8].numpy(), calibration[8:].numpy()], tmp_path)
    sess = _session(tmp_path / "q.onnx")
    int8 = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        fp32 = net(x).numpy()
        fq = FakeQuantization(net, calibration[:2])
        assert len(fq.folded) == sum(isinstance(m, nn.Conv2d) for m in net.modules()) == len(fq.layers) - 1
        fq.calibrate(net, calibration.numpy(), batch_size=8)
        simulated = net(x).numpy()
        fq.remove()
        assert np.array_equal(net(x).numpy(), fp32) and list(net.state_dict()) == keys
    # the int8 file's logits lie on its output grid: the simulation hits most of them exactly (rounding ties that
    # go the other way in onnxruntime's summation order move the rest by one step), fp32 none
    assert (np.abs(simulated - int8) < 1e-6).mean() >= 0.5 and (np.abs(fp32 - int8) < 1e-6).mean() < 0.1
    assert np.abs(simulated - int8).mean() < np.abs(fp32 - int8).mean()


def _delta_arcface_net():
    """A tiny network with the two functional Conv / Gemm sources: log-mel with deltas (seed003_base's front end,
    smaller) and an ArcFace head (seed 001's), on the Kaggle CNN."""
    from sceneshift.frontend.logmel import LogMel
    from sceneshift.heads.arcface import ArcFaceHead
    from sceneshift.models import MODELS
    from sceneshift.networks.classifier import SceneClassifier
    torch.manual_seed(0)
    frontend = LogMel(16000, n_fft=256, hop_length=128, n_mels=16, n_deltas=2, delta_width=5, delta_mode="valid",
                      normalize="minmax")
    backbone = MODELS.build("kaggle_cnn", {"embed_dim": 32, "hidden": 32}, where="model", in_channels=3)
    return SceneClassifier(frontend, backbone, ArcFaceHead(backbone.embed_dim, 5)).eval()


def test_qat_simulates_arcface_and_the_int8_file_keeps_the_delta_front_end_float(tmp_path):
    """The graph onnxruntime quantises has two functional sources of Conv / Gemm nodes: the deltas' constant-kernel
    conv1d (left float by the export, so not simulated) and ArcFace's cosine Gemm (simulated: normalised weights
    per class, normalised embedding and cosines per tensor). Every int8 node is simulated, the simulated network
    gives the int8 file's logits, and quantising the deltas too would be reported as not simulated."""
    from sceneshift.export.onnx import (_session, _to_onnx, float_in_int8, int8_quantised_nodes, qat_coverage,
                                        quantisable_nodes, quantize_int8)
    from sceneshift.export.qat import FakeQuantization, fake_quantize_weight
    net = _delta_arcface_net()
    gen = torch.Generator().manual_seed(1)
    calibration, x = 0.1 * torch.randn(16, 8000, generator=gen), 0.1 * torch.randn(8, 8000, generator=gen)
    _to_onnx(net, calibration[:2], tmp_path / "f.onnx", dynamic_length=False, opset=18)
    nodes = quantisable_nodes(tmp_path / "f.onnx")
    modules = [n["module"] for n in nodes]
    assert modules.count("frontend") == 2 and modules.count("head") == 1 and None not in modules
    float_nodes = float_in_int8(nodes, net)
    assert [n["module"] for n in float_nodes] == ["frontend", "frontend"] and \
        all(n["op"] == "Conv" for n in float_nodes)
    cal = [calibration[:8].numpy(), calibration[8:].numpy()]
    quantize_int8(tmp_path / "f.onnx", tmp_path / "q.onnx", cal, tmp_path, exclude=[n["name"] for n in float_nodes])
    quantised = int8_quantised_nodes(tmp_path / "q.onnx")
    assert set(quantised) == {n["name"] for n in nodes} - {n["name"] for n in float_nodes}
    assert [quantised[n["name"]] for n in nodes if n["module"] == "head"] == ["Gemm"]
    sess = _session(tmp_path / "q.onnx")
    int8 = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        fp32 = net(x).numpy()
        fq = FakeQuantization(net, calibration[:2])
        assert fq.cosine_heads == [net.head] and "head" in fq.simulated
        assert qat_coverage(nodes, quantised, fq.simulated) == {"qat_not_simulated": [], "qat_simulated_but_float": []}
        # the head's int8 weights in the file are the normalised class weights rounded as QAT rounds them
        gemm = next(n["name"] for n in nodes if n["module"] == "head")
        import onnx
        graph = onnx.load(str(tmp_path / "q.onnx")).graph
        made_by = {o: n for n in graph.node for o in n.output}
        weight = made_by[next(n for n in graph.node if n.name == gemm).input[1]].input[0].removesuffix("_quantized")
        rounded = fake_quantize_weight(nn.functional.normalize(net.head.weight, dim=1)).numpy()
        assert np.array_equal(_int8_weights(tmp_path / "q.onnx")[weight], rounded)
        fq.calibrate(net, calibration.numpy(), batch_size=8)
        simulated = net(x).numpy()
        fq.remove()
        assert np.array_equal(net(x).numpy(), fp32) and "cosines" not in vars(net.head)
    assert (np.abs(simulated - int8) < 1e-6).mean() >= 0.85 and (np.abs(fp32 - int8) < 1e-6).mean() < 0.1
    assert np.abs(simulated - int8).mean() < 0.2 * np.abs(fp32 - int8).mean()
    # what the deltas would be if onnxruntime quantised them: int8 nodes QAT did not simulate, named
    quantize_int8(tmp_path / "f.onnx", tmp_path / "all.onnx", cal, tmp_path)
    report = qat_coverage(nodes, int8_quantised_nodes(tmp_path / "all.onnx"), fq.simulated)
    assert [s.split(" ")[0] for s in report["qat_not_simulated"]] == [n["name"] for n in float_nodes]
    assert all("Conv, module frontend" in s for s in report["qat_not_simulated"])


def test_qat_export_of_a_delta_arcface_run_simulates_every_int8_node(tiny_benchmark, tiny_run, tmp_path):
    """``export --qat 1`` end to end on a run with seed003_base's kind of front end (log-mel + two 'valid' deltas)
    and seed 001's ArcFace head (random weights, one QAT step): the delta convolutions are left float and named
    in a note, every int8 node of the file was simulated in QAT, and no warning is given."""
    import yaml
    from sceneshift.export.onnx import export_onnx
    from sceneshift.networks import build_network
    from sceneshift.networks.onnx_predictor import read_metadata
    from sceneshift.networks.predictor import load_run_config
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("eval", "*.onnx", "model-qat.pt"))
    cfg, domain = load_run_config(run)
    cfg["frontend"].update(n_deltas=2, delta_width=5, delta_mode="valid", normalize="minmax")
    cfg["head"] = {"name": "arcface", "s": 8.0, "m": 0.2}
    cfg["train"]["limit_train_batches"] = 1
    (run / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    torch.manual_seed(0)
    torch.save(build_network(cfg, domain).state_dict(), run / "model.pt")
    lines = []
    r = export_onnx(run, out=tmp_path / "q.onnx", qat=1, calibration_clips=16, data=tiny_benchmark, log=lines.append)
    assert len(r["int8_float_nodes"]) == 2 and all("(Conv, module frontend)" in n for n in r["int8_float_nodes"])
    assert r["qat_not_simulated"] == [] and r["qat_simulated_but_float"] == []
    assert "head" in r["qat_simulated"] and r["qat_layers"] == r["int8_layers"] == 8   # 5 conv + 2 dense + ArcFace
    notes = [line for line in lines if line.startswith("note: left float")]
    assert len(notes) == 1 and all(n.split(" ")[0] in notes[0] for n in r["int8_float_nodes"])
    assert not [line for line in lines if line.startswith("warning")]
    assert json.loads(read_metadata(tmp_path / "q.onnx")["qat"])["qat_not_simulated"] == []


def test_batch_norms_are_folded_only_where_the_onnx_exporter_fuses_them(tmp_path):
    """seed 003's pre-activation ResNet: a block's first batch norm takes the previous convolution's output, which
    the block's shortcut takes too, so the exporter keeps that batch norm apart; folding it anyway (as QAT once
    did) fed the shortcut normalised maps. The fold follows the exporter: the simulation off is the network
    itself, and every int8 node of the file is a simulated layer."""
    from sceneshift.export.onnx import _to_onnx, int8_quantised_nodes, qat_coverage, quantisable_nodes, quantize_int8
    from sceneshift.export.qat import FakeQuantization
    from sceneshift.models import MODELS
    torch.manual_seed(0)
    backbone = MODELS.build("resnet_fsplit", {"width": 4}, where="model", in_channels=3)
    net = nn.Sequential(backbone, nn.Linear(backbone.embed_dim, 5)).eval()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.5), m.running_var.uniform_(0.5, 2.0)
    calibration, x = torch.randn(8, 3, 32, 40), torch.randn(4, 3, 32, 40)
    _to_onnx(net, calibration[:2], tmp_path / "f.onnx", dynamic_length=False, opset=18)
    quantize_int8(tmp_path / "f.onnx", tmp_path / "q.onnx", [calibration.numpy()], tmp_path)
    nodes = quantisable_nodes(tmp_path / "f.onnx")
    with torch.no_grad():
        fp32 = net(x)
        fq = FakeQuantization(net, calibration[:2])
        folded = {fq.paths[id(bn)] for bn in fq.folded.values()}
        assert "0.low.1.bn1" not in folded and "0.high.1.bn1" not in folded and "0.low.1.bn2" in folded
        assert torch.allclose(net(x), fp32, atol=1e-5)          # mode "off": the network's own function
        assert qat_coverage(nodes, int8_quantised_nodes(tmp_path / "q.onnx"), fq.simulated) == \
            {"qat_not_simulated": [], "qat_simulated_but_float": []}
        fq.remove()
