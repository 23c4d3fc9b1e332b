"""Recipes: one YAML file per experiment, resolved against defaults, overridable from the command line.

A recipe may name a ``base:`` recipe (by file name or packaged recipe name) whose values it
overrides, so a family of configurations stays one short file each. ``key=value`` overrides
use dotted keys (``train.epochs=5``) and YAML values; a key that no section knows is an error
naming it (model options are checked by the model builder).
"""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

RECIPES = Path(__file__).with_name("recipes")

DEFAULTS = {
    "name": "run",
    "system": "classifier",      # which Lightning module trains the recipe (training.SYSTEMS)
    "data": {
        "root": None,                # dataset folder; default: the built urban-mobile benchmark
        "sample_rate": 16000,
        "clip_seconds": 4.0,         # clips are cut or repeated to this length
        "train_split": "train",
        "val_split": "validate",
        "test_split": "evaluate",
        "workers": 2,                # processes decoding audio into the cache
        "features": None,            # folder of precomputed features instead of audio (see data/features.py)
        "scene_map": None,           # {scene: broad class}: train on broad classes (two-stage systems)
    },
    "frontend": {
        "name": "logmel", "n_fft": 1024, "hop_length": 320, "win_length": None, "n_mels": 64, "fmin": 0.0,
        "fmax": None, "window": "hann", "power": 2.0, "log": "db", "htk": False, "mel_norm": "slaney",
        "center": True, "n_deltas": 0, "delta_width": 9, "delta_mode": "interp", "normalize": "none",
    },
    "augment": [],                   # list of {name: ..., options} applied in training only
    "model": {"name": "kaggle_cnn"},
    "head": {"name": "linear"},
    "train": {
        "epochs": 30, "batch_size": 64, "optimizer": "adam", "lr": 1.0e-3, "weight_decay": 0.0,
        "momentum": 0.9, "scheduler": "step", "step_epochs": 10, "gamma": 0.5, "warmup_epochs": 0,
        "seed": 0, "monitor": "val/acc", "eval_batch_size": 128, "threads": None, "limit_train_batches": None,
        "progress": True,
    },
}
FREE_SECTIONS = ("model", "system_options")   # options checked by their builders


def merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def find_recipe(name: str | Path) -> Path:
    p = Path(name)
    if p.is_file():
        return p
    for cand in (RECIPES / f"{name}.yaml", RECIPES / str(name)):
        if cand.is_file():
            return cand
    known = ", ".join(sorted(x.stem for x in RECIPES.glob("*.yaml")))
    raise FileNotFoundError(f"recipe {name!r} not found (not a file; packaged recipes: {known})")


def load_recipe(name: str | Path, _seen=()) -> dict:
    path = find_recipe(name)
    if path.resolve() in _seen:
        raise ValueError(f"{path}: recipe bases form a cycle")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a recipe must be a YAML mapping")
    base = raw.pop("base", None)
    beside = path.parent / str(base)
    parent = load_recipe(beside if beside.is_file() else base, _seen + (path.resolve(),)) if base else DEFAULTS
    return check(merge(parent, raw), source=str(path))


def check(cfg: dict, source: str = "recipe") -> dict:
    for section, defaults in DEFAULTS.items():
        if isinstance(defaults, dict) and section not in FREE_SECTIONS:
            for key in cfg.get(section, {}) or {}:
                if key not in defaults:
                    raise ValueError(f"{source}: unknown option {section}.{key} "
                                     f"(known: {', '.join(sorted(defaults))})")
    return cfg


def apply_overrides(cfg: dict, overrides: list[str]) -> dict:
    cfg = copy.deepcopy(cfg)
    for item in overrides or []:
        if "=" not in item:
            raise ValueError(f"override {item!r}: expected key=value, e.g. train.epochs=5")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node = cfg
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                if node is cfg and p in FREE_SECTIONS:
                    node[p] = {}
                else:
                    raise ValueError(f"override {key}: unknown section {p!r}")
            node = node[p]
        free = parts[0] in FREE_SECTIONS and len(parts) > 1
        if parts[-1] not in node and not free:
            raise ValueError(f"override {key}: unknown option (known here: {', '.join(sorted(node))})")
        node[parts[-1]] = parse_value(value)
    return check(cfg, source="override")


def parse_value(text: str):
    """A YAML value, except that ``5e-4`` is a number (YAML 1.1 reads it as a string)."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def save_config(cfg: dict, path: Path):
    from .io import atomic_write_text
    atomic_write_text(path, yaml.safe_dump(cfg, sort_keys=False))
