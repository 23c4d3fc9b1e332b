"""Decode a split's audio once into a memory-mapped array that every later run reuses.

Decoding and resampling thousands of FLAC files costs more than a training epoch on two
cores, so each (dataset, split, sample rate, clip length) is decoded once into
``<cache_dir>/<key>.npy`` (float16: about 66 dB of precision per sample, half the disk
of float32) with a JSON index of the files kept and skipped. Both are written to temporary
names and renamed, so an interrupted build never leaves a cache that looks complete.

Several processes may want the same cache at once (the processes of a distributed run, or two
runs started together): :func:`build_lock` lets one of them build it while the others wait, then
read what it wrote. Where the file system has no working ``flock`` the worst case is that two
processes decode the same split: each writes its own temporary file and the last rename wins,
with the same content, never a torn file.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from .audio import AudioError, fit_length, load_audio
from ..io import atomic_path, atomic_write_json, npy_bytes, open_memmap_allocated
from .datasets import Clip


def _decode(job):
    path, sample_rate, n_samples = job
    try:
        return fit_length(load_audio(path, sample_rate), n_samples).astype(np.float16), None
    except AudioError as e:
        return None, e.reason


@contextlib.contextmanager
def build_lock(target: str | Path, log=print):
    """Hold an exclusive lock on ``<target>.lock`` (beside it) while building ``target``.

    A process that finds the lock held says so and waits; after it gets the lock it should look
    for ``target`` again, since the holder has probably just built it. The holder removes the
    lock file before releasing it, so no lock file stays behind; a waiter that then holds a lock
    on the removed file notices (another inode, or none, at the path) and locks the new one. A
    process that dies holding the lock releases it (the kernel closes its files). Without
    ``fcntl`` (Windows) nothing is locked.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    lock = Path(target).with_name(Path(target).name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    said = False
    while True:
        fh = open(lock, "a")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not said:
                log(f"waiting for another process that is writing {Path(target).name} into {lock.parent} ...")
                said = True
            fcntl.flock(fh, fcntl.LOCK_EX)
        except BaseException:
            fh.close()
            raise
        try:
            same = os.stat(lock).st_ino == os.fstat(fh.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        fh.close()
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        fh.close()


def _read_cache(array_path: Path, index_path: Path, clips: list[Clip]):
    if not (array_path.is_file() and index_path.is_file()):
        return None
    index = json.loads(index_path.read_text())
    by_name = {c.filename: c for c in clips}
    kept = [by_name[f] for f in index["kept"]]
    return np.load(array_path, mmap_mode="r"), kept, [tuple(s) for s in index["skipped"]]


def cache_key(root: Path, clips: list[Clip], sample_rate: int, n_samples: int) -> str:
    """Names, sizes and modification times of the files: a rebuilt dataset gets a fresh cache."""
    h = hashlib.sha1(f"{Path(root).resolve()}|{sample_rate}|{n_samples}".encode())
    for c in clips:
        try:
            st = os.stat(Path(root) / c.filename)
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        h.update(f"{c.filename}|{stamp}\0".encode())
    return h.hexdigest()[:16]


def load_waveforms(root: str | Path, clips: list[Clip], files: list[Path], sample_rate: int, n_samples: int,
                   cache_dir: str | Path, workers: int | None = None, log=print):
    """Return ``(waves [N, n_samples] float16 memmap, kept clips, skipped [(filename, reason)])``.

    ``files[i]`` is the audio of ``clips[i]`` (the dataset adapter decides where audio lives).
    """
    root, cache_dir = Path(root), Path(cache_dir)
    key = cache_key(root, clips, sample_rate, n_samples)
    array_path, index_path = cache_dir / f"{key}.npy", cache_dir / f"{key}.json"
    cached = _read_cache(array_path, index_path, clips)
    if cached is not None:
        return cached
    cache_dir.mkdir(parents=True, exist_ok=True)
    with build_lock(array_path, log=log):
        cached = _read_cache(array_path, index_path, clips)       # built by the process we waited for
        if cached is not None:
            return cached
        return _build(root, clips, files, sample_rate, n_samples, cache_dir, workers, array_path, index_path, log)


def _build(root: Path, clips, files, sample_rate: int, n_samples: int, cache_dir: Path, workers, array_path: Path,
           index_path: Path, log):
    workers = workers or min(4, os.cpu_count() or 1)
    jobs = [(str(f), sample_rate, n_samples) for f in files]
    log(f"decoding {len(clips)} clips from {root} at {sample_rate} Hz into the cache {cache_dir} ...")
    kept, skipped, row = [], [], 0
    shape = (len(clips), n_samples)
    with atomic_path(array_path, needed_bytes=npy_bytes(np.float16, shape)) as tmp_array:
        out = open_memmap_allocated(tmp_array, np.float16, shape)
        pool = ProcessPoolExecutor(workers) if workers > 1 and len(jobs) > 64 else None
        try:
            results = pool.map(_decode, jobs, chunksize=32) if pool else map(_decode, jobs)
            for clip, (wave, reason) in zip(clips, results):
                if wave is None:
                    skipped.append((clip.filename, reason))
                    continue
                out[row] = wave
                kept.append(clip)
                row += 1
        finally:         # an error or interrupt: stop the workers now, not after every queued file
            if pool:
                pool.shutdown(wait=False, cancel_futures=True)
        out.flush()
        del out
        if row < len(clips):  # shrink to the kept rows
            full = np.load(tmp_array, mmap_mode="r")
            with atomic_path(tmp_array, needed_bytes=npy_bytes(np.float16, (row, n_samples))) as part:
                np.save(part, np.asarray(full[:row]))
            del full
    atomic_write_json(index_path, {"root": str(root), "sample_rate": sample_rate, "n_samples": n_samples,
                                   "kept": [c.filename for c in kept], "skipped": skipped})
    for name, reason in skipped:
        print(f"skipped {root / name}: {reason}", file=sys.stderr)
    return np.load(array_path, mmap_mode="r"), kept, skipped
