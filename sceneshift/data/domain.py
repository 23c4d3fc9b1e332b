"""The run's domain: what a trained model knows about classes and recording devices.

Made once, from the dataset and the training split, when a run starts, and saved in the run
folder as ``domain.json``; every augmentation, system, adaptation and report takes device and
class facts from here, so nothing outside ``data/`` names a device literally and a dataset whose
source device is called ``ref`` instead of ``a`` works the same.

* ``classes``: what the model predicts (after ``data.scene_map``), in output order.
* ``devices``: the devices of the training split, in device-index order (the order device heads
  and device-aware augmentations use).
* ``trained_devices``: the devices whose clips the system actually trained on (all of ``devices``
  for most systems; only the source device for seed 000's C0), set by the system.
* ``groups``: the dataset's device groups for reports (source / seen / unseen for urban-mobile
  and TAU 2020 Mobile).
* ``source``: the source (reference) device, or None when the dataset has none.
* ``device_irs``: the impulse response behind each simulated device, where the dataset records it
  (urban-mobile's devices.json), so augmentations can refuse to train on a test device's response.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..io import atomic_write_json


def device_order(d: str):
    """a, b, c, s1, s2, ..., s10 in natural order."""
    head = d.rstrip("0123456789")
    tail = d[len(head):]
    return (1, head, int(tail)) if tail else (0, d, 0)


@dataclass(frozen=True)
class Domain:
    classes: tuple[str, ...]
    devices: tuple[str, ...]
    groups: dict[str, list[str]] = field(default_factory=dict)
    source: str | None = None
    device_irs: dict[str, str] = field(default_factory=dict)
    dataset: str = ""
    benchmark_version: str | None = None
    trained_devices: tuple[str, ...] | None = None     # None: every device of ``devices``

    @classmethod
    def from_dataset(cls, adapter, train_clips, scene_map: dict | None = None) -> "Domain":
        scene_map = scene_map or {}
        classes = sorted({scene_map.get(c.scene, c.scene) for c in train_clips if c.scene})
        if not classes:
            raise ValueError(f"{adapter.root}: the training split has no labeled clip")
        devices = sorted({c.device for c in train_clips}, key=lambda d: (len(d) > 1, d))
        return cls(tuple(classes), tuple(devices), adapter.groups(), adapter.source_device, adapter.device_irs(),
                   adapter.name, adapter.benchmark_version)

    @classmethod
    def placeholder(cls, n_classes: int, n_devices: int = 1) -> "Domain":
        """A domain of ``n_classes`` anonymous classes, for building a network without data (cost counts)."""
        return cls(tuple(f"class{i}" for i in range(n_classes)), tuple(f"device{i}" for i in range(n_devices)))

    def device_index(self, name: str | None) -> int:
        """Index of a device in ``devices`` (-1 for a device the run never trained on, or None)."""
        return self.devices.index(name) if name in self.devices else -1

    @property
    def source_index(self) -> int:
        return self.device_index(self.source)

    def untrained_devices(self, devices) -> list[str]:
        """Those of ``devices`` the run never trained on (unseen devices, in urban-mobile)."""
        trained = self.devices if self.trained_devices is None else self.trained_devices
        return sorted({d for d in devices if d not in trained}, key=device_order)

    def to_json(self) -> dict:
        d = asdict(self)
        d["classes"], d["devices"] = list(self.classes), list(self.devices)
        d["trained_devices"] = list(self.devices if self.trained_devices is None else self.trained_devices)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Domain":
        trained = d.get("trained_devices")
        return cls(tuple(d["classes"]), tuple(d["devices"]), dict(d.get("groups") or {}), d.get("source"),
                   dict(d.get("device_irs") or {}), d.get("dataset", ""), d.get("benchmark_version"),
                   tuple(trained) if trained is not None else None)

    def save(self, path: str | Path):
        atomic_write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> "Domain":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no domain file; the run folder was made by an older sceneshift "
                                    "or is incomplete (train it again)")
        return cls.from_json(json.loads(path.read_text()))
