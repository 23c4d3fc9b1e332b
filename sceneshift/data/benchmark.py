"""Building the embedded benchmark, urban-mobile, with the shared generator script.

The protocol (devices, splits, seen/unseen groups) is defined by
``shared/benchmarks/make_mobile_benchmark.py``; this module only finds it and its source
material, runs it into a temporary folder and renames that into place when complete, so an
interrupted build never looks like a finished benchmark.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from .. import paths

TINY_PER_CLASS = 4


def is_built(root: Path) -> bool:
    return (Path(root) / "summary.json").is_file() and (Path(root) / "evaluation_setup" / "fold1_train.csv").is_file()


def build_benchmark(out: str | Path | None = None, tiny: bool = False, max_per_class: int | None = None,
                    shared: str | Path | None = None, workers: int | None = None, log=print) -> Path:
    out = Path(out) if out else paths.default_benchmark()
    if tiny and max_per_class is None:
        max_per_class = TINY_PER_CLASS
    if is_built(out):
        log(f"benchmark already built at {out}")
        return out
    share = paths.shared_dir(shared)
    script = share / "benchmarks" / "make_mobile_benchmark.py"
    source, irs = share / "data" / "urbansound8k-16k", share / "data" / "micirp"
    for p in (source / "meta.csv", irs):
        if not p.exists():
            raise FileNotFoundError(f"{p}: benchmark source material missing (set SCENESHIFT_SHARED)")
    tmp = out.with_name(f".{out.name}.building")
    cmd = [sys.executable, str(script), "--out", str(tmp), "--source", str(source), "--irs", str(irs),
           "--workers", str(workers or os.cpu_count() or 1)]
    if max_per_class:
        cmd += ["--max-per-class", str(max_per_class)]
    log(f"building urban-mobile into {out} (about a minute on 2 cores for the full benchmark) ...")
    subprocess.run(cmd, check=True)   # the script skips clips already written: a rerun resumes
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out
