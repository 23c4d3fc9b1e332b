"""Datasets behind one interface: labeled and unlabeled clips of named splits, each with its device.

A dataset adapter turns one on-disk layout into :class:`Clip` lists. Everything above ``data/``
sees clips, never a layout: training, evaluation, adaptation and reports work the same on the
TAU Urban Acoustic Scenes 2020 Mobile layout (real TAU data and urban-mobile), the ICME 2024 /
CAS 2023 label files and a plain folder per class. A clip without a scene label (``scene is
None``) is an *unlabeled* clip: it stays in its split, so semi-supervised systems can use it,
and supervised systems skip it.

An adapter also says what it knows about recording devices (:meth:`DatasetAdapter.groups`,
``source_device``, the impulse responses that built each simulated device): the run's
:class:`~sceneshift.data.domain.Domain` is made from it once and saved in the run folder.

Adding a dataset: one file in this folder with a ``@DATASETS.register`` subclass (its
constructor's keyword parameters are the recipe's ``data.dataset_options``) and, if it can be
recognised from its files, a ``detect`` class method.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...registry import Registry

DATASETS = Registry("dataset", __name__, injected=("root",),
                    injected_from={"root": "data.root or --data"})


@dataclass(frozen=True)
class Clip:
    filename: str          # relative to the dataset root, e.g. "audio/airport-lisbon-1000-40000-a.wav"
    scene: str | None      # None for an unlabeled clip
    device: str            # recording device (or domain) of the clip


class DatasetAdapter:
    """One dataset layout. Subclasses read their lists in ``clips``; the rest has sensible defaults."""

    name = "dataset"
    splits: tuple[str, ...] = ()
    detect_order = 0       # generic layouts (a folder per class) are tried last

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @classmethod
    def detect(cls, root: Path) -> bool:
        """Whether ``root`` looks like this layout (used by ``data.dataset: auto``)."""
        return False

    def check(self, splits=()):
        """Raise a message saying how to make the dataset when ``root`` is not one."""
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: dataset folder not found")
        for s in splits:
            self.clips(s)

    def clips(self, split: str) -> list[Clip]:
        raise NotImplementedError

    def audio_path(self, clip: Clip) -> Path:
        return self.root / clip.filename

    def groups(self) -> dict[str, list[str]]:
        """Device groups (e.g. source / seen / unseen) for reports; empty when the dataset has none."""
        return {}

    @property
    def source_device(self) -> str | None:
        return (self.groups().get("source") or [None])[0]

    def device_irs(self) -> dict[str, str]:
        """Impulse response (file name) behind each simulated device, where the dataset records it."""
        return {}

    @property
    def benchmark_version(self) -> str | None:
        return None

    def unknown_split(self, split: str):
        return ValueError(f"{self.root}: unknown split {split!r} of a {self.name} dataset "
                          f"(splits: {', '.join(self.splits)})")


def _check_unique(clips: list[Clip], where: str) -> list[Clip]:
    seen, dup = set(), []
    for c in clips:
        if c.filename in seen:
            dup.append(c.filename)
        seen.add(c.filename)
    if dup:
        raise ValueError(f"{where}: {len(dup)} file(s) listed twice, e.g. {dup[0]}; each clip may appear once")
    return clips


def open_dataset(root: str | Path, kind: str = "auto", options: dict | None = None) -> DatasetAdapter:
    """The adapter for ``root``: ``kind`` names one (``tau``, ``icme``, ``folders``) or ``auto`` detects it."""
    root = Path(root)
    if kind == "auto":       # options are checked against the detected kind's adapter
        for name in sorted(DATASETS.names(), key=lambda n: (DATASETS.get(n).detect_order, n)):
            if DATASETS.get(name).detect(root):
                kind = name
                break
        else:
            if not root.exists():
                raise FileNotFoundError(
                    f"{root}: dataset folder not found. Build the benchmark with `sceneshift benchmark build "
                    f"--out {root}` or pass --data to a dataset folder.")
            raise FileNotFoundError(
                f"{root}: not a dataset sceneshift recognises (a TAU 2020 Mobile layout with evaluation_setup/"
                "fold1_train.csv, the ICME 2024 label files, or one folder per class); build the benchmark with "
                f"`sceneshift benchmark build --out {root}` or set data.dataset")
    return DATASETS.build(kind, options, where="data.dataset_options", root=root)
