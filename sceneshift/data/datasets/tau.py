"""The TAU Urban Acoustic Scenes 2020 Mobile layout, shared by real TAU data and urban-mobile.

A dataset root holds ``meta.csv`` (TAB separated: filename, scene_label, identifier,
source_label), ``evaluation_setup/fold<k>_{train,validate,evaluate,test}.csv`` and the audio
they name. The recording device is the file-name suffix: ``airport-lisbon-1000-40000-a.wav``
was recorded by device ``a``. ``devices.json`` (urban-mobile) says which devices are the
source, seen and unseen ones and how each simulated device was made; for real TAU 2020 Mobile
the official grouping is the default.

Damaged lists: a UTF-8 byte-order mark and semicolon- or comma-separated exports are read as
they are; a file listed twice with the same label is counted once (with a warning); a file name
without a device suffix gets the device ``unknown`` (with a warning) rather than aborting a
whole evaluation. The ``train`` and ``validate`` lists need a ``scene_label`` column (a model
is trained and selected on them); ``evaluate`` and ``test`` lists may list file names only
(unlabeled clips: ``evaluate`` skips them and says so).
"""
from __future__ import annotations

import csv
import math
import zlib
from pathlib import Path

from . import DATASETS, Clip, DatasetAdapter, drop_duplicates, read_json, warn

SPLITS = ("train", "validate", "evaluate", "test")
LABELED_SPLITS = ("train", "validate")      # lists that must have a scene_label column
UNKNOWN_DEVICE = "unknown"
# The official grouping of TAU Urban Acoustic Scenes 2020 Mobile (DCASE 2020 Task 1A).
TAU2020_GROUPS = {"source": ["a"], "seen": ["b", "c", "s1", "s2", "s3"], "unseen": ["s4", "s5", "s6"]}


def device_of(filename: str, default: str | None = None) -> str:
    """The device code from a TAU-style file name (``...-s4.wav`` -> ``s4``); ``default`` (or an error)
    for a name without one."""
    stem = Path(filename).stem
    if "-" not in stem or not stem.rsplit("-", 1)[1]:
        if default is not None:
            return default
        raise ValueError(f"{filename}: no device suffix (expected a name ending in -<device>)")
    return stem.rsplit("-", 1)[1]


