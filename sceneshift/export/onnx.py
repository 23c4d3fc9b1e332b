"""``sceneshift export RUN --format onnx [--int8]``: a run as one ONNX file for onnxruntime.

What is exported: by default the whole network, waveform ``(batch, samples)`` -> scene logits,
front end included, so the file alone is the model (``--frontend excluded`` exports the
features-in part, log-mel ``(batch, channels, mel, frames)`` -> logits, which runs faster in
onnxruntime because its STFT operator is slower than torch's FFT; the front end's configuration is
stored in the file and :class:`~sceneshift.networks.onnx_predictor.OnnxPredictor` runs it).
The batch axis is always dynamic; the length axis too, unless the network's pooling depends on
the traced length (the Kaggle CNN's adaptive pooling to 12 frames): every export is checked
against PyTorch at three lengths, and a network that disagrees is exported for the run's clip
length only (``predict`` cuts recordings into windows of that length anyway), with a note.

``--adapt bandwise --adapt-to PATH...``: a model for one device that the run never trained on,
from unlabeled recordings of it (files or folders, cut into the run's clip-length windows): the
band-wise statistics matching of ``sceneshift evaluate --adapt bandwise`` is fitted on them against
the run's source-device training clips and exported as part of the graph (between front end and
backbone; a per-band scale and shift), so the deployed file needs no statistics beside it
(``--adapt adabn`` / ``bandwise+adabn``: the batch-norm statistics re-estimated on the recordings are
written into the network before export, folded into its layers like its own). With
``--int8`` its activation ranges are calibrated on the windows of half of those recordings (the
adapted features are what the int8 layers see) and the decisions compared with fp32 on the other
half (on the same windows when there is one recording).

The run's recipe and domain are written into the file's metadata, so ``sceneshift predict`` and
``sceneshift evaluate`` take the ``.onnx`` file where they take a run folder.

``--int8``: post-training static quantisation with onnxruntime (QDQ format, per-channel int8
weights, int8 activations) of the graph's Conv and Gemm nodes only (convolutions, dense layers on a
2-D input, ArcFace's cosine layer; MatMul, the STFT, the mel product, pooling and normalisations stay
float); activation ranges are calibrated on ``calibration_clips`` clips of the run's training split.
The fp32 and int8 decisions are compared on as many validation clips (not used for calibration) and
reported; ``sceneshift evaluate`` on the int8 file gives its accuracy.

The front end stays float except for its learned layers (seed 001's Wavegram convolution, which is
quantised): the Conv nodes of the log-mel's deltas (``n_deltas``: seed002_paper, seed003_*), which
onnxruntime would otherwise quantise like any Conv, are excluded (``float_in_int8``, by the module the
exporter traced each node from), and named in the result (``int8_float_nodes``) and a note. Why:
their kernel is a constant (nothing to learn, so quantisation-aware training could not compensate);
quantising them would round the log-mel (dB, a range of 100 dB and more) and each delta channel to
256 levels before the backbone sees them; they cost a few multiply-adds per feature against the
backbone's thousands, so int8 saves nothing measurable; and the int8 network then gets the same
features whether the front end is exported (``--frontend included``) or run in torch
(``--frontend excluded``). Which nodes the int8 file quantises is read back from it
(``int8_layers``: how many).

``--qat EPOCHS`` (implies ``--int8``): quantisation-aware fine-tuning first (export/qat.py): the
run's network is trained for EPOCHS more epochs with that int8 scheme simulated, selected on
validation accuracy, saved as ``RUN/model-qat.pt`` (``model.pt`` is left alone), and the int8 file
(default ``RUN/model.qat.int8.onnx``) is quantised, as above, from those weights. Each int8 node of
the file is then matched with the layers QAT simulated (by module); any quantised node QAT did not
simulate, or simulated layer the file leaves float, is named in a warning and in the result
(``qat_not_simulated``, ``qat_simulated_but_float``; both empty for every network and head here).
"""
from __future__ import annotations

import json
import os
import tempfile
from importlib.metadata import PackageNotFoundError, version as _dist_version
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.splits import DataSource, iter_batches
from ..io import atomic_path
from ..networks.predictor import RunPredictor, load_weights

TOLERANCE = 1e-4          # largest |fp32 ONNX - PyTorch| logit difference accepted
QUANTISED_OPS = ("Conv", "Gemm")      # the node types quantize_int8 quantises


