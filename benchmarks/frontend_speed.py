#!/usr/bin/env python3
"""Front-end speed: sceneshift's torch LogMel against librosa on real clips, side by side.

Both compute the same log-mel (checked to agree within 0.01 dB in tests/test_frontend.py);
librosa runs clip by clip as users' scripts do, sceneshift in batches as training does.

    python benchmarks/frontend_speed.py [--clips 256] [--batch 64] [--threads 2]
"""
from __future__ import annotations

import argparse
import time

import librosa
import numpy as np
import torch

from sceneshift.data.audio import fit_length, load_audio
from sceneshift.frontend.logmel import LogMel
from sceneshift.paths import shared_dir


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=256)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-deltas", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    files = sorted((shared_dir() / "data/urbansound8k-16k/audio").rglob("*.flac"))[: a.clips]
    waves = np.stack([fit_length(load_audio(f, 16000), 64000) for f in files])
    kw = dict(n_fft=1024, hop_length=320, n_mels=64)

    t0 = time.perf_counter()
    for y in waves:
        s = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=16000, pad_mode="constant", **kw),
                                ref=1.0, amin=1e-10, top_db=None)
        for _ in range(a.n_deltas):
            s = np.stack([s, librosa.feature.delta(s, width=9)])
    t_lib = time.perf_counter() - t0

    fe = LogMel(sample_rate=16000, n_deltas=a.n_deltas, **kw)
    x = torch.from_numpy(waves)
    with torch.no_grad():
        fe(x[: a.batch])                       # warm-up
        t0 = time.perf_counter()
        for i in range(0, len(x), a.batch):
            fe(x[i:i + a.batch])
        t_ours = time.perf_counter() - t0

    n = len(waves)
    print(f"{n} clips of 4 s at 16 kHz, {a.threads} thread(s), n_deltas={a.n_deltas}")
    print(f"{'':<22}{'seconds':>10}{'clips/s':>10}")
    print(f"{'librosa (per clip)':<22}{t_lib:>10.2f}{n / t_lib:>10.0f}")
    print(f"{'sceneshift LogMel':<22}{t_ours:>10.2f}{n / t_ours:>10.0f}")
    print(f"speed-up: {t_lib / t_ours:.1f}x")


if __name__ == "__main__":
    main()
