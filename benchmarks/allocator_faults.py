"""Page faults and system time per training step, with and without sceneshift's allocator settings.

Runs the same few training steps of a recipe's network in two fresh processes, one with
``sceneshift.runtime.keep_freed_memory()`` and one without, and prints minor page faults and CPU
seconds (user, system) per step side by side.

    python benchmarks/allocator_faults.py --recipe baseline --steps 5
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys


def child(recipe: str, steps: int, tuned: bool) -> dict:
    import torch
    if tuned:
        from sceneshift.runtime import keep_freed_memory
        keep_freed_memory()
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
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(steps):
        step()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    return {"faults": (r1.ru_minflt - r0.ru_minflt) / steps, "user": (r1.ru_utime - r0.ru_utime) / steps,
            "system": (r1.ru_stime - r0.ru_stime) / steps}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="baseline")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--child", choices=["plain", "tuned"], help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(child(a.recipe, a.steps, a.child == "tuned")))
        return
    rows = {}
    for mode in ("plain", "tuned"):
        out = subprocess.run([sys.executable, __file__, "--recipe", a.recipe, "--steps", str(a.steps), "--child", mode],
                             capture_output=True, text=True, check=True).stdout
        rows[mode] = json.loads(out.strip().splitlines()[-1])
    print(f"recipe {a.recipe}, {a.steps} steps, 1 thread, per step:")
    print(f"{'allocator':<12}{'minor faults':>14}{'user s':>9}{'system s':>10}")
    for mode, r in rows.items():
        print(f"{'default' if mode == 'plain' else 'sceneshift':<12}{r['faults']:>14,.0f}{r['user']:>9.3f}{r['system']:>10.3f}")


if __name__ == "__main__":
    main()
