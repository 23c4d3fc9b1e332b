"""Reading audio: one place that decides what counts as usable input.

Everything that reaches a model goes through :func:`load_audio`, so every bad file gets the
same clear one-line error (an :class:`AudioError` naming the file), and every good file comes
out mono, float32, at the requested sample rate (downmixed and resampled with soxr).
"""
from __future__ import annotations

import os

import numpy as np
import soundfile as sf
import soxr

SILENCE_PEAK = 1e-6  # a clip whose peak stays below this (about -120 dBFS) carries no scene


class AudioError(ValueError):
    """A file that cannot be used as audio input; the message names the file and why."""

    def __init__(self, path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


def load_audio(path: str | os.PathLike, sample_rate: int, allow_silent: bool = False) -> np.ndarray:
    """Return the file as mono float32 at ``sample_rate`` or raise :class:`AudioError`."""
    try:
        x, fs = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        if not os.path.exists(path):
            raise AudioError(path, "file not found") from None
        raise AudioError(path, f"unreadable audio ({str(e).splitlines()[0]})") from None
    if x.shape[0] == 0:
        raise AudioError(path, "empty audio (0 samples)")
    if not np.isfinite(x).all():
        raise AudioError(path, "audio contains NaN or infinite samples")
    x = x.mean(axis=1) if x.shape[1] > 1 else x[:, 0]
    if not allow_silent and float(np.max(np.abs(x))) < SILENCE_PEAK:
        raise AudioError(path, "audio is silent (all samples are zero)")
    if fs != sample_rate:
        if fs < 1000:
            raise AudioError(path, f"implausible sample rate {fs} Hz")
        x = soxr.resample(x, fs, sample_rate, quality="HQ").astype(np.float32)
    return np.ascontiguousarray(x, dtype=np.float32)


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Cut to ``n`` samples, or repeat the clip until it is ``n`` long.

    Repeating rather than zero-padding keeps short clips scene-like: a stretch of digital
    silence would be a cue that no real recording device produces.
    """
    if len(x) >= n:
        return x[:n]
    reps = -(-n // len(x))
    return np.tile(x, reps)[:n]
