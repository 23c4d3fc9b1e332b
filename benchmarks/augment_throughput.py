"""Training throughput (clips/s) of a recipe with and without its waveform augmentations.

Why: seed 003's audio augmentations (pitch shift, speed change, reverberation, ...) run on the
fly in the training step; on a 2-core machine they must not become the bottleneck. This times
real training steps (data loading from the waveform cache, waveform augmentations, front end,
spectrogram augmentations, forward, backward, optimiser step) on the recipe's training split,
once with the waveform augmentations removed and once with them, and prints both side by side
with where the time goes.

    python benchmarks/augment_throughput.py --recipe seed003_resnet --batches 12 --threads 1
    python benchmarks/augment_throughput.py --recipe seed003_resnet --also train.channels_last=true train.compile=true

``--also`` adds both rows again with those speed options, each with its ratio to the recipe's row.
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F


def measure(module, loader, n_batches: int, warmup: int = 2) -> dict:
    opt = torch.optim.Adam(module.parameters(), lr=1e-3)
    module.train()
    n_cls = len(module.domain.classes)
    times = {"load": 0.0, "wave_augment": 0.0, "step": 0.0}
    clips, it = 0, iter(loader)
    for i in range(warmup + n_batches):
        t0 = time.perf_counter()
        try:
            wave, y, device, _ = next(it)
        except StopIteration:
            it = iter(loader)
            wave, y, device, _ = next(it)
        t1 = time.perf_counter()
        target = F.one_hot(y, n_cls).float()
        for aug in module.wave_augment:
            wave, target = aug(wave, target, device)
        t2 = time.perf_counter()
        x = module.input_features(wave)          # no gradient; channels-last when the recipe says so
        for aug in module.spec_augment:
            x, target = aug(x, target, device)
        logits = module.net.head(module.train_backbone(x))      # compiled with train.compile
        loss = torch.sum(-target * F.log_softmax(logits, dim=1), dim=1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        t3 = time.perf_counter()
        if i >= warmup:
            times["load"] += t1 - t0
            times["wave_augment"] += t2 - t1
            times["step"] += t3 - t2
            clips += len(y)
    total = sum(times.values())
    return {"clips": clips, "seconds": total, "clips_per_s": clips / total,
            **{f"{k}_share": v / total for k, v in times.items()}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="seed003_resnet")
    ap.add_argument("--data", help="dataset folder (default: the built urban-mobile)")
    ap.add_argument("--batches", type=int, default=12, help="timed training steps per variant")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--also", nargs="+", default=[], metavar="key=value",
                    help="speed options to measure beside the recipe (e.g. train.compile=true); "
                         "takes every key=value after it, so give recipe overrides before --also")
    ap.add_argument("overrides", nargs="*", metavar="key=value")
    a = ap.parse_args(argv)
    if any(o.startswith("train.precision") for o in [*a.also, *a.overrides]):
        ap.error("train.precision: this script times fp32 steps (no Lightning precision plugin); "
                 "use benchmarks/throughput.py for bf16")

    from sceneshift.data.domain import Domain
    from sceneshift.data.splits import DataSource
    from sceneshift.training import SYSTEMS
    from sceneshift.training.recipe import resolve
    torch.set_num_threads(a.threads)
    cfg = resolve(a.recipe, a.data, a.overrides)
    source = DataSource(cfg["data"], log=lambda *x: None)
    source.domain = Domain.from_dataset(source.adapter, source.clips(cfg["data"]["train_split"]),
                                        cfg["data"]["scene_map"])

    rows = []
    for options in [[], a.also] if a.also else [[]]:
        run_cfg = resolve(a.recipe, a.data, [*a.overrides, *options])
        for variant in ("without", "with"):
            torch.manual_seed(0)
            module = SYSTEMS.build(run_cfg["system"], run_cfg["system_options"], cfg=run_cfg, domain=source.domain,
                                   data=source)
            if variant == "without":
                module.wave_augment = torch.nn.ModuleList()
            module.setup("fit")
            names = [a.name for a in module.wave_augment] or ["none"]
            r = measure(module, module.train_dataloader(), a.batches)
            rows.append((variant + (" + " + " ".join(options) if options else ""), ", ".join(names), r))

    print(f"recipe {a.recipe}, batch {cfg['train']['batch_size']} (the recipe's), {a.batches} timed steps, "
          f"{a.threads} thread(s), data {cfg['data']['root']}")
    width = max(24, *(len(v) + 2 for v, _, _ in rows))
    print(f"{'waveform augmentation':<{width}}{'clips/s':>9}{'load %':>8}{'wave aug %':>11}{'step %':>8}"
          f"{'x recipe':>10}  augmentations")
    for i, (variant, names, r) in enumerate(rows):
        ratio = r["clips_per_s"] / rows[i % 2][2]["clips_per_s"]
        print(f"{variant:<{width}}{r['clips_per_s']:>9.1f}{100 * r['load_share']:>8.1f}{100 * r['wave_augment_share']:>11.1f}"
              f"{100 * r['step_share']:>8.1f}{ratio:>10.2f}  {names}")
    print(f"ratio with / without: {rows[1][2]['clips_per_s'] / rows[0][2]['clips_per_s']:.2f}")


if __name__ == "__main__":
    main()
