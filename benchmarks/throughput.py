"""Training and inference throughput of a recipe's network: fp32, channels-last, bf16 autocast, both.

Prints, side by side in one run, clips per second for a training step (front end without
gradient, spectrogram augmentations, backbone, head, cross-entropy, backward, Adam) and for
inference (waveform -> logits), for each precision / memory-format variant, and each as a
fraction of this machine's bound: the script times a large matrix multiplication in fp32 and in
bf16 to measure the CPU's peak, and counts the network's multiply-accumulates per clip (a training
step is counted as 3x the forward pass). From the same numbers it projects a whole `sceneshift run`
of the recipe on the built urban-mobile (its epochs of training and validation, then evaluation)
at the matmul rate and at the best measured rates.
It also prints the single-clip latency on one thread against the goal of 1000x real time per core.
With ``--device cuda`` the same table is measured on a GPU (peaks from the GPU's own matmul; no
single-thread latency).

    python benchmarks/throughput.py --recipe baseline
    python benchmarks/throughput.py --recipe seed003_resnet --threads 2 --steps 10
    python benchmarks/throughput.py --recipe seed003_resnet --threads 1 --compile   # + train.compile
    python benchmarks/throughput.py --recipe seed001_pretrain --compile --variants "fp32,channels_last + compile"
    python benchmarks/throughput.py --recipe seed001_pretrain --device cuda --batch 256 --compile

Inputs are random waveforms of the recipe's clip length (throughput does not depend on content).
"""
from __future__ import annotations

import argparse
import contextlib
import time

import torch
import torch.nn.functional as F

# (name, channels_last, bf16, compile); the compiled ones only with --compile (train.compile: the backbone's
# training step compiled; inference stays eager, as in a run)
VARIANTS = (("fp32", False, False, False), ("channels_last", True, False, False), ("bf16", False, True, False),
            ("bf16 + channels_last", True, True, False), ("compile", False, False, True),
            ("channels_last + compile", True, False, True), ("bf16 + cl + compile", True, True, True))


DEVICE = torch.device("cpu")       # --device


