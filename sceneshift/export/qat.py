"""Quantisation-aware fine-tuning before the int8 export (``sceneshift export RUN --int8 --qat EPOCHS``).

Why: post-training int8 quantisation rounds weights the network was never trained to tolerate;
a few epochs of training with that rounding simulated in the forward pass (fake quantisation,
straight-through gradients) let the weights settle where rounding costs least.

What is simulated is exactly the scheme onnxruntime's static quantiser applies at export
(``onnx.quantize_int8``), and only where it applies it, so nothing is trained that the int8 file
does not do:

* the weights of every convolution module (``nn.Conv1d``, ``nn.Conv2d``) and of every dense layer
  (``nn.Linear``) on a 2-D input (the ops ONNX exports as Conv and Gemm, the only ones quantised):
  int8 per output channel, symmetric, 7-bit range [-64, 64] (the export's ``reduce_range``, see
  ``onnx.quantize_int8``), scale = max |w| / 64, recomputed from the current weights at every step;
* the same for the one functional Gemm of the heads: ArcFace's cosine layer
  ``F.linear(normalize(x), normalize(W))``, which the exporter turns into a Gemm whose weight is the
  constant-folded ``normalize(W)``: that normalised weight is rounded per class (row), its input (the
  normalised embedding) and output (the cosines) per tensor as below;
* a batch norm that directly takes a convolution's output, which nothing else uses, is folded into it
  first, where the ONNX exporter fuses it (not where, as in seed 003's pre-activation blocks, a shortcut
  takes the convolution's output too: folding that one fed the shortcut normalised maps, another network),
  and the folded weight is what gets rounded; its running statistics are frozen during fine-tuning (its
  scale and shift still learn), so the fold is exact;
* the input and output of each of those layers: int8 per tensor, asymmetric, [-128, 127], with
  the range (zero included) that onnxruntime's min/max calibration would measure: the fp32 network's
  global min/max over the same training clips (``calibration``), re-measured with the current weights
  before every validation, so each validated model is the int8 model the export would write.
  The ranges are not learned; the export's own calibration sets the int8 file's activation scales.

Not simulated: int32 bias rounding (scale = input scale x weight scale, negligible); a layer's rounded
input as its other consumers see it (onnxruntime rounds the tensor once for all of them, so a residual
shortcut adds the rounded block input in the int8 file, the float one here: one rounding step of the
shortcut); and what the int8 file leaves float: batch norms that are not folded, and the front end's Conv
nodes without learned weights (the log-mel's delta convolutions, excluded from quantisation by the export:
``onnx.float_in_int8``). The export checks the claim on the graph it quantises: each int8 Conv / Gemm node
of the file is matched, by the module the exporter traced it from, against the layers simulated here
(:attr:`FakeQuantization.simulated`); a node quantised but not simulated (a functional convolution or dense
layer of a network added later), or a layer simulated but left float, is named in a warning and in the
result (``qat_not_simulated``, ``qat_simulated_but_float``).

Training: the run's own system, recipe (augmentations, loss, optimiser, weight decay, batch size) and
training split, from the run's ``model.pt``; the learning rate is the recipe's / 10 unless given,
cosine-decayed over the QAT epochs without warm-up. Selection: validation accuracy of the simulated
int8 model after each epoch and before the first (epoch 0, the untuned weights); the evaluation split
is never read. The selected weights go to ``RUN/model-qat.pt`` (the run's ``model.pt`` is never
written); they are plain fp32 weights of the run's network, in its state-dict format.

Why not ``torch.ao.quantization`` (``prepare_qat_fx``): deprecated in torch 2.13 ("will be removed"),
its defaults (unsigned 8-bit activations with reduced range) differ from onnxruntime's, and FX tracing
fails on several backbones here (mini_segnet, mobilefacenet, resnet_fsplit). onnxruntime training is
not installed. The core fake-quantisation ops used here are plain torch operators.
"""
from __future__ import annotations

import copy
import math
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.splits import DataSource, iter_batches
from ..heads.arcface import ArcFaceHead
from ..io import atomic_torch_save
from ..networks.predictor import load_run_config, load_weights

WEIGHT_QMAX = 64               # onnxruntime, reduce_range: symmetric int8 weights use [-64, 64]
ACT_QMIN, ACT_QMAX = -128, 127
LR_FACTOR = 0.1                # default QAT learning rate: the recipe's times this
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def check_epochs(epochs) -> int:
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"--qat: the number of quantisation-aware fine-tuning epochs must be a whole number "
                         f">= 1, got {epochs!r}")
    return int(epochs)


