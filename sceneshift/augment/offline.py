"""Offline augmentation: write augmented copies of training clips as a new TAU-layout dataset ("extra data").

Hu et al. generate extra training data once (spectrum-corrected and reverberated copies of
device A, ...). ``sceneshift augment generate`` does the same with the very modules a recipe
uses on the fly, so both give the same kind of data: each waveform entry of the recipe's
``augment`` list (each choice of a ``one_of`` entry: one extra set per method, as the paper) is
applied with ``p = 1`` to every selected training clip it applies to (``source_only`` entries to
source-device clips only), ``copies`` times with fresh draws. Spectrogram entries (crop,
SpecAugment, mixup) are not written: they stay on the fly. Train on the new dataset with a
recipe whose augment list keeps only those.

The new dataset ``OUT`` holds the original lists (``meta.csv``, ``evaluation_setup/*``,
``devices.json``) with the generated clips appended to ``fold1_train.csv`` and ``meta.csv``;
original audio is symlinked, not copied. A generated clip keeps the source clip's scene,
identifier (so an identifier-level split still keeps copies with their original) and device
suffix: ``audio/<original stem without device>-<augmentation><copy>-<device>.flac``, e.g.
``audio/dog_bark-fold1-101415-101415_3_0_2-reverb_drc0-a.flac`` (device ``a``: the clip is
still counted as source-device data, as the paper's extra data is). Each audio file is written
to a temporary name and renamed; lists are written last, so an interrupted run leaves no
dataset that looks complete; a rerun skips clips already written.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import torch

from ..data.datasets.tau import read_table
from ..data.domain import Domain
from ..data.splits import DataSource, iter_batches
from ..io import atomic_path, atomic_write_json, atomic_write_text


def generated_name(filename: str, tag: str, copy: int, device: str) -> str:
    stem = Path(filename).stem
    base = stem[: -(len(device) + 1)] if stem.endswith("-" + device) else stem
    return f"audio/{base}-{tag}{copy}-{device}.flac"


def augmented_batches(aug, data, rows: np.ndarray, n_classes: int, batch_size: int = 32):
    """Yield ``(row indices, augmented waveforms)`` for ``rows`` of a SplitData (``aug.p`` forced to 1).

    Rows an entry does not apply to (``source_only`` on a non-source clip) are dropped.
    """
    aug.p = 1.0
    if getattr(aug, "source_only", False):
        rows = rows[data.devices[rows] == aug.source_index]
    for i, x in enumerate(iter_batches(data.waves, batch_size, rows)):
        r = rows[i * batch_size:(i + 1) * batch_size]
        y = torch.nn.functional.one_hot(torch.from_numpy(data.labels[r]).clamp_min(0), n_classes).float()
        with torch.no_grad():
            out, _ = aug(x, y, torch.from_numpy(data.devices[r]))
        yield r, out.numpy()


def _write_flac(path: Path, wave: np.ndarray, sample_rate: int):
    import soundfile as sf
    peak = float(np.max(np.abs(wave))) if len(wave) else 0.0
    wave = wave / peak * 0.999 if peak > 0.999 else wave      # never clip: scale down instead
    with atomic_path(path) as tmp:
        sf.write(str(tmp), wave.astype(np.float32), sample_rate, subtype="PCM_16")


def _link_originals(root: Path, out: Path, filenames):
    for f in filenames:
        dst = out / f
        if not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.symlink((root / f).resolve(), dst)


def generate(cfg: dict, out: str | Path, copies: int = 1, devices: str = "source", seed: int = 0,
             batch_size: int = 32, log=print) -> Path:
    """Write the extra data of ``cfg['augment']`` (waveform entries) for ``cfg['data']['root']`` into ``out``."""
    from . import build_augmentations
    source = DataSource(cfg["data"], log=log)
    adapter = source.adapter
    root, out = Path(adapter.root), Path(out)
    if adapter.name != "tau":
        raise ValueError(f"augment generate writes the TAU layout; {root} is a {adapter.name} dataset")
    adapter.check(splits=(cfg["data"]["train_split"],))
    if out.resolve() == root.resolve():
        raise ValueError("augment generate: --out must differ from the source dataset")
    if copies < 1:
        raise ValueError(f"augment generate: --copies must be >= 1, got {copies}")
    specs = cfg.get("augment") or []
    if not specs:
        raise ValueError("augment generate: the recipe's augment list is empty")
    train_clips = source.clips(cfg["data"]["train_split"])
    domain = Domain.from_dataset(adapter, train_clips, cfg["data"].get("scene_map"))
    source.domain = domain
    train = source.split(cfg["data"]["train_split"])
    entries = []    # one extra set per method, as the paper: a one_of list is written as its choices
    for spec in specs:
        entries += list(spec.get("choices") or []) if spec.get("name") == "one_of" else [spec]
    wave_augs, spec_augs = build_augmentations(entries, domain, cfg["data"]["sample_rate"])
    if spec_augs:
        log(f"not written (spectrogram augmentations apply on the fly): {', '.join(a.name for a in spec_augs)}")
    if not wave_augs:
        raise ValueError("augment generate writes audio: the recipe's augment list has no waveform augmentation")
    if devices == "source":
        if domain.source is None:
            raise ValueError(f"augment generate --devices source: {root} names no source device; "
                             "give --devices all or a list")
        wanted = {domain.source}
    elif devices == "all":
        wanted = set(domain.devices)
    else:
        wanted = {d.strip() for d in devices.split(",") if d.strip()}
        if unknown := wanted - set(domain.devices):
            raise ValueError(f"augment generate --devices: no training clips of {', '.join(sorted(unknown))}")
    rows = np.array([i for i, c in enumerate(train.clips) if c.device in wanted], dtype=np.int64)
    sample_rate = int(cfg["data"]["sample_rate"])

    (out / "audio").mkdir(parents=True, exist_ok=True)
    meta = {r["filename"]: r for r in adapter.meta()}
    new_rows, written = [], 0
    names = [a.name for a in wave_augs]
    for k, aug in enumerate(wave_augs):
        tag = aug.name if names.count(aug.name) == 1 else f"{aug.name}_{k}"   # the same method twice
        if hasattr(aug, "fit"):
            aug.fit(train)
        for copy in range(copies):
            aug.reseed(seed + 1000 * k + copy)
            for r, waves in augmented_batches(aug, train, rows, len(domain.classes), batch_size):
                for row, wave in zip(r, waves):
                    clip = train.clips[int(row)]
                    name = generated_name(clip.filename, tag, copy, clip.device)
                    if not (out / name).exists():
                        _write_flac(out / name, wave, sample_rate)
                        written += 1
                    ident = meta.get(clip.filename, {}).get("identifier", "")
                    new_rows.append((name, clip.scene, ident, clip.device))
        log(f"{aug.name}: {copies} cop{'y' if copies == 1 else 'ies'} of the clips it applies to")

    listed = set(meta)
    for f in (root / "evaluation_setup").glob("fold*_*.csv"):
        listed |= {r["filename"] for r in read_table(f)}
    _link_originals(root, out, sorted(listed))
    train_file = adapter.split_file(cfg["data"]["train_split"]).name
    for f in (root / "evaluation_setup").glob("*.csv"):
        text = f.read_text()
        if f.name == train_file:
            sep = "\t" if "\t" in text.splitlines()[0] else ","
            text = text.rstrip("\n") + "\n" + "".join(f"{n}{sep}{s}\n" for n, s, _, _ in new_rows)
        atomic_write_text(out / "evaluation_setup" / f.name, text)
    meta_text = (root / "meta.csv").read_text().rstrip("\n") + "\n"
    atomic_write_text(out / "meta.csv", meta_text + "".join(f"{n}\t{s}\t{i}\t{d}\n" for n, s, i, d in new_rows))
    if (root / "devices.json").is_file():
        shutil.copyfile(root / "devices.json", out / "devices.json")
    atomic_write_json(out / "generated.json", {
        "source_dataset": str(root), "augment": specs, "copies": copies, "devices": sorted(wanted), "seed": seed,
        "generated_clips": len(new_rows), "written_now": written, "sample_rate": sample_rate})
    log(f"{len(new_rows)} generated clips appended to {out / 'evaluation_setup' / train_file}")
    return out