class _Features(nn.Module):
    """(Adaptation +) backbone + head of a classifier: log-mel in, logits out."""

    def __init__(self, net):
        super().__init__()
        self.adapt, self.backbone, self.head = net.adapt, net.backbone, net.head

    def forward(self, x):
        if self.adapt is not None:
            x = self.adapt(x)
        return self.head(self.backbone(x))



def _sceneshift_version() -> str:
    try:
        return _dist_version("sceneshift")
    except PackageNotFoundError:        # a checkout used through PYTHONPATH
        return "unknown"

def _session(path: Path, threads: int | None = None):
    import onnxruntime as ort
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _largest_difference(path: Path, module: nn.Module, inputs: list[torch.Tensor]) -> float:
    sess = _session(path)
    name = sess.get_inputs()[0].name
    worst = 0.0
    with torch.inference_mode():
        for x in inputs:
            ref = module(x).numpy()
            got = sess.run(None, {name: x.numpy()})[0]
            worst = max(worst, float(np.abs(got - ref).max()))
    return worst


def _to_onnx(module: nn.Module, example: torch.Tensor, path: Path, dynamic_length: bool, opset: int):
    import logging
    import warnings
    # the exporter logs a warning per torchvision operator it cannot register (torchvision is not a dependency)
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    batch = torch.export.Dim("batch", min=1, max=65536)
    shapes = {0: batch}
    if dynamic_length:
        shapes[example.dim() - 1] = torch.export.Dim("length", min=example.shape[-1] // 4, max=example.shape[-1] * 64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), str(path), dynamo=True, dynamic_shapes=(shapes,), opset_version=opset,
                          optimize=True, verbose=False, external_data=False, input_names=["waveform" if example.dim() == 2 else "features"],
                          output_names=["logits"])


def _set_metadata(path: Path, meta: dict):
    import onnx
    model = onnx.load(str(path))
    del model.metadata_props[:]
    for k, v in meta.items():
        p = model.metadata_props.add()
        p.key, p.value = f"sceneshift.{k}", v
    model.doc_string = f"sceneshift {meta['recipe']} ({meta['precision']}, {meta['input']} in, logits out)"
    onnx.save(model, str(path))


def run_split(run: RunPredictor, data: str | Path | None, split_key: str = "train_split", log=print):
    """The run's training (or validation) split, from ``data`` when given (else the run's dataset)."""
    cfg = dict(run.cfg["data"])
    if data and Path(data).resolve() != Path(cfg["root"]).resolve():   # another dataset: its devices differ
        cfg.update(root=str(Path(data).resolve()), exclude_devices=[])
    return DataSource(cfg, run.domain, log=log).split(cfg[split_key])


def spread(waves: np.ndarray, clips: int) -> np.ndarray:
    """``clips`` rows of ``waves`` spread evenly over it, as float32."""
    rows = np.linspace(0, len(waves) - 1, min(clips, len(waves))).round().astype(int)
    return np.asarray(waves[np.unique(rows)], dtype=np.float32)


def calibration_waves(run: RunPredictor, clips: int, data: str | Path | None, split_key: str = "train_split",
                      log=print) -> np.ndarray:
    """``clips`` clips of the run's training (or validation) split, spread evenly over it (devices included)."""
    return spread(run_split(run, data, split_key, log).waves, clips)


