"""The TAU Urban Acoustic Scenes 2020 Mobile layout, shared by real TAU data and urban-mobile.

A dataset root holds ``meta.csv`` (TAB separated: filename, scene_label, identifier,
source_label), ``evaluation_setup/fold1_{train,validate,evaluate,test}.csv`` and the audio
they name. The recording device is the file-name suffix: ``airport-lisbon-1000-40000-a.wav``
was recorded by device ``a``. ``devices.json`` (urban-mobile) says which devices are the
source, seen and unseen ones; for real TAU 2020 Mobile the same grouping is the default.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

SPLITS = ("train", "validate", "evaluate", "test")
# The official grouping of TAU Urban Acoustic Scenes 2020 Mobile (DCASE 2020 Task 1A).
TAU2020_GROUPS = {"source": ["a"], "seen": ["b", "c", "s1", "s2", "s3"], "unseen": ["s4", "s5", "s6"]}


@dataclass(frozen=True)
class Clip:
    filename: str          # relative to the dataset root, e.g. "audio/airport-...-a.wav"
    scene: str | None      # None where the split has no labels (fold1_test.csv)
    device: str


def device_of(filename: str) -> str:
    """The device code from a TAU-style file name (``...-s4.wav`` -> ``s4``)."""
    stem = Path(filename).stem
    if "-" not in stem:
        raise ValueError(f"{filename}: no device suffix (expected a name ending in -<device>)")
    return stem.rsplit("-", 1)[1]


def read_table(path: Path) -> list[dict]:
    """Read a TAB-separated TAU list (comma-separated files are accepted too)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: split list not found")
    with open(path, newline="") as fh:
        head = fh.readline()
        fh.seek(0)
        delimiter = "\t" if "\t" in head else ","
        return list(csv.DictReader(fh, delimiter=delimiter))


def read_split(root: str | Path, split: str) -> list[Clip]:
    """The clips of ``evaluation_setup/fold1_<split>.csv`` under ``root``."""
    root = Path(root)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    rows = read_table(root / "evaluation_setup" / f"fold1_{split}.csv")
    return [Clip(r["filename"], (r.get("scene_label") or None), device_of(r["filename"])) for r in rows]


def read_meta(root: str | Path) -> list[dict]:
    return read_table(Path(root) / "meta.csv")


def device_groups(root: str | Path, override: str | None = None) -> dict[str, list[str]]:
    """Device groups from ``override`` ("source=a;seen=b,c;unseen=s4"), devices.json, or TAU 2020's."""
    if override:
        groups = {}
        for part in override.split(";"):
            if not part.strip():
                continue
            if "=" not in part:
                raise ValueError(f"--groups: expected NAME=dev,dev;NAME=dev..., got {part!r}")
            name, devs = part.split("=", 1)
            groups[name.strip()] = [d.strip() for d in devs.split(",") if d.strip()]
        return groups
    spec = Path(root) / "devices.json"
    if spec.is_file():
        d = json.loads(spec.read_text())
        return {"source": [d["source_device"]], "seen": list(d["seen"]), "unseen": list(d["unseen"])}
    return {k: list(v) for k, v in TAU2020_GROUPS.items()}


def check_dataset(root: str | Path, splits=("train", "validate")) -> Path:
    """Raise a message that says how to make the dataset when ``root`` is not one."""
    root = Path(root)
    missing = [s for s in splits if not (root / "evaluation_setup" / f"fold1_{s}.csv").is_file()]
    if missing:
        raise FileNotFoundError(
            f"{root}: not a dataset in the TAU 2020 Mobile layout (missing evaluation_setup/fold1_"
            f"{missing[0]}.csv). Build the benchmark with `sceneshift benchmark build --out {root}` "
            "or pass --data to a TAU-layout folder.")
    return root