def check_lr(lr) -> float:
    """The fine-tuning's learning rate: a positive finite number (``--qat-lr``, or the recipe's / 10)."""
    if isinstance(lr, bool) or not isinstance(lr, (int, float, np.floating)) or not 0 < lr < math.inf:
        raise ValueError(f"--qat-lr must be a positive number, got {lr!r}")
    return float(lr)


class _Range:
    """One activation tensor's int8 range: observed (global min/max) in calibration, applied in ``quant`` mode."""

    def __init__(self):
        self.lo = self.hi = None

    def __call__(self, x: torch.Tensor, mode: str) -> torch.Tensor:
        if mode == "observe":
            lo, hi = float(x.detach().min()), float(x.detach().max())
            self.lo = lo if self.lo is None else min(self.lo, lo)
            self.hi = hi if self.hi is None else max(self.hi, hi)
            return x
        if mode != "quant" or self.lo is None:
            return x
        lo, hi = min(self.lo, 0.0), max(self.hi, 0.0)          # as onnxruntime: the range holds zero
        if hi == lo:
            return x
        scale = (hi - lo) / (ACT_QMAX - ACT_QMIN)
        zero = int(min(ACT_QMAX, max(ACT_QMIN, round(ACT_QMIN - lo / scale))))
        return torch.fake_quantize_per_tensor_affine(x, scale, zero, ACT_QMIN, ACT_QMAX)


def fake_quantize_weight(w: torch.Tensor) -> torch.Tensor:
    """Per-output-channel symmetric int8 rounding (straight-through gradient), onnxruntime's weight scheme and
    arithmetic: scale = 2 max|w| / 254 in float64 stored as float32, ``round(w / scale)`` half to even in float32
    (``onnxruntime.quantization.quant_utils``), so that ties round as in the int8 file (torch's
    ``fake_quantize_per_channel_affine`` multiplies by 1 / scale, which rounds about one weight in 10^5 the
    other way)."""
    peak = w.detach().abs().flatten(1).amax(1).double()
    scale = torch.where(peak > 0, peak * 2 / (2 * WEIGHT_QMAX), torch.ones_like(peak)).float()
    scale = scale.reshape(-1, *[1] * (w.dim() - 1))
    rounded = torch.round(w.detach().float() / scale).clamp(-WEIGHT_QMAX, WEIGHT_QMAX) * scale
    return rounded.to(w.dtype) + (w - w.detach())       # forward: exactly ``rounded``; gradient: identity