def export_onnx(run_dir: str | Path, out: str | Path | None = None, int8: bool = False, frontend: str = "included",
                calibration_clips: int = 256, data: str | Path | None = None, opset: int = 18, log=print,
                qat: int | None = None, qat_lr: float | None = None, adapt: str | None = None,
                adapt_to: list | None = None) -> dict:
    """Write ``out`` (default ``RUN/model.onnx``, ``model.int8.onnx`` or with ``qat`` epochs of quantisation-aware
    fine-tuning ``model.qat.int8.onnx``); return what was written and measured.

    ``adapt`` (e.g. ``"bandwise"``) with ``adapt_to`` (recordings of one device: files or folders) puts
    that device's adaptation, fitted on those recordings, into the file: a model for that device
    (default name ``model.adapted.onnx`` / ``model.adapted.int8.onnx``)."""
    if bool(adapt) != bool(adapt_to):
        raise ValueError("--adapt and --adapt-to go together: the adaptation method and the recordings of the "
                         "device to adapt to (files or folders)")
    if qat_lr is not None and qat is None:
        raise ValueError("--qat-lr sets the learning rate of quantisation-aware fine-tuning: give --qat EPOCHS too")
    if qat is not None:
        from .qat import check_epochs, check_lr
        qat, int8 = check_epochs(qat), True
        qat_lr = None if qat_lr is None else check_lr(qat_lr)
    if frontend not in ("included", "excluded"):
        raise ValueError(f"--frontend must be 'included' or 'excluded', got {frontend!r}")
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ValueError(f"{run_dir}: export takes one run folder (an ensemble or two-stage system file is several "
                         "networks; export each run)")
    run = RunPredictor(run_dir, device="cpu")
    net = run.net.to(memory_format=torch.contiguous_format).eval()
    if net.adapt is not None or not hasattr(net, "backbone") or not hasattr(net, "head"):
        raise ValueError(f"{run_dir}: only classifier networks (front end + backbone + head) can be exported")
    if frontend == "excluded" and any(True for _ in net.frontend.parameters()):
        raise ValueError(f"{run_dir}: --frontend excluded needs a fixed front end; this run's front end is learned "
                         "(its weights would be lost): export it with --frontend included")
    n = run.n_samples
    if adapt:      # read before any costly step, so a wrong option or an empty folder fails at once
        from ..adaptation import check_method, fit_to_recordings, install, read_recordings
        check_method(adapt, run.domain)
        target, recording, skipped = read_recordings(adapt_to, run.sample_rate, n)
    result, waves = {}, calibration_waves(run, calibration_clips, data, log=log) if int8 and (qat or not adapt) else None
    if qat:
        from .qat import quantisation_aware_finetune
        tuned = quantisation_aware_finetune(run_dir, qat, waves, data=data, lr=qat_lr, log=log)
        net.load_state_dict(load_weights(tuned["qat_weights"]))
        result.update(tuned)
    held_out = None
    if adapt:      # fitted after QAT, which may tune a learned front end the statistics are measured through
        install(net, fit_to_recordings(adapt, net, run.domain, run_split(run, data, log=log), target))
        n_rec = int(recording.max()) + 1
        result.update(adapted={"method": adapt, "source_device": run.domain.source, "recordings": n_rec,
                               "windows": len(target), "skipped": skipped})
        log(f"{adapt}: source device {run.domain.source} <- {n_rec} recording(s), {len(target)} windows"
            + (f"; {len(skipped)} file(s) skipped" if skipped else ""))
        if int8:   # ranges of the device's adapted features: calibrate on half of its recordings, compare on the rest
            half = recording % 2 == 0
            waves, held_out = (target, target) if n_rec < 2 else (target[half], target[~half])
            waves, held_out = spread(waves, calibration_clips), spread(held_out, calibration_clips)
            result["compared_on_calibration"] = n_rec < 2
    module = net if frontend == "included" else _Features(net)

    def make_input(length: int, batch: int = 2) -> torch.Tensor:
        wave = 0.1 * torch.randn(batch, length, generator=torch.Generator().manual_seed(length))
        if frontend == "included":
            return wave
        with torch.inference_mode():
            return net.frontend(wave)

    stem = "model.adapted" if adapt else "model"
    out = Path(out) if out else run_dir / (f"{stem}.qat.int8.onnx" if qat else f"{stem}.int8.onnx" if int8 else f"{stem}.onnx")
    out.parent.mkdir(parents=True, exist_ok=True)
    result.update({"file": str(out), "input": "waveform" if frontend == "included" else "features"})
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        checks = [make_input(n), make_input(n * 3 // 4, 3), make_input(n * 2, 1)]
        _to_onnx(module, make_input(n), fp32, dynamic_length=True, opset=opset)
        worst = _largest_difference(fp32, module, checks)
        fixed = worst > TOLERANCE
        if fixed:
            log(f"note: the network's output depends on the traced length (largest difference {worst:.2g} at other "
                f"lengths); exporting for {n}-sample clips only")
            _to_onnx(module, make_input(n), fp32, dynamic_length=False, opset=opset)
            worst = _largest_difference(fp32, module, [make_input(n), make_input(n, 5)])
        if worst > TOLERANCE:
            raise RuntimeError(f"{run_dir}: the exported model differs from PyTorch by {worst:.3g} (> {TOLERANCE}); "
                               "not written")
        result.update(fp32_max_difference=worst, dynamic_length=not fixed)
        final = fp32
        if int8:
            final = Path(tmp) / "int8.onnx"
            inputs = [x.numpy() for x in _inputs_of(net, waves, frontend)]
            nodes = quantisable_nodes(fp32)
            left_float = float_in_int8(nodes, module)
            quantize_int8(fp32, final, inputs, Path(tmp), exclude=[n["name"] for n in left_float])
            quantised = int8_quantised_nodes(final)
            result.update(int8_layers=len(quantised),
                          int8_float_nodes=[_describe(n) for n in left_float if n["name"] not in quantised])
            if result["int8_float_nodes"]:
                log(f"note: left float in the int8 file (front-end Conv without learned weights): "
                    f"{', '.join(result['int8_float_nodes'])}")
            if len(result["int8_float_nodes"]) < len(left_float):
                log(f"warning: onnxruntime quantised front-end node(s) it was told to leave float: "
                    f"{', '.join(_describe(n) for n in left_float if n['name'] in quantised)}")
            if qat:
                result.update(qat_coverage(nodes, quantised, result["qat_simulated"]))
                if result["qat_not_simulated"]:
                    log(f"warning: {len(result['qat_not_simulated'])} int8 node(s) of the file were not simulated in "
                        f"QAT (their rounding was not trained for): {', '.join(result['qat_not_simulated'])}")
                if result["qat_simulated_but_float"]:
                    log(f"warning: QAT simulated int8 rounding in layer(s) the file leaves float: "
                        f"{', '.join(result['qat_simulated_but_float'])}")
            if held_out is None:                 # validation clips: not calibrated on
                held_out = calibration_waves(run, calibration_clips, data, "val_split", log=log)
            result.update(compare_int8(fp32, final, [x.numpy() for x in _inputs_of(net, held_out, frontend)]),
                          calibration_clips=len(waves), compared_clips=len(held_out))
        meta = {"recipe": str(run.cfg.get("name")), "config": json.dumps(run.cfg), "domain": json.dumps(run.domain.to_json()),
                "input": result["input"], "precision": "int8" if int8 else "fp32",
                "fixed_length": "true" if fixed else "false", "sample_rate": str(run.sample_rate),
                "clip_samples": str(n), "sceneshift_version": _sceneshift_version()}
        if adapt:
            meta["adapted"] = json.dumps({k: v for k, v in result["adapted"].items() if k != "skipped"})
        if qat:
            meta["qat"] = json.dumps({k: v for k, v in result.items() if k.startswith("qat_") and k != "qat_weights"})
        _set_metadata(final, meta)
        with atomic_path(out) as tmp_out:
            os.replace(final, tmp_out)
    result["bytes"] = out.stat().st_size
    return result


def _inputs_of(net, waves: np.ndarray, frontend: str, batch: int = 32):
    for x in iter_batches(waves, batch):
        if frontend == "included":
            yield x
        else:
            with torch.inference_mode():
                yield net.frontend(x)


def quantisable_nodes(fp32: Path) -> list[dict]:
    """The nodes of an fp32 export that :func:`quantize_int8` quantises (Conv, Gemm), in graph order: ``name``,
    ``op`` and ``module``, the path (as ``named_modules``) of the torch module whose forward made the node, read
    from the exporter's metadata (``pkg.torch.onnx.name_scopes``): for a convolution with a batch norm fused in,
    the batch norm's; '' for the exported module itself; None where the exporter recorded none."""
    import ast
    import onnx
    nodes = []
    for node in onnx.load(str(fp32)).graph.node:
        if node.op_type not in QUANTISED_OPS:
            continue
        scopes = next((p.value for p in node.metadata_props if p.key == "pkg.torch.onnx.name_scopes"), None)
        try:
            scopes = ast.literal_eval(scopes) if scopes else None
        except (ValueError, SyntaxError):
            scopes = None
        module = str(scopes[-2]) if isinstance(scopes, list) and len(scopes) >= 2 else None
        nodes.append({"name": node.name, "op": node.op_type, "module": module})
    return nodes


def float_in_int8(nodes: list[dict], module: nn.Module) -> list[dict]:
    """The nodes ``--int8`` leaves float: the front end's, made by a module without weights of its own (the
    log-mel's delta convolutions, constant kernels); see the module docstring for why. A learned front-end
    layer (an ``nn.Conv1d``) and every node outside the front end are quantised."""
    kept = []
    for n in nodes:
        path = n["module"]
        if path is None or not (path == "frontend" or path.startswith("frontend.")):
            continue
        try:
            owner = module.get_submodule(path)
        except AttributeError:
            continue
        if not any(True for _ in owner.parameters(recurse=False)):
            kept.append(n)
    return kept


def int8_quantised_nodes(int8: Path) -> dict[str, str]:
    """{name: op} of the Conv / Gemm nodes of a QDQ int8 file whose weight is int8 (dequantised in the graph)."""
    import onnx
    graph = onnx.load(str(int8)).graph
    made_by = {o: n for n in graph.node for o in n.output}
    return {n.name: n.op_type for n in graph.node if n.op_type in QUANTISED_OPS and len(n.input) > 1
            and getattr(made_by.get(n.input[1]), "op_type", None) == "DequantizeLinear"}


def qat_coverage(nodes: list[dict], quantised: dict[str, str], simulated: list[str]) -> dict:
    """What QAT simulated against what the int8 file quantises, matched by module path: ``qat_not_simulated``,
    the file's int8 nodes made by no simulated layer (or by a module the exporter did not record), and
    ``qat_simulated_but_float``, the simulated layers that made no int8 node."""
    known = {n["name"]: n for n in nodes}
    int8 = [known.get(name, {"name": name, "op": op, "module": None}) for name, op in quantised.items()]
    done = set(simulated)
    return {"qat_not_simulated": [_describe(n) for n in int8 if n["module"] is None or n["module"] not in done],
            "qat_simulated_but_float": sorted(done - {n["module"] for n in int8})}


def _describe(node: dict) -> str:
    where = "module unknown" if node["module"] is None else f"module {node['module'] or '(the network)'}"
    return f"{node['name']} ({node['op']}, {where})"


def quantize_int8(fp32: Path, int8: Path, calibration: list[np.ndarray], tmp: Path, exclude=(),
                  reduce_range: bool = True):
    """Static QDQ quantisation of the Conv and Gemm nodes but those named in ``exclude``: int8 weights per output
    channel (symmetric), int8 activations per tensor (asymmetric), min/max calibrated on ``calibration``.

    Weights use 7 of the 8 bits ([-64, 64], onnxruntime's ``reduce_range``): on x86 CPUs without VNNI
    (AVX2 and AVX-512 without VNNI) onnxruntime's int8 kernels add pairs of u8 x s8 products in 16 bits,
    which saturate with full-range weights. Measured on an AMD EPYC with AVX2 only
    (``python benchmarks/int8_saturation.py RUN --per-layer``, the test suite's tiny Kaggle-CNN run, 32
    training clips): 8-bit weights agreed with fp32 on 69 % of them (logits off by up to 5.0), the first
    11x11 convolution alone quantised on 72 %; with 7-bit weights on all (logits within 0.16).
    The file must be right on whatever CPU runs it; ``reduce_range=False`` is for that comparison."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self, name):
            self.items = iter([{name: x} for x in calibration])

        def get_next(self):
            return next(self.items, None)

    pre = tmp / "pre.onnx"
    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
    name = _session(pre).get_inputs()[0].name
    quantize_static(str(pre), str(int8), Reader(name), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=list(QUANTISED_OPS), nodes_to_exclude=list(exclude),
                    reduce_range=reduce_range, extra_options={"ActivationSymmetric": False})


def compare_int8(fp32: Path, int8: Path, inputs: list[np.ndarray]) -> dict:
    """Agreement of the int8 model's decisions with the fp32 model's on the given clips."""
    a, b = _session(fp32), _session(int8)
    name = a.get_inputs()[0].name
    za = np.concatenate([a.run(None, {name: x})[0] for x in inputs])
    zb = np.concatenate([b.run(None, {name: x})[0] for x in inputs])
    return {"int8_agreement": float((za.argmax(1) == zb.argmax(1)).mean()),
            "int8_max_logit_difference": float(np.abs(za - zb).max())}
