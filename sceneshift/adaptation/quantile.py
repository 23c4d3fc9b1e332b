"""Band-wise quantile matching: histogram equalisation of each feature band onto the source device.

Why: band-wise statistics matching (bandwise.py) corrects a device's per-band gain and spread, the
first two moments. A phone's chain also bends the level distribution of a band: a noise floor lifts
its quiet frames and not its loud ones, a compressor, automatic gain control or clipping squeezes
its loud ones. Mean/std matching cannot undo such a bend; mapping the target device's quantiles of
each band onto the source device's can, as long as the bend is monotone. This is histogram
equalisation (HEQ), the classic channel and noise normalisation of speech-recognition features
(de la Torre et al., IEEE TSAP 2005), applied band by band between front end and backbone.

For every channel and band, ``KNOTS`` quantiles (the 1st to the 99th percentile) are measured over
all clips and frames, once on the source device's training clips and once on the unlabeled clips
of a target device. The map sends the target's quantiles onto the source's and is linear between
them; outside the outermost ones it is a shift with slope 1 (the extreme tails are too thin to
estimate a slope from). No segment is steeper than ``MAX_SLOPE``: where the target's knots crowd
together (a plateau of identical values, e.g. a floor, or a constant band) they are moved apart just
enough, as much to the left as to the right, so the map still passes through every source quantile,
a plateau's value lands in the middle of the source range it covers (a constant band near the
source's median, as band-wise matching sends it to the source's mean), and its rounding noise is
never blown up.

The map is written as a sum of ramps, ``y = y_0 + (x - x_0) + sum_k (s_k - s_{k-1}) relu(x - x_k)``,
which needs only subtraction, relu, multiplication and addition: it runs as it is in an ONNX file,
and int8 export leaves it in fp32 (only Conv and Gemm are quantised).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..data.splits import iter_batches
from . import ADAPTATIONS

KNOTS = np.linspace(0.01, 0.99, 99)   # the percentiles matched
MAX_SLOPE = 10.0                      # steepest segment of the map
MAX_VALUES = 1_000_000                # frames per band kept for the quantiles (every k-th frame beyond that)


@torch.no_grad()
def band_quantiles(frontend: nn.Module, waves, rows=None, batch_size: int = 128, device="cpu",
                   probs=KNOTS, max_values: int = MAX_VALUES) -> np.ndarray:
    """Per-channel, per-band quantiles ``(C, F, K)`` of ``frontend(waves[rows])`` over clips and frames.

    At most about ``max_values`` frames per band are kept: beyond that every k-th frame of the
    concatenated clips (a fixed stride, so the result does not depend on the batch size).
    """
    n_clips = len(waves) if rows is None else len(rows)
    kept, stride, offset = [], None, 0
    for w in iter_batches(waves, batch_size, rows, device):
        x = frontend(w).float()                                    # (B, C, F, T)
        b, c, f, t = x.shape
        if stride is None:
            stride = max(1, math.ceil(n_clips * t / max_values))
        frames = x.permute(1, 2, 0, 3).reshape(c, f, b * t)        # clips' frames one after another
        kept.append(frames[..., (-offset) % stride::stride].cpu().numpy())
        offset += b * t
    if not kept:
        raise ValueError("band quantiles need at least one clip")
    values = np.concatenate(kept, axis=-1)                            # float32: up to C x F x max_values
    out = np.empty(values.shape[:2] + (len(probs),))
    for c, f in np.ndindex(*values.shape[:2]):                        # one band at a time: no float64 copy
        out[c, f] = np.quantile(values[c, f], probs)
    return out


class QuantileMatch(nn.Module):
    """``x (B, C, F, T)`` -> each band's target quantiles moved onto the source's, linear in between."""

    def __init__(self, source_quantiles, target_quantiles):
        super().__init__()
        y = np.maximum.accumulate(np.asarray(source_quantiles, dtype=np.float64), axis=-1)
        x = np.asarray(target_quantiles, dtype=np.float64)
        if x.shape != y.shape or x.ndim not in (2, 3) or x.shape[-1] < 2:
            raise ValueError(f"quantiles must be (F, K) or (C, F, K) with K >= 2, the same for source and target; "
                             f"got source {y.shape}, target {x.shape}")
        if x.ndim == 2:                                              # (F, K) -> one channel
            x, y = x[None], y[None]
        # smallest gap between knots: a rise over MAX_SLOPE, and never below float32 resolution of the band
        scale = np.maximum(np.abs(y).max(axis=-1, keepdims=True), 1.0)
        gap = np.maximum(np.diff(y, axis=-1), 1e-4 * scale) / MAX_SLOPE          # (C, F, K-1)
        right, left = x.copy(), x.copy()
        for k in range(1, x.shape[-1]):                              # crowded knots pushed to the right ...
            right[..., k] = np.maximum(right[..., k], right[..., k - 1] + gap[..., k - 1])
        for k in range(x.shape[-1] - 2, -1, -1):                     # ... and to the left
            left[..., k] = np.minimum(left[..., k], left[..., k + 1] - gap[..., k])
        x = (right + left) / 2                                       # both apart by >= gap: centred on a plateau
        slopes = np.diff(y, axis=-1) / np.diff(x, axis=-1)           # (C, F, K-1)
        ones = np.ones(slopes.shape[:-1] + (1,))
        change = np.diff(np.concatenate([ones, slopes, ones], axis=-1), axis=-1)   # (C, F, K)
        as_buffer = lambda v: torch.as_tensor(v, dtype=torch.float32)[..., None]  # noqa: E731  (C, F, K, 1)
        self.register_buffer("knots", as_buffer(x))
        self.register_buffer("slope_change", as_buffer(change))
        self.register_buffer("start", as_buffer(y[..., :1] - x[..., :1])[..., 0, :])   # (C, F, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x + self.start
        for k in range(self.knots.shape[-2]):
            y = y + self.slope_change[:, :, k] * torch.relu(x - self.knots[:, :, k])
        return y


@ADAPTATIONS.register("quantile")
def fit_quantile(net: nn.Module, source, targets: dict, batch_size: int = 128, device="cpu") -> dict:
    """``{device: QuantileMatch}`` mapping each ``targets[device] = (waves, rows)`` onto ``source = (waves, rows)``
    in the output of ``net.frontend``."""
    frontend = net.frontend
    sq = band_quantiles(frontend, *source, batch_size=batch_size, device=device)
    out = {}
    for name, (waves, rows) in targets.items():
        tq = band_quantiles(frontend, waves, rows, batch_size=batch_size, device=device)
        out[name] = QuantileMatch(sq, tq).to(device)
    return out
