"""Impulse responses from a folder: read, resampled, aligned on the direct path, unit energy.

Used by augmentations that convolve clips with real responses (rooms for ``reverb_drc``,
microphones for device impulse-response augmentation); reading files belongs to ``data/``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

AUDIO_SUFFIXES = (".flac", ".wav")


def impulse_response_files(folder: str | Path, what: str = "impulse responses") -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{what}: {folder} is not a folder of impulse responses")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"{what}: no .flac/.wav impulse responses in {folder}")
    return files


def load_impulse_responses(folder: str | Path, sample_rate: int, max_seconds: float,
                           what: str = "impulse responses", files: list[Path] | None = None) -> np.ndarray:
    """Every response in ``folder`` (or ``files``) at ``sample_rate``, zero-padded: ``(n, samples)`` float32.

    Each starts 1 ms before its direct path (its largest magnitude) and is cut to ``max_seconds``.
    """
    import soundfile as sf
    import soxr
    files = files if files is not None else impulse_response_files(folder, what)
    n_max, irs = int(max_seconds * sample_rate), []
    for f in files:
        h, fs = sf.read(str(f), dtype="float32", always_2d=True)
        h = h[:, 0]
        if fs != sample_rate:
            h = soxr.resample(h, fs, sample_rate).astype(np.float32)
        start = max(0, int(np.argmax(np.abs(h))) - int(0.001 * sample_rate))   # keep 1 ms before the direct path
        h = h[start:start + n_max]
        irs.append(h / max(float(np.sqrt(np.sum(h ** 2))), 1e-12))
    bank = np.zeros((len(irs), max(len(h) for h in irs)), dtype=np.float32)
    for i, h in enumerate(irs):
        bank[i, :len(h)] = h
    return bank
