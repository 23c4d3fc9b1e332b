"""Process settings that make training and inference run at the speed of the CPU.

glibc's allocator hands freed blocks above its *mmap threshold* back to the system at once, and
trims the top of the heap when it has more than its *trim threshold* free. A training step frees
and re-allocates the same large activation and batch buffers every step, so with the defaults
each step unmaps them and page-faults them back in, page by page: the default recipe spent about
a fifth of its CPU time in the kernel and took over a hundred million minor page faults.

Raising both thresholds (the mmap threshold to glibc's maximum, 32 MB) keeps most of them in the
process, but networks that keep full-resolution maps (Mini-SegNet: 16 channels x 64 bands x 175
frames x 64 clips = 46 MB per activation) allocate blocks above the largest threshold, which
glibc still maps and unmaps one by one. So mmap is switched off altogether (``M_MMAP_MAX = 0``):
every block comes from the heap and is reused (measured: benchmarks/allocator_faults.py). The
price is a larger resident size (the heap keeps its peak). On other C libraries, or where
``mallopt`` is missing, nothing changes.
"""
from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4
MMAP_THRESHOLD_MAX = 32 << 20        # glibc's largest allowed mmap threshold on 64-bit systems
_TUNED = []


def keep_freed_memory(mmap: bool = False) -> bool:
    """Raise glibc's mmap and trim thresholds and (unless ``mmap``) stop it mapping blocks at all;
    once per process; True when the settings were taken."""
    if _TUNED:
        return _TUNED[0]
    ok = False
    try:
        mallopt = ctypes.CDLL(None).mallopt          # the C library already loaded into this process
        ok = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(mallopt(M_TRIM_THRESHOLD, 1 << 30))
        ok = ok and (mmap or bool(mallopt(M_MMAP_MAX, 0)))
    except (OSError, AttributeError):
        pass
    _TUNED.append(ok)
    return ok