def read_table(path: Path) -> list[dict]:
    """Read a TAU list: TAB separated, but semicolon- and comma-separated exports (spreadsheets) are
    read too - the delimiter is whichever of the three the header line holds most of, TAB on a tie -
    and so is a UTF-8 byte-order mark. Keys and values are stripped."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: split list not found")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            head = fh.readline()
            if not head.strip():
                raise ValueError(f"{path}: empty file (expected a header line with a 'filename' column)")
            fh.seek(0)
            reader = csv.DictReader(fh, delimiter=max("\t;,", key=head.count))
            reader.fieldnames = [(f or "").strip() for f in reader.fieldnames]
            rows = [{k: (v or "").strip() for k, v in r.items() if k is not None} for r in reader]
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e.reason}); save it as UTF-8") from None
    if "filename" not in reader.fieldnames:
        raise ValueError(f"{path}: expected a header line with a 'filename' column (TAB, semicolon or comma "
                         f"separated), got: {', '.join(reader.fieldnames)}")
    return [r for r in rows if r["filename"]]


def location_of(filename: str) -> str:
    """The recording a TAU clip was cut from: ``audio/airport-lisbon-1000-40000-a.wav`` ->
    ``airport-lisbon-1000`` (scene, city, location id; then segment id and device)."""
    parts = Path(filename).stem.split("-")
    return "-".join(parts[:-2]) if len(parts) >= 4 else Path(filename).stem


def location_order(locations) -> list[str]:
    """``locations`` in a fixed hash order: the order in which recording locations are held out.

    A CRC32 of the name, not ``hash()`` (salted per process) and not the seed, so every run and
    every machine holds out the same locations, and adding a location never reorders the others.
    Shared by the TAU reader's derived validation split and ``sceneshift devices simulate``.
    """
    return sorted(locations, key=lambda loc: (zlib.crc32(loc.encode()), loc))


def parse_groups(text: str) -> dict[str, list[str]]:
    """``"source=a;seen=b,c;unseen=s4"`` -> groups (the ``--groups`` option)."""
    groups = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        if "=" not in part:
            raise ValueError(f"--groups: expected NAME=dev,dev;NAME=dev..., got {part!r}")
        name, devs = part.split("=", 1)
        groups[name.strip()] = [d.strip() for d in devs.split(",") if d.strip()]
    return groups


@DATASETS.register
class TauDataset(DatasetAdapter):
    name = "tau"
    splits = SPLITS

    def __init__(self, root: str | Path, fold: int = 1, validate_fraction: float = 0.1):
        super().__init__(root)
        if int(fold) < 1:
            raise ValueError(f"data.dataset_options.fold must be >= 1, got {fold}")
        if not 0.0 < float(validate_fraction) < 1.0:
            raise ValueError(f"data.dataset_options.validate_fraction must lie in (0, 1), got {validate_fraction}")
        self.fold, self.validate_fraction = int(fold), float(validate_fraction)
        spec = self.root / "devices.json"
        self._devices = read_json(spec) if spec.is_file() else None

    @classmethod
    def detect(cls, root: Path) -> bool:
        return (root / "evaluation_setup").is_dir()

    def split_file(self, split: str) -> Path:
        return self.root / "evaluation_setup" / f"fold{self.fold}_{split}.csv"

    def derives_validate(self) -> bool:
        """The official TAU lists have no validation list (train, evaluate, test): then one is held out
        of the training list."""
        return not self.split_file("validate").is_file() and self.split_file("train").is_file()

    def check(self, splits=()):
        missing = [s for s in splits if not self.split_file(s).is_file()
                   and not (s == "validate" and self.derives_validate())]
        if missing:
            raise FileNotFoundError(
                f"{self.root}: not a dataset in the TAU 2020 Mobile layout (missing {self.split_file(missing[0])}). "
                f"Build the benchmark with `sceneshift benchmark build --out {self.root}` or pass --data to a "
                "TAU-layout folder.")

    def clips(self, split: str) -> list[Clip]:
        if split not in SPLITS:
            raise self.unknown_split(split)
        if split in ("train", "validate") and self.derives_validate():
            return self._held_out(split)
        return self._read(split)

    def _held_out(self, split: str) -> list[Clip]:
        """Train/validate from the training list: whole recording locations are held out (clips of one
        location are segments of one recording, so splitting inside it would leak), per scene the
        ``validate_fraction`` of its locations that come first in a fixed hash order."""
        clips = self._read("train")
        by_scene: dict[str, set[str]] = {}
        for c in clips:
            by_scene.setdefault(c.scene or "", set()).add(location_of(c.filename))
        held = set()
        for locations in by_scene.values():
            order = location_order(locations)
            held.update(order[:max(1, math.ceil(self.validate_fraction * len(order)))] if len(order) > 1 else [])
        warn(f"{self.split_file('train').parent}: no fold{self.fold}_validate.csv; validating on {len(held)} "
             f"recording locations held out of fold{self.fold}_train.csv "
             f"(data.dataset_options.validate_fraction={self.validate_fraction})")
        keep = (lambda c: location_of(c.filename) in held) if split == "validate" else \
            (lambda c: location_of(c.filename) not in held)
        return [c for c in clips if keep(c)]

    def _read(self, split: str) -> list[Clip]:
        path = self.split_file(split)
        rows = read_table(path)
        if not rows:
            raise ValueError(f"{path}: lists no clip (a header line only)")
        if split in LABELED_SPLITS and "scene_label" not in rows[0]:
            raise ValueError(f"{path}: no 'scene_label' column; the {split} split needs a scene label per clip "
                             f"(columns: {', '.join(rows[0])})")
        clips = drop_duplicates([Clip(r["filename"], r.get("scene_label") or None,
                                      device_of(r["filename"], UNKNOWN_DEVICE)) for r in rows], str(path))
        nameless = [c.filename for c in clips if c.device == UNKNOWN_DEVICE]
        if nameless:
            warn(f"{path}: {len(nameless)} file name(s) without a -<device> suffix (e.g. {nameless[0]}): "
                 f"device {UNKNOWN_DEVICE!r}")
        return clips

    def groups(self) -> dict[str, list[str]]:
        if self._devices:
            d = self._devices
            return {"source": [d["source_device"]], "seen": list(d["seen"]), "unseen": list(d["unseen"])}
        return {k: list(v) for k, v in TAU2020_GROUPS.items()}

    def device_irs(self) -> dict[str, str]:
        chains = (self._devices or {}).get("chains") or {}
        return {dev: c["ir"] for dev, c in chains.items() if c.get("ir")}

    @property
    def benchmark_version(self) -> str | None:
        if self._devices is None:
            return None
        return self._devices.get("benchmark_version", "v1")

    def meta(self) -> list[dict]:
        return read_table(self.root / "meta.csv")
