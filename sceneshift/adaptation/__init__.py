"""Unsupervised adaptation at evaluation time (``sceneshift evaluate RUN --adapt METHOD``).

Methods: ``bandwise`` (band-wise statistics matching of the features, bandwise.py), ``quantile``
(band-wise quantile matching, histogram equalisation of each band; quantile.py), ``adabn`` (the
network's batch-norm statistics re-estimated on the device) and ``bandwise+adabn`` (both; batchnorm.py).

Each recording device of the evaluated split is one target domain: an adapter is fitted on that
device's clips of the split (their labels are never read) against statistics of the source
device's clips in the run's own training split, and is set as the network's ``adapt`` step
(between front end and backbone) only while that device's clips are scored.

Which devices are adapted: by default only those the run never trained on (the unseen devices
of urban-mobile), since a device with training clips is already part of what the network fits:
on the version-2 baseline, matching raised the unseen devices from 54.2 to 59.4 % and, applied to
the seen devices too, cost them 2.9 points (README, "Measured on urban-mobile"). ``which="all"``
adapts every device but the source. The source device and the
run's training devices come from the run's domain, never from a device name written here.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..registry import Registry

# An adaptation is a function (net, source=(waves, rows), targets={device: (waves, rows)}, batch_size,
# device) -> {device: nn.Module applied between front end and backbone}; a module with a ``norm_state``
# (batchnorm.py) also carries batch-norm statistics for the network while that device is scored.
ADAPTATIONS = Registry("adaptation", __name__, injected=("net", "source", "targets", "batch_size", "device"))


def load_norm_state(net, state: dict) -> dict:
    """Copy ``state`` (state-dict name -> buffer) into ``net``'s buffers; returns what they held before."""
    buffers = dict(net.named_buffers())
    missing = sorted(set(state) - set(buffers))
    if missing:
        raise ValueError(f"adapter statistics for buffers the network does not have: {', '.join(missing[:3])}")
    before = {k: buffers[k].clone() for k in state}
    for k, v in state.items():
        buffers[k].copy_(v)
    return before


def install(net, module):
    """Make ``module`` (an adapter, or None) the network's ``adapt`` step for good, its batch-norm statistics included."""
    net.adapt = module
    if getattr(module, "norm_state", None):
        load_norm_state(net, module.norm_state)


@contextmanager
def adapted(net, module):
    """Set ``net.adapt`` (and an adapter's batch-norm statistics) for the duration of a block and restore
    what was there before."""
    before = net.adapt
    state = getattr(module, "norm_state", None)
    saved = load_norm_state(net, state) if state else None
    net.adapt = module
    try:
        yield net
    finally:
        net.adapt = before
        if saved:
            load_norm_state(net, saved)


def devices_to_adapt(domain, split_devices, which: str = "untrained") -> list[str]:
    """``untrained``: devices of the split the run never trained on; ``all``: every device but the source."""
    if which == "untrained":
        return domain.untrained_devices(split_devices)
    if which == "all":
        return sorted({d for d in split_devices if d != domain.source})
    raise ValueError(f"--adapt-devices: expected 'untrained' or 'all', got {which!r}")


def check_method(name: str, domain):
    """The registered adaptation ``name``; an error when it is unknown or the run has no source device."""
    fit = ADAPTATIONS.get(name, where="--adapt")
    if domain.source is None:
        raise ValueError(f"--adapt {name}: the run's dataset names no source device to match against")
    return fit


def method_and_source(name: str, domain, source_data):
    """The registered adaptation ``name`` and the source statistics' clips: ``(waves, rows)`` of the
    run's training split recorded by its source device."""
    fit = check_method(name, domain)
    src_rows = source_data.rows(device=domain.source)
    if not len(src_rows):
        raise ValueError(f"the run's training split has no clip of the source device {domain.source}")
    return fit, (source_data.waves, src_rows)


