"""One model file per device: RUN exported with an adaptation (band-wise matching by default) fitted to
each device's recordings.

For every DEVICE: ``sceneshift export RUN --adapt METHOD --adapt-to <the device's clips of SPLIT>``
(``--int8`` too with --int8), then that file scored on those clips, beside the run itself (PyTorch)
without and with the same adaptation fitted on the same clips (what ``sceneshift evaluate RUN
--adapt METHOD`` does). The labels are only read to score. The fp32 file should agree with the
PyTorch adaptation: the export re-reads the recordings from their files at full precision where
the evaluation reads the waveform cache, which is all that differs. The int8 file shows what
quantisation costs on the adapted features; it is calibrated on half of the device's clips that
it is then scored on (transductive, like the adaptation itself).

    python benchmarks/adapted_export.py RUN [--method bandwise|quantile|adabn|bandwise+adabn] [--devices s4 s5 s6]
        [--int8] [--split evaluate] [--data DIR] [--json FILE]

``--json FILE`` also writes the table as JSON (per device and mean; written atomically), which
benchmarks/deployed_gap.py reads in preference to the printed table.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from sceneshift.adaptation import adapted, method_and_source
from sceneshift.evaluation.evaluate import open_split
from sceneshift.io import atomic_write_json
from sceneshift.export.onnx import export_onnx, run_split
from sceneshift.networks.onnx_predictor import OnnxPredictor
from sceneshift.networks.predictor import RunPredictor


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--devices", nargs="+", default=None, help="devices to adapt to (default: those the run never "
                    "trained on)")
    ap.add_argument("--split", default="evaluate")
    ap.add_argument("--data", help="benchmark root (default: the run's)")
    ap.add_argument("--int8", action="store_true", help="also export and score int8 files")
    ap.add_argument("--method", default="bandwise", help="the adaptation (default bandwise)")
    ap.add_argument("--json", type=Path, help="also write the table to this JSON file")
    args = ap.parse_args()
    quiet = lambda *a: None  # noqa: E731
    run = RunPredictor(args.run, "cpu")
    dataset, split = open_split(run.cfg, run.domain, args.split, args.data, log=quiet)
    devices = np.array([c.device for c in split.clips])
    which = args.devices or run.domain.untrained_devices(sorted(set(devices.tolist())))
    fit, source_clips = method_and_source(args.method, run.domain, run_split(run, args.data, log=quiet))
    torch_col = f"{args.method} (PyTorch)"
    cols = ["plain", torch_col, "adapted file fp32"] + (["adapted file int8"] if args.int8 else [])
    print(f"{args.run}, split {args.split}: accuracy % on each device's labelled clips")
    print("| device | clips | " + " | ".join(cols) + " | fp32 file = PyTorch decisions | file kB |")
    print("|---|---|" + "---|" * len(cols) + "---|---|")
    acc, clips_of = {c: [] for c in cols}, []
    with tempfile.TemporaryDirectory(prefix="adapted-export-") as tmp:
        for d in which:
            clips = np.flatnonzero(devices == d)                 # fitted on all, scored on the labelled ones
            rows = clips[split.labels[clips] >= 0]
            if not len(rows):
                raise SystemExit(f"adapted_export.py: no labelled clip of device {d!r} in split {args.split!r}")
            y = split.labels[rows]
            files = [Path(dataset.adapter.root) / split.clips[i].filename for i in clips]
            adapter = fit(net=run.net, source=source_clips, targets={d: (split.waves, clips)})[d]
            proba = {"plain": run.probabilities(split.waves, rows=rows)}
            with adapted(run.net, adapter):
                proba[torch_col] = run.probabilities(split.waves, rows=rows)
            kb = []
            for col, int8 in (("adapted file fp32", False), ("adapted file int8", True)):
                if col not in cols:
                    continue
                out = Path(tmp) / f"{d}.{'int8.' if int8 else ''}onnx"
                export_onnx(args.run, out=out, int8=int8, adapt=args.method, adapt_to=files, data=args.data, log=quiet)
                proba[col] = OnnxPredictor(out).probabilities(split.waves, rows=rows)
                kb.append(f"{out.stat().st_size / 1024:.0f}")
            same = float(np.mean(proba["adapted file fp32"].argmax(1) == proba[torch_col].argmax(1)))
            for c in cols:
                acc[c].append(100 * float(np.mean(proba[c].argmax(1) == y)))
            clips_of.append(len(rows))
            print(f"| {d} | {len(rows)} | " + " | ".join(f"{acc[c][-1]:.1f}" for c in cols)
                  + f" | {100 * same:.1f} % | {' / '.join(kb)} |", flush=True)
    print("| mean | | " + " | ".join(f"{np.mean(acc[c]):.1f}" for c in cols) + " | | |")
    if args.json:
        atomic_write_json(args.json, {
            "run": str(args.run), "split": args.split, "method": args.method, "accuracy": "percent",
            "devices": {d: {"clips": n, **{c: acc[c][i] for c in cols}} for i, (d, n) in enumerate(zip(which, clips_of))},
            "mean": {c: float(np.mean(acc[c])) for c in cols}})


if __name__ == "__main__":
    main()
