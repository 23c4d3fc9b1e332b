"""Shared fixtures: a tiny urban-mobile built once per session, and an isolated cache folder."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


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
    out = tmp_path_factory.mktemp("bench") / "tiny"
    return build_benchmark(out, tiny=True, shared=shared_dir, log=lambda *a: None)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_benchmark):
    """A baseline trained briefly on the tiny benchmark (shared by the evaluation and predict tests)."""
    from sceneshift.cli import train_and_evaluate
    out = tmp_path_factory.mktemp("runs") / "baseline"
    train_and_evaluate("baseline", data=tiny_benchmark, out=out,
                       overrides=["train.epochs=8", "train.progress=false", "train.batch_size=32",
                                  "train.step_epochs=4"], log=lambda *a: None)
    return out
