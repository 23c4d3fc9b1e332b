"""Class activation maps (Zhou et al. 2016), as in Figures 2-3 of Hu et al. (seed 003).

For a backbone whose embedding is the global average of its last feature maps ``M`` (shape
``K x F' x T'``) followed by a linear head, the logit of class ``c`` is
``b_c + mean_ft(sum_k w_ck M_k(f, t))``; the map ``CAM_c(f, t) = sum_k w_ck M_k(f, t)`` therefore
says where in time and frequency the evidence for ``c`` comes from, exactly (its mean plus the
bias is the logit). It is upsampled to the input's mel x frame grid for display. Backbones
expose ``feature_maps`` and ``pool`` (resnet_fsplit, fcnn, fsfcnn); the paper shows only the
ResNet's maps, whose frequency axis is never pooled.

``sceneshift explain RUN FILE`` draws the log-mel spectrogram and the CAM of the predicted
class; for a two-stage system also the coarse model's CAM of that class's parent. For an
ensemble, the first member whose backbone supports CAM is drawn.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def supports_cam(net) -> bool:
    return hasattr(net.backbone, "feature_maps") and hasattr(net.backbone, "pool") and hasattr(net.head, "weight")


@torch.no_grad()
def class_activation_map(net, wave: torch.Tensor, class_index: int | None = None) -> dict:
    """CAM of one clip ``wave (samples,)``: ``features (C, F, T)``, ``cam_raw (F', T')``, ``cam (F, T)``."""
    if not supports_cam(net):
        raise ValueError(f"{type(net.backbone).__name__} has no feature_maps/pool (or the head is not linear): "
                         "class activation maps need a backbone such as resnet_fsplit, fcnn or fsfcnn")
    net.eval()
    x = net.features(wave.float().reshape(1, -1))
    maps = net.backbone.feature_maps(x)                           # (1, K, F', T')
    logits = net.head(net.backbone.pool(maps))[0]
    proba = torch.softmax(logits, dim=0)
    c = int(proba.argmax()) if class_index is None else int(class_index)
    cam_raw = torch.einsum("k,kft->ft", net.head.weight[c], maps[0])
    cam = F.interpolate(cam_raw[None, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    return {"features": x[0], "cam_raw": cam_raw, "cam": cam, "class_index": c, "logits": logits,
            "probabilities": proba}


def _cam_net(predictor):
    """The first network of a run, ensemble or two-stage part whose backbone supports CAM."""
    from ..networks.ensemble import EnsemblePredictor
    if isinstance(predictor, EnsemblePredictor):
        for m in predictor.members:
            found = _cam_net(m)
            if found is not None:
                return found
        return None
    net = getattr(predictor, "net", None)
    return predictor if net is not None and supports_cam(net) else None


def explain(run: str | Path, file: str | Path, out: str | Path | None = None, class_name: str | None = None,
            log=print) -> Path:
    """Write the figure for ``file`` and return its path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ..data.audio import fit_length, load_audio
    from ..io import atomic_savefig
    from ..networks.ensemble import TwoStagePredictor
    from ..networks.predictor import load_predictor, windows

    system = load_predictor(run, device="cpu")
    two_stage = isinstance(system, TwoStagePredictor)
    fine = _cam_net(system.fine if two_stage else system)
    if fine is None:
        raise ValueError(f"{run}: no model with class activation maps (use resnet_fsplit, fcnn or fsfcnn)")
    wave = load_audio(file, system.sample_rate)
    wave = fit_length(wave, max(len(wave), system.n_samples))
    proba = system.probabilities(windows(wave, system.n_samples)).mean(axis=0)
    if class_name is not None and class_name not in system.classes:
        raise ValueError(f"--class: {class_name!r} is not one of {', '.join(system.classes)}")
    scene = class_name or system.classes[int(np.argmax(proba))]
    panels = []
    x = torch.from_numpy(wave)
    if two_stage:
        coarse = _cam_net(system.coarse)
        parent = system.parents[scene]
        if coarse is not None:
            r = class_activation_map(coarse.net, x, list(coarse.classes).index(parent))
            panels.append((f"CAM of the {len(coarse.classes)}-class model: {parent} "
                           f"(p = {float(r['probabilities'][r['class_index']]):.2f})", r))
    r = class_activation_map(fine.net, x, list(fine.classes).index(scene))
    panels.append((f"CAM of the {len(fine.classes)}-class model: {scene} "
                   f"(p = {float(r['probabilities'][r['class_index']]):.2f})", r))

    seconds = len(wave) / system.sample_rate
    fig, axes = plt.subplots(len(panels) + 1, 1, figsize=(8, 2.2 * (len(panels) + 1)), sharex=True)
    spec = r["features"][0].numpy()
    axes[0].imshow(spec, origin="lower", aspect="auto", cmap="magma", extent=(0, seconds, 0, spec.shape[0]))
    p_scene = float(proba[system.classes.index(scene)])
    axes[0].set_title(f"{Path(file).name}: log-mel spectrogram; system: {scene} (p = {p_scene:.2f})", fontsize=9)
    for ax, (title, res) in zip(axes[1:], panels):
        ax.imshow(res["cam"].numpy(), origin="lower", aspect="auto", cmap="jet", extent=(0, seconds, 0, spec.shape[0]))
        ax.set_title(title, fontsize=9)
    for ax in axes:
        ax.set_ylabel("mel bin")
    axes[-1].set_xlabel("time (s)")
    fig.tight_layout()
    out = Path(out) if out else Path(f"{Path(file).stem}.cam.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_savefig(fig, out, dpi=120)
    plt.close(fig)
    log(f"{file}: {scene} (p = {p_scene:.3f}); figure {out}")
    return out
