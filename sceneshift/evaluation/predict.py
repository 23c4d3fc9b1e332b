"""``sceneshift predict``: name the scene of audio files of any length, rate and channel count."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.audio import AudioError, load_audio
from ..networks.predictor import load_predictor, windows


def predict_files(run: str | Path, files: list[str | Path]) -> tuple[list[dict], list[tuple[str, str]]]:
    """Return (results, skipped). Each result: file, scene, probabilities, windows, seconds.

    Files are resampled to the run's rate and downmixed; a recording longer than the run's
    clip length is cut into windows whose probabilities are averaged.
    """
    predictor = load_predictor(run)
    results, skipped = [], []
    for f in files:
        try:
            x = load_audio(f, predictor.sample_rate)
        except AudioError as e:
            skipped.append((str(f), e.reason))
            continue
        w = windows(x, predictor.n_samples)
        p = predictor.probabilities(w).mean(axis=0)
        order = np.argsort(-p)
        results.append({"file": str(f), "scene": predictor.classes[order[0]],
                        "probabilities": {predictor.classes[i]: round(float(p[i]), 4) for i in order},
                        "windows": int(len(w)), "seconds": round(len(x) / predictor.sample_rate, 2)})
    return results, skipped


def format_result(r: dict, top: int = 3) -> str:
    probs = list(r["probabilities"].items())[:top]
    rest = ", ".join(f"{c} {100 * p:.1f}%" for c, p in probs)
    return f"{r['file']}: {r['scene']}  ({rest}; {r['windows']} window(s), {r['seconds']} s)"
