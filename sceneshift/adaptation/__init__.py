"""Unsupervised feature adaptation at evaluation time (``sceneshift evaluate RUN --adapt bandwise``).

Each recording device of the evaluated split is one target domain: an adapter is fitted on that
device's clips of the split (their labels are never read) against statistics of the source
device's clips in the run's own training split, and is set as the network's ``adapt`` step
(between front end and backbone) only while that device's clips are scored. Clips of the source
device are scored unchanged. Works on any run, since every network is a ``SceneClassifier``.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np

ADAPTERS = ("bandwise",)


class RowView:
    """Rows ``idx`` of a (memory-mapped) array, sliced lazily: no copy of a whole split."""

    def __init__(self, array, idx):
        self.array, self.idx = array, np.asarray(idx)

    def __len__(self):
        return len(self.idx)

    def __getitem__(self, s):
        return self.array[self.idx[s]]


@contextmanager
def adapted(net, module):
    """Set ``net.adapt`` for the duration of a block and restore what was there before."""
    before = net.adapt
    net.adapt = module
    try:
        yield net
    finally:
        net.adapt = before


def source_devices_of_run(cfg: dict) -> list[str]:
    from ..data.tau import device_groups
    given = (cfg.get("system_options") or {}).get("source_device")
    if given:
        return [given] if isinstance(given, str) else list(given)
    return device_groups(cfg["data"]["root"])["source"]


def source_waves(predictor, log=print) -> RowView:
    """The source device's clips of the run's training split (its own data, from its config)."""
    from ..training.data import load_split
    cfg = predictor.cfg
    data = load_split(Path(cfg["data"]["root"]), cfg["data"]["train_split"], dict(cfg["data"]), log=log)
    src = set(source_devices_of_run(cfg))
    rows = [i for i, c in enumerate(data.clips) if c.device in src]
    if not rows:
        raise ValueError(f"{cfg['data']['root']}: the run's training split has no clip of the source device(s) "
                         f"{', '.join(sorted(src))}")
    return RowView(data.waves, rows)


def fit_adapters(name: str, predictor, split_data, batch_size: int = 128, log=print) -> dict:
    """``{device: adapter}`` for every non-source device of ``split_data``."""
    if name not in ADAPTERS:
        raise ValueError(f"--adapt: unknown adaptation {name!r} (available: {', '.join(ADAPTERS)})")
    if not hasattr(getattr(predictor, "net", None), "adapt"):
        raise ValueError("--adapt: adaptation is fitted to one network's front end; give a run folder, "
                         "not an ensemble or two-stage system file")
    from .bandwise import band_statistics, BandwiseMatch
    frontend, device = predictor.net.frontend, predictor.device
    sm, ss = band_statistics(frontend, source_waves(predictor, log=log), batch_size, device)
    src = set(source_devices_of_run(predictor.cfg))
    devices = np.array([c.device for c in split_data.clips])
    adapters = {}
    for dev in sorted(set(devices.tolist()) - src):
        tm, ts = band_statistics(frontend, RowView(split_data.waves, np.flatnonzero(devices == dev)), batch_size, device)
        adapters[dev] = BandwiseMatch(sm, ss, tm, ts).to(device)
    log(f"band-wise statistics matching: source {', '.join(sorted(src))} <- {', '.join(adapters) or 'no device'}")
    return adapters


def per_device(predictor, split_data, rows, adapters: dict, fn) -> np.ndarray:
    """``fn(waves)`` for ``split_data`` rows, each device's rows scored with its adapter (if any)."""
    rows = np.asarray(rows)
    devices = np.array([split_data.clips[i].device for i in rows])
    out = None
    for dev in sorted(set(devices.tolist())):
        pos = np.flatnonzero(devices == dev)
        with adapted(predictor.net, adapters.get(dev)):
            res = np.asarray(fn(RowView(split_data.waves, rows[pos])))
        if out is None:
            out = np.zeros((len(rows),) + res.shape[1:], dtype=res.dtype)
        out[pos] = res
    return out


def apply_adaptation(name: str, predictor, split_data, rows, batch_size: int = 128, log=print) -> np.ndarray:
    """Scene probabilities of ``rows`` with adaptation ``name`` fitted on the split, device by device."""
    adapters = fit_adapters(name, predictor, split_data, batch_size, log=log)
    return per_device(predictor, split_data, rows, adapters, lambda w: predictor.probabilities(w, batch_size))
