"""Process settings that make training and inference run at the speed of the CPU.

glibc's allocator hands freed blocks above its *mmap threshold* back to the system at once, and
trims the top of the heap when it has more than its *trim threshold* free. A training step frees
and re-allocates the same large activation and batch buffers every step, so with the defaults
each step unmaps them and page-faults them back in, page by page: the default recipe spent about
a fifth of its CPU time in the kernel and took over a hundred million minor page faults.

Raising both thresholds (the mmap threshold to glibc's maximum, 32 MB) keeps most of them in the
process, but networks that keep full-resolution maps (Mini-SegNet: 16 channels x 64 bands x 175
frames x 64 clips = 46 MB per activation) allocate blocks above the largest threshold, which
glibc still maps and unmaps one by one. So mmap is switched off as well (``M_MMAP_MAX = 0``) and
such blocks come from the main heap and are reused (measured: benchmarks/allocator_faults.py).

What that costs, and why only the command line sets it (``sceneshift`` calls
:func:`keep_freed_memory` once at start; the Python API leaves the process alone unless you call
it yourself):

* freed memory stays in the process: the resident size keeps its peak, and a large block freed
  below live data on the heap is not returned to the system until the process ends (fine for a
  command that trains or evaluates and exits, not for a long-lived service or notebook);
* blocks larger than a thread arena's heap (64 MB) allocated outside the main thread are still
  mapped and unmapped each time (training's large buffers are allocated in the main thread);
* child processes started by fork inherit the setting.

``SCENESHIFT_MALLOC=default`` leaves glibc's defaults, ``thresholds`` raises only the thresholds.
On other C libraries, or where ``mallopt`` is missing, nothing changes.
"""
from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4
MMAP_THRESHOLD_MAX = 32 << 20        # glibc's largest allowed mmap threshold on 64-bit systems
MODES = ("sceneshift", "thresholds", "default")
_TUNED = []


def keep_freed_memory(mode: str | None = None) -> bool:
    """Apply the allocator ``mode`` (default: ``$SCENESHIFT_MALLOC``, else ``sceneshift``: thresholds
    raised and mmap off; ``thresholds``: only the thresholds; ``default``: nothing) once per process;
    True when settings were taken."""
    if _TUNED:
        return _TUNED[0]
    mode = mode or os.environ.get("SCENESHIFT_MALLOC") or "sceneshift"
    if mode not in MODES:
        raise ValueError(f"SCENESHIFT_MALLOC must be one of {', '.join(MODES)}, got {mode!r}")
    ok = False
    if mode != "default":
        try:
            mallopt = ctypes.CDLL(None).mallopt          # the C library already loaded into this process
            ok = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(mallopt(M_TRIM_THRESHOLD, 1 << 30))
            ok = ok and (mode == "thresholds" or bool(mallopt(M_MMAP_MAX, 0)))
        except (OSError, AttributeError):
            pass
    _TUNED.append(ok)
    return ok


def software_versions() -> dict:
    """The libraries and CPU a run was made with, for its summary.json.

    Why: a recipe and seed repeat exactly on one machine, not across machines (docs/beyond.md): the
    benchmark is built on each machine with unpinned numpy, scipy and libsndfile codecs, and kernels
    differ by CPU. Recording them lets two runs that disagree be traced to what differed.
    """
    import platform
    from importlib import metadata

    out = {"python": platform.python_version(), "machine": platform.machine()}
    for name in ("sceneshift", "torch", "lightning", "numpy", "scipy", "soundfile", "librosa"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    try:
        import soundfile
        out["libsndfile"] = soundfile.__libsndfile_version__
    except (ImportError, OSError, AttributeError):
        out["libsndfile"] = None
    try:
        with open("/proc/cpuinfo") as f:
            out["cpu"] = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        out["cpu"] = platform.processor() or None
    return out