class FakeQuantization:
    """Fake int8 quantisation put into a network in place, by overriding the ``forward`` of its conv and dense
    layers (and of folded batch norms) and the ``cosines`` of its ArcFace heads, per instance: the module tree
    and state-dict keys stay as they are, so the optimiser, the training system and ``model.pt``'s format are
    untouched. :meth:`remove` undoes it.

    ``mode``: ``"quant"`` (simulate int8), ``"observe"`` (fp32, record activation ranges) or ``"off"``.
    """

    def __init__(self, net: nn.Module, example: torch.Tensor):
        self.mode = "off"
        self.paths = {id(m): name for name, m in net.named_modules()}
        self.layers = [m for m in net.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]
        self.cosine_heads = [m for m in net.modules() if isinstance(m, ArcFaceHead)]
        self.folded = self._conv_bn_pairs(net, example)
        self.ranges = {id(m): (_Range(), _Range()) for m in [*self.layers, *self.cosine_heads]}
        self.reached = set()         # id of each layer whose int8 path a forward took
        for m in self.layers:
            m.forward = self._forward_of(m, self.folded.get(id(m)))
        for bn in self.folded.values():
            bn.forward = _identity
        for head in self.cosine_heads:
            head.cosines = self._cosines_of(head)
        was = net.training
        try:                           # one pass to learn which layers the network uses (and how)
            net.eval()
            with torch.no_grad():
                net(example.to(next(net.parameters()).device))
        finally:
            net.train(was)

    @property
    def simulated(self) -> list[str]:
        """The module paths (``named_modules``) of the int8 layers simulated, as the ONNX exporter names the module
        of the node it makes of each: a convolution with a batch norm folded in under the batch norm's path."""
        return sorted({self.paths[id(self.folded[i])] if i in self.folded else self.paths[i] for i in self.reached})

    @staticmethod
    def _conv_bn_pairs(net: nn.Module, example: torch.Tensor) -> dict:
        """{id(conv): bn} for each batch norm the ONNX exporter fuses into a convolution (onnxscript's
        ``FuseBatchNormIntoConv``): its input is a convolution's output, unmodified and used by nothing else (a
        pre-activation block's shortcut that takes the convolution's output keeps the batch norm apart), of a
        convolution that runs once per forward (a weight shared by two Conv nodes is not fused). One forward
        pass, with autograd recording who uses each convolution's output."""
        made, pairs, calls, outputs, hooks = {}, {}, {}, {}, []

        def after_conv(conv, _, out):
            calls[id(conv)] = calls.get(id(conv), 0) + 1
            made[id(out)] = (conv, out, out._version)

        def before_bn(bn, args):
            x = args[0]
            hit = made.get(id(x))
            if hit and hit[1] is x and x._version == hit[2] and bn.track_running_stats and \
                    bn.running_var is not None and bn.num_features == hit[0].out_channels:
                pairs.setdefault(id(hit[0]), []).append(bn)
                outputs[id(hit[0])] = x

        for m in net.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d)):
                hooks.append(m.register_forward_hook(after_conv))
            elif type(m) in _BATCH_NORMS:       # exactly: a subclass may normalise otherwise
                hooks.append(m.register_forward_pre_hook(before_bn))
        was = net.training
        try:
            net.eval()
            with torch.enable_grad():
                result = net(example.to(next(net.parameters()).device).detach().requires_grad_(True))
        finally:
            net.train(was)
            for h in hooks:
                h.remove()
        users = _autograd_users(result)
        return {k: v[0] for k, v in pairs.items()
                if len(v) == 1 and calls[k] == 1 and users.get(outputs[k].grad_fn, 0) == 1}

    def _forward_of(self, m: nn.Module, bn: nn.Module | None):
        ranges = self.ranges[id(m)]

        def forward(x):
            if isinstance(m, nn.Linear) and x.dim() != 2:      # exported as MatMul: stays float in onnxruntime
                return nn.Linear.forward(m, x)
            self.reached.add(id(m))
            x = ranges[0](x, self.mode)
            w, b = m.weight, m.bias
            if bn is not None:
                k = torch.rsqrt(bn.running_var + bn.eps)
                if bn.weight is not None:
                    k = k * bn.weight
                shift = -bn.running_mean * k + (bn.bias if bn.bias is not None else 0.0)
                w = w * k.reshape(-1, *[1] * (w.dim() - 1))
                b = shift if b is None else b * k + shift
            if self.mode == "quant":
                w = fake_quantize_weight(w)
            y = nn.functional.linear(x, w, b) if isinstance(m, nn.Linear) else m._conv_forward(x, w, b)
            return ranges[1](y, self.mode)

        return forward

    def _cosines_of(self, head: ArcFaceHead):
        """ArcFace's cosine layer as the int8 file computes it: a Gemm of the normalised embedding (int8 per tensor)
        and the constant-folded normalised class weights (int8 per class), its output int8 per tensor. The
        normalisation is ``ArcFaceHead.cosines``' own (tests/test_qat.py checks the two against the int8 file)."""
        ranges = self.ranges[id(head)]

        def cosines(embedding):
            self.reached.add(id(head))
            x = ranges[0](nn.functional.normalize(embedding.float(), dim=1), self.mode)
            w = nn.functional.normalize(head.weight.float(), dim=1)
            if self.mode == "quant":
                w = fake_quantize_weight(w)
            return ranges[1](nn.functional.linear(x, w), self.mode)

        return cosines

    def calibrate(self, net: nn.Module, waves: np.ndarray, batch_size: int = 32):
        """Activation ranges as onnxruntime's min/max calibration measures them: fp32 network, eval mode."""
        for r in self.ranges.values():
            r[0].lo = r[0].hi = r[1].lo = r[1].hi = None
        was, device = net.training, next(net.parameters()).device
        self.mode = "observe"
        try:
            net.eval()
            with torch.no_grad():
                for x in iter_batches(waves, batch_size, device=device):
                    net(x)
        finally:
            self.mode = "quant"
            net.train(was)

    def remove(self):
        self.mode = "off"
        for m in [*self.layers, *self.folded.values()]:
            m.__dict__.pop("forward", None)
        for head in self.cosine_heads:
            head.__dict__.pop("cosines", None)


def _identity(x):
    return x


def _autograd_users(result) -> dict:
    """{autograd node: how many uses of its outputs} over the graph that made ``result`` (tensors, nested)."""
    stack, seen, users = [], set(), {}
    todo = [result]
    while todo:
        r = todo.pop()
        if isinstance(r, torch.Tensor):
            if r.grad_fn is not None:
                stack.append(r.grad_fn)
        elif isinstance(r, (tuple, list)):
            todo.extend(r)
        elif isinstance(r, dict):
            todo.extend(r.values())
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        for parent, _ in node.next_functions:
            if parent is not None:
                users[parent] = users.get(parent, 0) + 1
                stack.append(parent)
    return users


