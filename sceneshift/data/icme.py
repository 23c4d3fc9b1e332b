"""Label files of the ICME 2024 semi-supervised ASC challenge (CAS 2023 data).

Format: ``filename,scene_label`` with a header; an empty label marks an unlabeled clip.
"""
from __future__ import annotations

import csv
from pathlib import Path


def read_labels(path: str | Path) -> tuple[dict[str, str], list[str]]:
    """Return ``(labeled: filename -> scene, unlabeled: [filename])``."""
    labeled, unlabeled = {}, []
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or "filename" not in reader.fieldnames:
            raise ValueError(f"{path}: expected a header 'filename,scene_label'")
        for row in reader:
            name = (row.get("filename") or "").strip()
            if not name:
                continue
            label = (row.get("scene_label") or "").strip()
            if label:
                labeled[name] = label
            else:
                unlabeled.append(name)
    return labeled, unlabeled