def fit_adapters(name: str, net, domain, source_data, split_data, which: str = "untrained",
                 batch_size: int = 128, device="cpu", log=print) -> dict:
    """``{device: adapter}`` for the devices of ``split_data`` chosen by ``which``.

    ``source_data`` is the run's training split: its clips of ``domain.source`` give the source
    statistics.
    """
    if not hasattr(net, "adapt"):
        raise ValueError("--adapt: adaptation is fitted to one network's front end; give a run folder, "
                         "not an ensemble or two-stage system file")
    fit, source = method_and_source(name, domain, source_data)
    split_devices = np.array([c.device for c in split_data.clips])
    targets = devices_to_adapt(domain, split_devices.tolist(), which)
    adapters = fit(net=net, source=source,
                   targets={d: (split_data.waves, np.flatnonzero(split_devices == d)) for d in targets},
                   batch_size=batch_size, device=device) if targets else {}
    log(f"{name}: source {domain.source} <- {', '.join(adapters) or 'no device'} "
        f"({'devices the run never trained on' if which == 'untrained' else 'every non-source device'})")
    return adapters


def per_device(net, split_data, rows, adapters: dict, fn) -> np.ndarray:
    """``fn(row indices)`` for ``rows`` of ``split_data``, each device's rows scored with its adapter (if any)."""
    rows = np.asarray(rows)
    devices = np.array([split_data.clips[i].device for i in rows])
    out = None
    for dev in sorted(set(devices.tolist())):
        pos = np.flatnonzero(devices == dev)
        with adapted(net, adapters.get(dev)):
            res = np.asarray(fn(rows[pos]))
        if out is None:
            out = np.zeros((len(rows),) + res.shape[1:], dtype=res.dtype)
        out[pos] = res
    return out


def recording_files(paths) -> list[Path]:
    """Audio files given as files or folders (searched recursively; hidden entries left out), in order."""
    from ..data.datasets.folders import AUDIO_SUFFIXES
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES
                          and not any(part.startswith(".") for part in f.relative_to(p).parts))
        else:
            out.append(p)
    return out


def read_recordings(paths, sample_rate: int, n_samples: int, what: str = "--adapt-to"):
    """Unlabeled recordings of one device (files or folders; any length, rate or channel count) as
    ``(windows, recording, skipped)``: the run's clip-length windows ``(N, n_samples)``, the index of the
    recording each window comes from, and ``(file, reason)`` for unreadable, empty or silent files.
    No readable recording at all is an error naming what was given."""
    from ..data.audio import AudioError, load_audio
    from ..networks.predictor import windows
    waves, owner, skipped = [], [], []
    for f in recording_files(paths):
        try:
            w = windows(load_audio(f, sample_rate), n_samples)
        except AudioError as e:
            skipped.append((str(f), e.reason))
            continue
        waves.append(w.astype(np.float32, copy=False))
        owner.append(np.full(len(w), len(waves) - 1))
    if not waves:
        raise ValueError(f"{what} {', '.join(map(str, paths))}: no readable recording"
                         + (f" ({len(skipped)} skipped, e.g. {skipped[0][0]}: {skipped[0][1]})" if skipped
                            else " (no audio file found)"))
    return np.concatenate(waves), np.concatenate(owner), skipped


def fit_to_recordings(name: str, net, domain, source_data, target: np.ndarray, batch_size: int = 128,
                      device="cpu"):
    """One adapter for a device known only by unlabeled recordings of it (``target``: their windows, from
    :func:`read_recordings`), fitted against the run's source-device training clips.

    Why: ``--adapt`` at evaluation fits on the benchmark's clips of each device; a user deploying to a
    new phone has a folder of its recordings instead, and wants the adapted model as one file
    (``sceneshift export RUN --adapt bandwise --adapt-to DIR``).
    """
    fit, source = method_and_source(name, domain, source_data)
    return fit(net=net, source=source, targets={"target": (target, None)},
               batch_size=batch_size, device=device)["target"]