def sync():
    """Wait for the device's queued work (GPU kernels run asynchronously; a CPU has none queued)."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    """Best FLOP/s of an n x n matrix product in ``dtype`` (2 n^3 flops) on ``DEVICE``."""
    if DEVICE.type == "cuda":
        n = 8192                                  # a GPU needs a large product to reach its peak
    a, b = torch.randn(n, n, device=DEVICE).to(dtype), torch.randn(n, n, device=DEVICE).to(dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        torch.mm(a, b)
        sync()
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best


def autocast(enabled: bool):
    return torch.autocast(DEVICE.type, dtype=torch.bfloat16) if enabled else contextlib.nullcontext()


def prepare(net, channels_last: bool):
    return net.to(memory_format=torch.channels_last) if channels_last else net.to(memory_format=torch.contiguous_format)


def features(net, wave, channels_last: bool):
    with torch.no_grad():
        x = net.features(wave)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def clips_per_second(run, clips: int, steps: int, warmup: int = 2) -> tuple[float, float]:
    """(clips per second over the timed steps, seconds of the warm-up steps, compiling included)."""
    t0 = time.perf_counter()
    for _ in range(warmup):
        run()
    sync()
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        run()
    sync()
    return steps * clips / (time.perf_counter() - t0), warm


def train_rate(net, spec_augment, wave, y, n_classes, steps, channels_last, bf16, compile_=False) -> tuple[float, float]:
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    backbone = net.backbone
    if compile_:
        from sceneshift.training.classifier import compiled
        backbone = compiled(net.backbone)

    def step():
        target = F.one_hot(y, n_classes).float()
        x = features(net, wave, channels_last)
        for aug in spec_augment:
            x, target = aug(x, target, None)
        with autocast(bf16):
            logits = net.head(backbone(x))
        loss = torch.sum(-target * F.log_softmax(logits.float(), dim=1), dim=1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return clips_per_second(step, len(wave), steps)


@torch.inference_mode()
def infer_rate(net, wave, steps, channels_last, bf16) -> tuple[float, float]:
    net.eval()

    def run():
        with autocast(bf16):
            x = features(net, wave, channels_last)
            return net.head(net.backbone(x))
    return clips_per_second(run, len(wave), steps)


def run_projection(cfg, macs: float, peak: dict, best: dict, threads: int | str) -> None:
    """What a whole `sceneshift run` of the recipe on the built urban-mobile costs in compute: its epochs
    over the full training split (3x forward MACs per clip) with per-epoch validation, then the
    evaluation split, at the measured matmul rate and at the best rates measured above, both with this
    script's thread count. The matmul rate is a reference, not a hard bound: oneDNN's convolutions
    can beat a plain torch.mm (channels-last training did on this machine)."""
    from sceneshift.paths import default_benchmark
    summary = default_benchmark() / "summary.json"
    if not summary.is_file():
        print(f"(no {summary}: build urban-mobile for the projected run time)")
        return
    import json
    sizes = json.loads(summary.read_text())
    data = cfg["data"]
    train, val, test = (sizes[data[k]]["clips"] for k in ("train_split", "val_split", "test_split"))
    epochs = cfg["train"]["epochs"]
    fwd = epochs * (3 * train + val) + test                     # forward passes' worth of MACs
    at_peak = {bf16: 2 * macs * fwd / peak[bf16] for bf16 in (False, True)}
    bf16 = f", {at_peak[True] / 60:.1f} min bf16" if peak[True] >= peak[False] else ""   # no bf16 instructions: moot
    measured = epochs * (train / best["train"] + val / best["infer"]) + test / best["infer"]
    recipe_threads = cfg["train"].get("threads")             # None: every core
    note = f" (the recipe trains with {recipe_threads})" if recipe_threads and recipe_threads != threads else ""
    where = f"{threads} thread(s){note}" if isinstance(threads, int) else threads
    print(f"a run on urban-mobile, {where}: {epochs} epochs of the full training split ({train:,} "
          f"clips) + validation ({val:,}), then evaluation ({test:,}): at the matmul rate {at_peak[False] / 60:.1f} min "
          f"fp32{bf16}; at the best rates above {measured / 60:.1f} min")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="baseline")
    ap.add_argument("--batch", type=int, default=None, help="training batch (default: the recipe's)")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per variant")
    ap.add_argument("--threads", type=int, default=None, help="default: every core")
    ap.add_argument("--compile", action="store_true", help="also the train.compile variants (compiling takes minutes)")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    ap.add_argument("--variants", default=None, help="comma-separated variant names to run (default: all; "
                    "bf16 ones are skipped on a CPU whose bf16 matmul is slower than fp32)")
    ap.add_argument("overrides", nargs="*", metavar="key=value")
    a = ap.parse_args(argv)
    wanted = [w.strip() for w in a.variants.split(",")] if a.variants else []
    if set(wanted) - {v[0] for v in VARIANTS}:
        ap.error(f"--variants: unknown {sorted(set(wanted) - {v[0] for v in VARIANTS})}; "
                 f"choose from {[v[0] for v in VARIANTS]}")

    global DEVICE
    try:
        DEVICE = torch.device(a.device)
    except RuntimeError:
        ap.error(f"--device: {a.device!r} is not a device (cpu, cuda, cuda:1)")
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        ap.error(f"--device {a.device}: torch sees no CUDA GPU here")
    if DEVICE.type not in ("cpu", "cuda"):
        ap.error(f"--device: {a.device!r}; cpu or cuda")

    from sceneshift.augment import build_augmentations
    from sceneshift.data.domain import Domain
    from sceneshift.evaluation.complexity import network_cost
    from sceneshift.networks import build_network
    from sceneshift.runtime import keep_freed_memory
    from sceneshift.training.recipe import load_recipe
    keep_freed_memory()                      # as the `sceneshift` command does
    if a.threads:
        torch.set_num_threads(a.threads)
    threads = torch.get_num_threads()
    cfg = load_recipe(a.recipe, a.overrides)
    cost = network_cost(cfg)
    n_classes = cost["classes"]
    domain = Domain.placeholder(n_classes)
    torch.manual_seed(0)
    net = build_network(cfg, domain).to(DEVICE)
    _, spec_augment = build_augmentations(cfg["augment"], domain, cfg["data"]["sample_rate"])
    batch = a.batch or cfg["train"]["batch_size"]
    samples = int(round(cfg["data"]["clip_seconds"] * cfg["data"]["sample_rate"]))
    wave = 0.1 * torch.randn(batch, samples, device=DEVICE)
    y = torch.randint(0, n_classes, (batch,), device=DEVICE)
    peak = {False: matmul_peak(torch.float32), True: matmul_peak(torch.bfloat16)}
    macs = cost["macs"]
    where = torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else f"{threads} thread(s)"
    print(f"recipe {a.recipe}: {cost['parameters']:,} parameters, {macs / 1e6:.1f} M MACs per {cfg['data']['clip_seconds']:g}-s "
          f"clip; batch {batch}; {where}; matmul peak fp32 {peak[False] / 1e9:.0f} GFLOP/s, "
          f"bf16 {peak[True] / 1e9:.0f} GFLOP/s")
    print(f"{'variant':<22}{'train clips/s':>14}{'x fp32':>8}{'of peak':>9}{'infer clips/s':>15}{'x fp32':>8}{'of peak':>9}")
    variants = [v for v in VARIANTS if a.compile or not v[3]]
    if wanted:
        variants = [v for v in VARIANTS if v[0] in wanted]
    elif peak[True] < peak[False]:    # no bf16 instructions: emulated bf16 takes minutes per step
        variants = [v for v in variants if not v[2]]
        print("bf16 matmul is slower than fp32 on this CPU (no bf16 instructions): bf16 variants skipped")
    base, best = None, {"train": 0.0, "infer": 0.0}
    for name, cl, bf16, comp in variants:
        prepare(net, cl)
        tr, warm = train_rate(net, spec_augment, wave, y, n_classes, a.steps, cl, bf16, comp)
        best["train"] = max(best["train"], tr)
        line = f"{name:<22}{tr:>14.1f}{tr / (base or (tr,))[0]:>8.2f}{tr * 6 * macs / peak[bf16]:>9.1%}"
        if comp:     # a run's validation and evaluation stay eager: the inference columns are the eager rows'
            print(f"{line}{'(eager)':>15}   warm-up incl. compiling {warm:.0f} s")
            continue
        inf = infer_rate(net, wave, a.steps, cl, bf16)[0]
        best["infer"] = max(best["infer"], inf)
        base = base or (tr, inf)
        print(f"{line}{inf:>15.1f}{inf / base[1]:>8.2f}{inf * 2 * macs / peak[bf16]:>9.1%}")
    run_projection(cfg, macs, peak, best, threads if DEVICE.type == "cpu" else where)
    if DEVICE.type != "cpu":
        return
    prepare(net, False)
    net.eval()
    torch.set_num_threads(1)
    one = wave[:1]
    with torch.inference_mode():
        for _ in range(3):
            net(one)
        t0 = time.perf_counter()
        n = 20
        for _ in range(n):
            net(one)
        latency = (time.perf_counter() - t0) / n
    seconds = samples / cfg["data"]["sample_rate"]
    print(f"one clip, one thread, fp32: {1000 * latency:.1f} ms = {seconds / latency:.0f}x real time per core "
          f"(goal: 1000x, a {seconds:g}-s clip in {seconds:g} ms)")


if __name__ == "__main__":
    main()
