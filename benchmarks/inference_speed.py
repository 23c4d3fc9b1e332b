"""Inference speed of a run: PyTorch against its ONNX exports (fp32 / int8, waveform or features in).

    python benchmarks/inference_speed.py RUN [--batch 64] [--repeats 30] [--adapt METHOD... --adapt-to PATH...]

For each variant it prints, side by side, the latency of one clip on one thread and the
throughput of a batch on one thread, both as x real time per core (seconds of audio scored
per second of one core), and the ratio to the PyTorch fp32 run. "features in" variants include
the torch front end in their time, so every row is waveform -> logits. The exports are written to
a temporary folder (``sceneshift export`` writes them for use); the int8 export is calibrated on
the run's training clips. ``--adapt`` adds the int8 files with each named adaptation fitted to the
recordings of ``--adapt-to`` built in (``sceneshift export RUN --int8 --adapt METHOD --adapt-to ...``), so
what an adaptation costs at deployment shows beside the plain file.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def timed(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--batch", type=int, default=64, help="clips per batch for the throughput column")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--data", help="dataset for int8 calibration (default: the run's)")
    ap.add_argument("--adapt", nargs="+", default=[], metavar="METHOD", help="also time int8 files adapted by "
                    "these methods (bandwise, quantile, ...) to the recordings of --adapt-to")
    ap.add_argument("--adapt-to", nargs="+", metavar="PATH", help="recordings of one device (files or folders)")
    a = ap.parse_args(argv)
    if bool(a.adapt) != bool(a.adapt_to):
        ap.error("--adapt and --adapt-to go together")

    from sceneshift.export.onnx import export_onnx
    from sceneshift.networks.onnx_predictor import OnnxPredictor
    from sceneshift.networks.predictor import RunPredictor
    torch.set_num_threads(1)
    run = RunPredictor(a.run, device="cpu")
    seconds = run.n_samples / run.sample_rate
    one = (0.1 * np.random.default_rng(0).standard_normal((1, run.n_samples))).astype(np.float32)
    batch = (0.1 * np.random.default_rng(1).standard_normal((a.batch, run.n_samples))).astype(np.float32)
    rows = []

    def measure(name, logits):
        lat = timed(lambda: logits(one), a.repeats)
        thr = timed(lambda: logits(batch), max(3, a.repeats // 10)) / a.batch
        rows.append((name, lat, thr))

    with torch.inference_mode():
        measure(f"PyTorch fp32 ({'channels-last' if run.cfg['train'].get('channels_last') else 'NCHW'})",
                lambda x: run.net(torch.from_numpy(x)))
        with tempfile.TemporaryDirectory() as tmp:
            variants = [(frontend, int8, None) for frontend in ("included", "excluded") for int8 in (False, True)]
            variants += [(frontend, True, method) for method in a.adapt for frontend in ("included", "excluded")]
            for frontend, int8, method in variants:
                f = Path(tmp) / f"{frontend}-{int8}-{method}.onnx"
                export_onnx(a.run, out=f, int8=int8, frontend=frontend, data=a.data, adapt=method,
                            adapt_to=a.adapt_to if method else None, log=lambda *x: None)
                model = OnnxPredictor(f, threads=1)
                name = (f"ONNX {'int8' if int8 else 'fp32'}{f' + {method}' if method else ''}, "
                        f"{'waveform in' if frontend == 'included' else 'features in (torch front end)'}"
                        f" ({f.stat().st_size / 1024:.0f} kB)")
                measure(name, lambda x, m=model: m.session.run(None, {m.input_name: m.inputs(torch.from_numpy(x))}))
    ref_lat, ref_thr = rows[0][1], rows[0][2]
    print(f"run {a.run}: {seconds:g}-s clips; one thread")
    print(f"{'variant':<72}{'1 clip ms':>10}{'x RT':>8}{'x PyTorch':>10}{'batch ms/clip':>15}{'x RT':>8}{'x PyTorch':>10}")
    for name, lat, thr in rows:
        print(f"{name:<72}{1000 * lat:>10.2f}{seconds / lat:>8.0f}{ref_lat / lat:>10.2f}"
              f"{1000 * thr:>15.2f}{seconds / thr:>8.0f}{ref_thr / thr:>10.2f}")


if __name__ == "__main__":
    main()
