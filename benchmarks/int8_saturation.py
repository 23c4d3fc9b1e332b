"""Does this CPU's onnxruntime saturate int8 convolutions with full-range (8-bit) weights?

`sceneshift export --int8` stores weights in 7 bits (onnxruntime's ``reduce_range``) because on x86
CPUs without VNNI onnxruntime adds pairs of u8 x s8 products in 16 bits. This script shows why, on
the machine it runs on: it exports RUN to fp32 ONNX, quantises it with 8-bit and with 7-bit weights,
and prints each file's agreement with fp32 and largest logit difference on CLIPS training clips;
with --per-layer also each quantised layer alone with 8-bit weights (which layer saturates).

    python benchmarks/int8_saturation.py RUN [--data DIR] [--clips 32] [--per-layer]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import onnx

from sceneshift.export.onnx import QUANTISED_OPS, _session, calibration_waves, export_onnx, quantize_int8
from sceneshift.networks.predictor import RunPredictor


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--data", help="benchmark root (default: the run's)")
    ap.add_argument("--clips", type=int, default=32, help="training clips for calibration and comparison")
    ap.add_argument("--per-layer", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="int8-saturation-"))
    fp32 = tmp / "fp32.onnx"
    export_onnx(args.run, out=fp32, log=lambda *a: None)
    waves = calibration_waves(RunPredictor(args.run, "cpu"), args.clips, args.data, log=lambda *a: None)
    batches = [waves[i:i + 8] for i in range(0, len(waves), 8)]
    name = _session(fp32).get_inputs()[0].name
    z32 = _session(fp32).run(None, {name: waves})[0]

    def score(label, reduce_range, exclude=()):
        q = tmp / "q.onnx"
        quantize_int8(fp32, q, batches, tmp, exclude=exclude, reduce_range=reduce_range)
        z8 = _session(q).run(None, {name: waves})[0]
        print(f"| {label} | {(z8.argmax(1) == z32.argmax(1)).mean():.2f} | {np.abs(z8 - z32).max():.3f} |")

    print(f"{len(waves)} clips of {args.run}\n\n| int8 file | agreement with fp32 | max logit difference |\n|---|---|---|")
    score("8-bit weights", False)
    score("7-bit weights (sceneshift)", True)
    if args.per_layer:
        layers = [n.name for n in onnx.load(str(fp32)).graph.node if n.op_type in QUANTISED_OPS]
        for layer in layers:
            score(f"only {layer}, 8-bit weights", False, exclude=[m for m in layers if m != layer])


if __name__ == "__main__":
    main()
