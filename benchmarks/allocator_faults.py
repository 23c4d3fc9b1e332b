"""Page faults and system time per training step, with and without sceneshift's allocator settings.

Runs the same few training steps of a recipe's network in one fresh process per allocator mode of
``sceneshift.runtime.keep_freed_memory``: glibc's default, only its thresholds raised, and
sceneshift's (thresholds raised and mmap off, what the command line uses), and prints minor page
faults, CPU seconds (user, system) and wall seconds per step and the peak resident size side by side.

    python benchmarks/allocator_faults.py --recipe baseline --steps 5
    python benchmarks/allocator_faults.py --recipe seed002 --steps 5
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys


from sceneshift.runtime import MODES

LABELS = {"default": "glibc default", "thresholds": "thresholds only", "sceneshift": "sceneshift"}


def child(recipe: str, steps: int, mode: str) -> dict:
    import time
    import torch
    from sceneshift.runtime import keep_freed_memory
    keep_freed_memory(mode)
    from sceneshift.data.domain import Domain
    from sceneshift.networks import build_network
    from sceneshift.training.recipe import load_recipe
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = load_recipe(recipe)
    net = build_network(cfg, Domain.placeholder(10))
    opt = torch.optim.Adam(net.parameters())
    wave = 0.1 * torch.randn(cfg["train"]["batch_size"], int(cfg["data"]["clip_seconds"] * cfg["data"]["sample_rate"]))
    y = torch.randint(0, 10, (len(wave),))

    def step():
        loss = torch.nn.functional.cross_entropy(net(wave), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    step()
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(steps):
        step()
    r1, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - t0
    return {"faults": (r1.ru_minflt - r0.ru_minflt) / steps, "user": (r1.ru_utime - r0.ru_utime) / steps,
            "system": (r1.ru_stime - r0.ru_stime) / steps, "wall": wall / steps, "rss_mb": r1.ru_maxrss / 1024}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="baseline")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--child", choices=list(MODES), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(child(a.recipe, a.steps, a.child)))
        return
    rows = {}
    for mode in reversed(MODES):           # default, thresholds, sceneshift
        out = subprocess.run([sys.executable, __file__, "--recipe", a.recipe, "--steps", str(a.steps), "--child", mode],
                             capture_output=True, text=True, check=True).stdout
        rows[mode] = json.loads(out.strip().splitlines()[-1])
    print(f"recipe {a.recipe}, {a.steps} steps, 1 thread, per step:")
    print(f"{'allocator':<17}{'minor faults':>14}{'user s':>9}{'system s':>10}{'wall s':>9}{'peak RSS MB':>13}")
    for mode, r in rows.items():
        print(f"{LABELS[mode]:<17}{r['faults']:>14,.0f}{r['user']:>9.3f}{r['system']:>10.3f}{r['wall']:>9.3f}"
              f"{r['rss_mb']:>13,.0f}")
    base = rows["default"]["wall"]
    print("wall time per step vs glibc default: " + ", ".join(f"{LABELS[m]} {base / r['wall']:.2f}x" for m, r in rows.items()))


if __name__ == "__main__":
    main()
