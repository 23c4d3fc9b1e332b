"""Shared fixtures: a tiny urban-mobile built once per test run, and an isolated cache folder.

Under pytest-xdist (``pytest -n 2``, the README's command) each worker is pinned to its share of the
cores, so a training in one worker takes one core's threads instead of fighting the other worker for
both, and the tiny benchmark and the tiny baseline run are made once for all workers (sceneshift's own
cache lock, in the run's common temporary folder), not once per worker.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
ALL_CORES = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def pytest_configure(config):
    worker, workers = os.environ.get("PYTEST_XDIST_WORKER"), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if worker and 1 < workers <= len(ALL_CORES):   # worker i: cores i, i + n, ... (sceneshift's threads follow affinity)
        os.sched_setaffinity(0, ALL_CORES[int(worker.removeprefix("gw")) % workers::workers])


def _made_once(tmp_path_factory, name: str, make):
    """``make(folder)`` once per test run, whichever worker asks first; the others wait and reuse it."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent                 # the folder all workers' temporary folders share
    folder, done = root / "once" / name, root / "once" / f"{name}.done"
    folder.parent.mkdir(parents=True, exist_ok=True)
    from sceneshift.data.cache import build_lock
    with build_lock(folder, log=lambda *a: None):
        if not done.exists():
            mine = os.sched_getaffinity(0) if ALL_CORES else None
            try:                           # every core: the other workers wait for it anyway
                if mine:
                    os.sched_setaffinity(0, ALL_CORES)
                make(folder)
            finally:
                if mine:
                    os.sched_setaffinity(0, mine)
                    if "torch" in sys.modules:     # the training set torch's threads for every core
                        sys.modules["torch"].set_num_threads(len(mine))
            done.touch()
    return folder


@pytest.fixture(scope="session", autouse=True)
def isolated_data_dir(tmp_path_factory):
    """Caches and benchmarks of the test session go to a temporary folder, never the user's."""
    d = tmp_path_factory.mktemp("sceneshift_data")
    old = os.environ.get("SCENESHIFT_DATA")
    os.environ["SCENESHIFT_DATA"] = str(d)
    yield d
    if old is None:
        os.environ.pop("SCENESHIFT_DATA", None)
    else:
        os.environ["SCENESHIFT_DATA"] = old


@pytest.fixture(scope="session")
def shared_dir():
    from sceneshift.paths import shared_dir as find
    try:
        return find()
    except FileNotFoundError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def tiny_benchmark(tmp_path_factory, shared_dir):
    """urban-mobile with 4 clips per class and fold (149 train, 240 validate, 360 evaluate clips)."""
    from sceneshift.data.benchmark import build_benchmark
    return _made_once(tmp_path_factory, "tiny", lambda out: build_benchmark(out, tiny=True, shared=shared_dir,
                                                                           log=lambda *a: None))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_benchmark):
    """A baseline trained briefly on the tiny benchmark (shared by the evaluation and predict tests)."""
    from sceneshift.cli import train_and_evaluate
    return _made_once(tmp_path_factory, "baseline", lambda out: train_and_evaluate(
        "baseline", data=tiny_benchmark, out=out, log=lambda *a: None,
        overrides=["train.epochs=8", "train.progress=false", "train.batch_size=32", "train.step_epochs=4"]))
