"""Self-contained install (issue 13): without the shared material, every command works on a dataset
given with --data; only building urban-mobile needs it, and says what it needs and where to get it.

The commands run in a fresh interpreter whose working directory has no ``shared`` folder near it and
whose ``SCENESHIFT_SHARED`` names an empty folder, so nothing can be found by accident.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def sceneshift(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    code = "import sys; from sceneshift.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_every_command_but_the_benchmark_build_works_without_shared(tiny_benchmark, tmp_path):
    empty = tmp_path / "no-shared"
    empty.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "SCENESHIFT_SHARED": str(empty), "SCENESHIFT_DATA": str(tmp_path / "data")}
    data, run = str(tiny_benchmark), str(work / "run")

    build = sceneshift(["benchmark", "build"], work, env)
    assert build.returncode != 0
    assert "shared material not found" in build.stderr
    assert "sceneshift datasets download urbansound8k" in build.stderr

    steps = [
        ["list", "recipes"],
        ["list", "models", "--macs"],
        ["datasets", "list"],
        ["train", "baseline", "--data", data, "--out", run, "train.epochs=1", "train.progress=false"],
        ["evaluate", run, "--data", data],
        ["predict", run, *sorted(str(p) for p in (tiny_benchmark / "audio").glob("*.flac"))[:2]],
    ]
    for args in steps:
        done = sceneshift(args, work, env)
        assert done.returncode == 0, f"sceneshift {' '.join(args[:2])} failed without shared:\n{done.stderr[-2000:]}"
    assert list((work / "run" / "eval").glob("*/report.json"))


def test_a_recipe_that_needs_shared_files_names_them(tiny_benchmark, tmp_path):
    """Augmentations that read the shared impulse responses fail with the same clear message."""
    empty = tmp_path / "no-shared"
    empty.mkdir()
    env = {**os.environ, "SCENESHIFT_SHARED": str(empty), "SCENESHIFT_DATA": str(tmp_path / "data")}
    done = sceneshift(["train", "cp_resnet_dir", "--data", str(tiny_benchmark), "--out", str(tmp_path / "run"),
                       "train.epochs=1", "train.progress=false"], tmp_path, env)
    if done.returncode == 0:
        pytest.fail("a device-IR recipe trained without any impulse responses")
    assert "shared material not found" in done.stderr or "irs" in done.stderr.lower(), done.stderr[-2000:]
