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
    tuned = load_weights(run / "model-qat.pt")
    original = load_weights(run / "model.pt")
    assert tuned.keys() == original.keys()                      # the run's state-dict format
    if r["qat_selected_epoch"] == 1:
        assert any(not torch.equal(tuned[k], original[k]) for k in tuned)
    meta = read_metadata(tmp_path / "q.onnx")
    assert meta["precision"] == "int8" and json.loads(meta["qat"])["qat_epochs"] == 1
    # onnxruntime runs it: (clips, classes) logits
    model, ref = load_predictor(tmp_path / "q.onnx"), RunPredictor(run)
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
