"""Frequency-wise normalisations (models/norms.py) against their plain formula, side by side.

Times forward and forward + backward of ResNorm's frequency-wise instance norm and RFN's layer norm
as sceneshift computes them (torch's fused instance / group norm) and as the formula reads (mean and
biased variance over dims, ``(x - mean) / sqrt(var + eps)``), checks that both agree, and prints the
ratio. One thread; a Mini-SegNet (seed002) activation by default.

    python benchmarks/norm_speed.py [--shape 64 16 64 175] [--repeats 5]
"""
from __future__ import annotations

import argparse
import time

import torch

from sceneshift.models.norms import frequency_instance_norm, layer_norm


def formula(x, dims, eps=1e-5):
    return (x - x.mean(dim=dims, keepdim=True)) / torch.sqrt(x.var(dim=dims, keepdim=True, unbiased=False) + eps)


def best_seconds(fn, x, repeats: int, backward: bool) -> float:
    best = float("inf")
    for _ in range(repeats + 1):                     # the first call warms up
        t0 = time.perf_counter()
        y = fn(x)
        if backward:
            y.sum().backward()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=4, default=[64, 16, 64, 175], metavar=("B", "C", "F", "T"))
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    x = torch.randn(*a.shape).requires_grad_(True)
    cases = [("frequency-wise IN", lambda v: frequency_instance_norm(v, 1e-5), lambda v: formula(v, (1, 3))),
             ("layer norm", lambda v: layer_norm(v, 1e-5), lambda v: formula(v, (1, 2, 3)))]
    print(f"shape {tuple(a.shape)}, 1 thread, best of {a.repeats}, ms")
    print(f"{'norm':<19}{'pass':<16}{'formula':>9}{'sceneshift':>12}{'speed-up':>10}{'max |diff|':>12}")
    for name, ours, ref in cases:
        diff = (ours(x) - ref(x)).abs().max().item()
        for label, backward in (("forward", False), ("forward+backward", True)):
            t_ref, t_ours = (best_seconds(f, x, a.repeats, backward) for f in (ref, ours))
            print(f"{name:<19}{label:<16}{1e3 * t_ref:>9.1f}{1e3 * t_ours:>12.1f}{t_ref / t_ours:>9.2f}x{diff:>12.1e}")


if __name__ == "__main__":
    main()
