"""Writing files so that an interrupted run never leaves a half-written one behind.

Every file sceneshift writes for later use (checkpoints, caches, reports, figures, recipes) goes
through :func:`atomic_path`: the content is written to a temporary name beside the target and
renamed over it only when complete, so a reader sees the old file or the new one, never a torn
one; on failure the temporary is removed.

A full disk is an ordinary failure here, not a crash: a write that runs out of space (numpy,
torch and the C library each report it differently) becomes one :class:`DiskFullError` that
names the file and about how much it needed, the temporary is removed and the previous complete
file stays. A temporary left by a process that was killed (``kill -9``: nothing could clean up)
is removed by the next write to the same file.
"""
from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
import socket
from pathlib import Path

LOW_SPACE = 1 << 20      # below this many free bytes after a failed write, the disk was full


class DiskFullError(OSError):
    """No space left for ``path``; the message says how much was needed and how much is free."""

    def __init__(self, path, needed_bytes: int | None = None):
        self.path, self.needed_bytes = Path(path), needed_bytes
        free = _free_bytes(self.path.parent)
        need = f"needed ~{_mb(needed_bytes)} MB, " if needed_bytes else ""
        super().__init__(errno.ENOSPC, f"no space left on {self.path.parent} for {self.path.name}: "
                                       f"{need}{_mb(free)} MB free")

    def __str__(self):
        return self.strerror


def _mb(n) -> str:
    return f"{n / 2 ** 20:.1f}" if n is not None else "?"


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


HOST = socket.gethostname().replace(".", "_").replace("/", "_")
_SWEPT: set = set()


def remove_stale_temporaries(path: Path):
    """Delete this host's ``.<stem>.<host>-<pid>.tmp<suffix>`` files beside ``path`` whose process is gone.

    Once per folder and process (a feature extraction writes thousands of files into one folder);
    temporaries of other hosts (a cache folder shared by cluster nodes) are never touched.
    """
    if path.parent in _SWEPT:
        return
    _SWEPT.add(path.parent)
    mark = f".{HOST}-"
    for tmp in path.parent.glob(f".*{mark}*.tmp*"):
        pid = tmp.name.split(mark, 1)[1].split(".tmp", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            tmp.unlink(missing_ok=True)


def check_space(path: str | Path, needed_bytes: int):
    """Refuse before writing when the disk of ``path`` has less than ``needed_bytes`` free."""
    path = Path(path).absolute()
    folder = next(p for p in path.parents if p.exists())      # the disk the file will be on
    free = _free_bytes(folder)
    if free is not None and free < needed_bytes:
        raise DiskFullError(path, needed_bytes)


@contextlib.contextmanager
def atomic_path(path: str | Path, needed_bytes: int | None = None):
    """Yield a temporary path beside ``path`` (same suffix); rename it over ``path`` on success.

    ``needed_bytes`` (when the size is known in advance) is checked against the free space first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    if needed_bytes:
        check_space(path, needed_bytes)
    tmp = path.with_name(f".{path.stem}.{HOST}-{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        if isinstance(e, DiskFullError):
            raise
        free = _free_bytes(path.parent)
        text = str(e).lower()
        write_failed = any(s in text for s in ("write", "unexpected pos", "iostream"))   # numpy's, torch's words
        full = getattr(e, "errno", None) == errno.ENOSPC or (free is not None and (
            free < LOW_SPACE or (write_failed and needed_bytes and free < needed_bytes)))
        if not full:
            raise
        written = tmp.stat().st_size if tmp.exists() else 0
        tmp.unlink(missing_ok=True)
        raise DiskFullError(path, max(needed_bytes or 0, written) or None) from None
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | Path, text: str):
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _finite(obj):
    """NaN and infinities become null: JSON has no spelling for them."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def atomic_write_json(path: str | Path, obj):
    atomic_write_text(path, json.dumps(_finite(obj), indent=2, sort_keys=False, allow_nan=False) + "\n")


def _tensor_bytes(obj) -> int:
    """About how many bytes ``torch.save(obj)`` writes: the tensors it holds."""
    import torch
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


def atomic_torch_save(obj, path: str | Path):
    import torch
    with atomic_path(path, needed_bytes=_tensor_bytes(obj)) as tmp:
        torch.save(obj, tmp)


def atomic_savefig(fig, path: str | Path, **kw):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, **kw)


def atomic_save_npy(path: str | Path, array):
    import numpy as np
    with atomic_path(path, needed_bytes=np.asarray(array).nbytes) as tmp:
        np.save(tmp, array)


def open_memmap_allocated(path: str | Path, dtype, shape):
    """A new ``.npy`` memory map whose blocks are reserved on disk before anything is written.

    ``numpy.lib.format.open_memmap`` makes a sparse file: on a full disk the first write into an
    unbacked page kills the process with SIGBUS (no message, no cleanup). Reserving the blocks
    first turns that into an ordinary ENOSPC error here.
    """
    import numpy as np
    out = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    size = os.path.getsize(path)
    if hasattr(os, "posix_fallocate"):
        fd = os.open(path, os.O_RDWR)
        try:
            os.posix_fallocate(fd, 0, size)
        except OSError as e:
            del out
            if e.errno in (errno.EOPNOTSUPP, errno.EINVAL):   # a file system without fallocate
                return np.lib.format.open_memmap(path, mode="r+")
            raise
        finally:
            os.close(fd)
    return out


def npy_bytes(dtype, shape) -> int:
    import numpy as np
    return int(np.dtype(dtype).itemsize * math.prod(shape)) + 128
