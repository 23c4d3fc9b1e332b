"""Process settings that make training and inference run at the speed of the CPU.

glibc's allocator hands freed blocks above its *mmap threshold* back to the system at once, and
trims the top of the heap when it has more than its *trim threshold* free. A training step frees
and re-allocates the same large activation and batch buffers every step, so with the defaults
each step unmaps them and page-faults them back in, page by page: the default recipe spent about
a fifth of its CPU time in the kernel and took over a hundred million minor page faults. Keeping
freed memory in the process (one ``mallopt`` call each, at start) removes that churn. On other C
libraries, or where ``mallopt`` is missing, nothing changes.
"""
from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_MAX = 32 << 20        # glibc's largest allowed mmap threshold on 64-bit systems
_TUNED = []


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; True when they were set."""
    if _TUNED:
        return _TUNED[0]
    ok = False
    try:
        mallopt = ctypes.CDLL(None).mallopt          # the C library already loaded into this process
        ok = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(mallopt(M_TRIM_THRESHOLD, 1 << 30))
    except (OSError, AttributeError):
        pass
    _TUNED.append(ok)
    return ok
