"""Where benchmarks, caches and the shared source material live.

Two locations, each settable by an environment variable or a command-line option:

* ``SCENESHIFT_DATA`` - where built benchmarks and waveform caches are written
  (default ``~/.cache/sceneshift``); the benchmark is ``$SCENESHIFT_DATA/urban-mobile``.
* ``SCENESHIFT_SHARED`` - the folder holding ``data/`` (source recordings, impulse
  responses) and ``benchmarks/make_mobile_benchmark.py``; by default the first ``shared``
  folder found beside the working directory or beside the source checkout.
"""
from __future__ import annotations

import os
from pathlib import Path

BENCHMARK_NAME = "urban-mobile"


def data_dir(override: str | os.PathLike | None = None) -> Path:
    if override:
        return Path(override).expanduser()
    env = os.environ.get("SCENESHIFT_DATA")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "sceneshift"


def default_benchmark(data: str | os.PathLike | None = None) -> Path:
    return data_dir(data) / BENCHMARK_NAME


def shared_dir(override: str | os.PathLike | None = None) -> Path:
    """Return the shared material folder, or raise naming every place looked at."""
    candidates = []
    if override:
        candidates.append(Path(override).expanduser())
    elif os.environ.get("SCENESHIFT_SHARED"):
        candidates.append(Path(os.environ["SCENESHIFT_SHARED"]).expanduser())
    else:
        cwd = Path.cwd()
        checkout = Path(__file__).resolve().parents[1]
        candidates += [cwd / "shared", cwd.parent / "shared", checkout / "shared", checkout.parent / "shared"]
    for c in candidates:
        if (c / "benchmarks" / "make_mobile_benchmark.py").is_file():
            return c.resolve()
    looked = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(
        f"shared material not found (looked in {looked}); set SCENESHIFT_SHARED or pass --shared "
        "to the folder that holds data/ and benchmarks/make_mobile_benchmark.py. Building urban-mobile "
        "needs it (the builder script and its sources: UrbanSound8K and MicIRP impulse responses, which "
        "`sceneshift datasets download urbansound8k` and `sceneshift datasets download micirp` fetch), and so "
        "do augmentations left on their default impulse responses (reverb_drc's rooms, device_ir's micirp: "
        "name a folder in the recipe instead); every other command works on a dataset you pass with --data")