def _qat_callback(fq: FakeQuantization, waves: np.ndarray, log):
    import lightning as L

    class SelectOnValidation(L.Callback):
        """Before each validation: ranges as the export will set them; after it: keep the best weights."""

        def __init__(self):
            self.accuracy, self.best, self.state = [], -math.inf, None

        def on_validation_start(self, trainer, pl_module):
            fq.calibrate(pl_module.net, waves)

        def on_validation_end(self, trainer, pl_module):
            acc = float(trainer.callback_metrics["val/acc"])
            log(f"QAT epoch {len(self.accuracy)}: validation accuracy of the simulated int8 model {100 * acc:.1f} %")
            if acc > self.best:
                self.best = acc
                self.state = {k: v.detach().cpu().clone() for k, v in pl_module.net.state_dict().items()}
            self.accuracy.append(acc)

    return SelectOnValidation()


def quantisation_aware_finetune(run_dir: str | Path, epochs: int, calibration: np.ndarray,
                                data: str | Path | None = None, lr: float | None = None, log=print) -> dict:
    """Fine-tune the run's network for ``epochs`` epochs with fake int8 quantisation; write ``RUN/model-qat.pt``.

    ``calibration``: the training clips (waveforms) whose fp32 activation ranges set the simulated ones (the
    export calibrates onnxruntime on the same clips). Returns the weights file and what was measured.
    """
    import lightning as L
    from ..training import SYSTEMS
    from ..training.guards import RunGuard
    from ..training.run import _quiet_lightning, _threads_per_process

    epochs = check_epochs(epochs)
    run_dir = Path(run_dir)
    cfg, domain = load_run_config(run_dir)
    cfg = copy.deepcopy(cfg)
    if data:
        cfg["data"]["root"] = str(Path(data).resolve())
    t = cfg["train"]
    lr = check_lr(lr if lr is not None else LR_FACTOR * float(t["lr"]))
    t.update(epochs=epochs, lr=lr, scheduler="cosine", warmup_epochs=0)
    # eager: fake quantisation swaps layers' forward and re-measures ranges every epoch (recompiles)
    t["compile"] = False
    _quiet_lightning()
    source = DataSource(cfg["data"], domain, log=log)
    system = SYSTEMS.build(cfg["system"], cfg["system_options"], where="system_options", cfg=cfg, domain=domain,
                           data=source)
    if "val/acc" not in getattr(system, "monitors", ()):
        raise ValueError(f"{run_dir}: --qat selects on validation accuracy; system {cfg['system']!r} logs none")
    system.net.load_state_dict(load_weights(run_dir / "model.pt"))
    fq = FakeQuantization(system.net, torch.as_tensor(calibration[:2]))
    simulated = fq.simulated
    # the export calibrates and runs on fp32 front-end output (and int8 front-end layers where simulated):
    # features cached as float16 would validate another model than the file the export writes
    t["cache_features"] = False
    torch.set_num_threads(_threads_per_process(t, 1, 1, False))
    select = _qat_callback(fq, calibration, log)
    log(f"QAT: {epochs} epoch(s) at learning rate {lr:.3g} (cosine), {len(simulated)} layers int8, "
        f"{len(fq.folded)} batch norms folded")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            trainer = L.Trainer(max_epochs=epochs, default_root_dir=tmp, logger=False, enable_checkpointing=False,
                                callbacks=[RunGuard(t["seed"]), select], enable_progress_bar=False,
                                enable_model_summary=False, num_sanity_val_steps=0, precision="32-true",
                                limit_train_batches=t.get("limit_train_batches") or 1.0, deterministic=False,
                                devices=1)
            trainer.validate(system, verbose=False)        # epoch 0: the untuned weights, int8-simulated
            trainer.fit(system)
    finally:
        fq.remove()
    best = int(np.argmax(select.accuracy))
    weights = run_dir / "model-qat.pt"
    atomic_torch_save(select.state, weights)
    log(f"QAT: selected epoch {best} of {epochs} (validation accuracy {100 * select.accuracy[best]:.1f} %"
        f"{'; no epoch improved on the untuned weights, which are kept' if best == 0 else ''}); weights in {weights}")
    return {"qat_weights": str(weights), "qat_epochs": epochs, "qat_lr": lr, "qat_selected_epoch": best,
            "qat_val_acc": select.accuracy, "qat_layers": len(simulated), "qat_simulated": simulated,
            "qat_folded_batch_norms": len(fq.folded)}
