"""Recipes: one YAML file per experiment, typed, resolved against defaults, overridable from the command line.

A recipe has the sections ``name``, ``system``, ``system_options``, ``network``, ``data``,
``frontend``, ``augment``, ``model``, ``head`` and ``train``. Each section has one schema:
``data`` and ``train`` are the pydantic models below; every other section is checked against
the constructor of the component it names (``model.name: fcnn`` -> the options of the ``fcnn``
builder, ``system: disentangle`` -> the disentangle system's ``system_options``), through the
registry of that kind of component. Unknown keys at any level and values of the wrong type fail
with one line naming the key and what is allowed. A value shared by two sections is written
once: the sample rate is ``data.sample_rate`` and reaches the front end and the augmentations
from there.

``base:`` names one recipe or a list of them (file names beside the recipe, or packaged recipe
names), merged left to right, then the recipe itself on top; so a fragment such as the broad-class
``scene_map`` is written once and combined with any model recipe. A component section whose
``name`` changes is replaced, not merged (a ResNet recipe on top of a Kaggle-CNN one does not
inherit ``hidden``). ``key=value`` overrides use dotted keys and YAML values
(``train.epochs=5``, ``augment.0.p=0.5``).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml
from pydantic import Field

from ..augment import check_augmentations
from ..data.datasets import DATASETS
from ..data.splits import resolve_root
from ..frontend import FRONTENDS
from ..heads import HEADS
from ..io import atomic_write_text
from ..models import MODELS
from ..networks import NETWORKS
from ..registry import RecipeError, format_validation_error
from . import SYSTEMS

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
COMPONENTS = {"frontend": FRONTENDS, "model": MODELS, "head": HEADS, "network": NETWORKS}
SECTIONS = ("name", "system", "system_options", "network", "data", "frontend", "augment", "model", "head", "train")


class _Section(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", allow_inf_nan=False)   # train.lr=inf is a typo, not a rate


class DataSection(_Section):
    root: str | None = None                  # dataset folder; default: the built urban-mobile benchmark
    dataset: str = "auto"                    # tau, icme, folders (data/datasets/), or auto-detected
    dataset_options: dict[str, Any] = {}     # options of the dataset adapter (e.g. fold for tau)
    sample_rate: int = Field(16000, ge=1000, le=384000)   # the one sample rate: front end, augmentations
    clip_seconds: float = Field(4.0, gt=0)   # clips are cut or repeated to this length
    train_split: str = "train"
    val_split: str = "validate"              # model selection uses this split only
    test_split: str = "evaluate"             # reported after training, never used for selection
    # devices whose clips are left out of the training split and of checkpoint selection: the run treats them
    # as unseen, so `evaluate --split validate --adapt M` measures an adaptation on a device it never heard
    exclude_devices: list[str] = []
    workers: int | None = Field(2, ge=1)     # processes decoding audio into the cache
    features: str | None = None              # folder of precomputed features instead of audio
    scene_map: dict[str, str] | None = None  # {scene: broad class}: train on broad classes


class TrainSection(_Section):
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(64, ge=1)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(1.0e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    scheduler: Literal["none", "step", "cosine", "warm_restarts"] | None = "step"
    step_epochs: int = Field(10, ge=1)       # step schedule: multiply the rate by gamma every step_epochs
    gamma: float = Field(0.5, gt=0, le=1)
    warmup_epochs: int = Field(0, ge=0)
    restart_epochs: int = Field(10, ge=1)    # warm_restarts: first cycle; restarts at 10, 30, 70, 150, 310 (seed 002)
    restart_mult: int = Field(2, ge=1)
    min_lr: float = Field(1.0e-5, ge=0)
    seed: int = 0
    monitor: str = "val/acc"                 # validation metric that selects the checkpoint; val/macro_acc
                                             # (class-balanced) selects better for band-wise matching (docs/beyond.md)
    eval_batch_size: int = Field(128, ge=1)
    threads: int | None = Field(None, ge=1)
    limit_train_batches: int | float | None = None
    progress: bool = True
    precision: str = "32-true"               # or "bf16-mixed": Lightning's precision plugin (autocast)
    # drop each epoch's incomplete last batch (when there is a full one): MobileFaceNet's BatchNorm on its
    # 1x1 embedding cannot train on a batch of one clip, which 1761 source clips in batches of 32 leave
    drop_last: bool = False
    channels_last: bool = False              # convolutions in channels-last memory format (docs/performance.md)
    cache_features: bool = False             # without waveform augmentation: front end once per split (float16)
    compile: bool = False                    # torch.compile the backbone's training step (docs/performance.md)
    # exponential moving average of the weights (and batch-norm statistics), updated every step with this
    # decay; validation, checkpoints and model.pt use the average (Lightning's WeightAveraging). None: off
    ema_decay: float | None = Field(None, gt=0, lt=1)
    # where and on how many processes (docs/distributed.md); Lightning's Trainer options of the same names
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"
    devices: int | Literal["auto"] | list[int] = 1   # per node: a count, -1 or "auto" (all), or GPU indices
    strategy: Literal["auto", "ddp", "ddp_find_unused_parameters_true"] = "auto"
    num_nodes: int = Field(1, ge=1)
    # loggers besides logs/metrics.csv (always written): tensorboard, wandb (optional extras)
    logger: list[Literal["csv", "tensorboard", "wandb"]] = ["csv"]
    wandb_project: str = "sceneshift"

    @pydantic.field_validator("devices", mode="before")
    @classmethod
    def _devices(cls, v):
        if isinstance(v, bool):
            raise ValueError("expected a device count, -1, 'auto' or a list of device indices")
        if isinstance(v, int) and v < 1 and v != -1:
            raise ValueError("must be a device count >= 1, -1 or 'auto' (every device), or a list of device indices")
        if isinstance(v, list) and (not v or any(not isinstance(i, int) or isinstance(i, bool) or i < 0 for i in v)
                                    or len(set(v)) != len(v)):
            raise ValueError("a list of devices must name distinct device indices >= 0")
        return v

    @pydantic.field_validator("strategy", mode="before")
    @classmethod
    def _strategy(cls, v):
        if isinstance(v, str) and v.startswith(("ddp_spawn", "ddp_fork", "ddp_notebook")):
            raise ValueError(f"{v} is not supported: use ddp (the processes are started as commands, and the "
                             f"launching one keeps the trained state for the summary and the evaluation)")
        return v

    @pydantic.field_validator("logger", mode="before")
    @classmethod
    def _loggers(cls, v):
        names = [v] if isinstance(v, str) else v
        if not isinstance(names, list) or not names:
            raise ValueError("expected csv, tensorboard, wandb or a list of them")
        return names

    @pydantic.field_validator("logger")
    @classmethod
    def _csv_always(cls, v):
        return ["csv"] + [n for n in dict.fromkeys(v) if n != "csv"]     # metrics.csv is always written

    @pydantic.field_validator("precision", mode="before")
    @classmethod
    def _precision(cls, v):
        v = {32: "32-true", "32": "32-true", "bf16": "bf16-mixed"}.get(v, v)
        if v not in ("32-true", "bf16-mixed"):
            raise ValueError("must be 32 (or 32-true) or bf16-mixed")
        return v

    @pydantic.field_validator("limit_train_batches")
    @classmethod
    def _fraction_or_count(cls, v):
        if v is not None and (v <= 0 or (isinstance(v, float) and v > 1)):
            raise ValueError("must be a batch count >= 1 or a fraction in (0, 1]")
        return v


DEFAULTS = {"name": "run", "system": "classifier", "system_options": {}, "data": {},
            "frontend": {"name": "logmel"}, "augment": [], "model": {"name": "kaggle_cnn"}, "head": {"name": "linear"},
            "train": {}}


def merge(base: dict, over: dict) -> dict:
    """``over`` on top of ``base``; a component section whose ``name`` changes is replaced whole."""
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        old = out.get(k)
        if isinstance(v, dict) and isinstance(old, dict) and not (k in COMPONENTS and "name" in v
                                                                   and v["name"] != old.get("name")):
            out[k] = merge(old, v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def find_recipe(name: str | Path, beside: Path | None = None) -> Path:
    for cand in ([beside / str(name)] if beside else []) + [Path(name), RECIPES / f"{name}.yaml", RECIPES / str(name)]:
        if cand.is_file():
            return cand
    known = ", ".join(list_recipes())
    raise FileNotFoundError(f"recipe {name!r} not found (not a file; packaged recipes: {known})")


def list_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPES.glob("*.yaml"))


def read_recipe(name: str | Path, beside: Path | None = None, _seen=()) -> dict:
    """The recipe's own values merged over its bases (not yet checked)."""
    path = find_recipe(name, beside)
    if path.resolve() in _seen:
        raise RecipeError(f"{path}: recipe bases form a cycle")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise RecipeError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: a recipe must be a YAML mapping")
    bases = raw.pop("base", None) or []
    bases = [bases] if isinstance(bases, (str, Path)) else bases
    if not isinstance(bases, list):
        raise RecipeError(f"{path}: base: expected a recipe name or a list of them")
    merged: dict = {}
    for b in bases:
        merged = merge(merged, read_recipe(b, path.parent, _seen + (path.resolve(),)))
    return merge(merged, raw)


def _check_model(section: type[_Section], values, where: str) -> dict:
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise RecipeError(f"{where}: expected a mapping of options, got {values!r}")
    try:
        return section.model_validate(values).model_dump(mode="json")
    except pydantic.ValidationError as e:
        raise RecipeError(format_validation_error(e, where, section.model_fields)) from None


def _check_component(registry, values, where: str) -> dict:
    if not isinstance(values, dict) or "name" not in values:
        raise RecipeError(f"{where}: expected a mapping with a 'name' (one of {', '.join(registry.names())})")
    opts = dict(values)
    name = opts.pop("name")
    registry.get(name, where=f"{where}.name")
    return {"name": name, **registry.check(name, opts, where)}


def check_recipe(raw: dict, source: str = "recipe") -> dict:
    """The complete, checked recipe: every section present, every option typed and defaulted."""
    unknown = [k for k in raw if k not in SECTIONS]
    if unknown:
        raise RecipeError(f"{source}: unknown section {unknown[0]!r} (sections: {', '.join(SECTIONS)})")
    cfg = merge(DEFAULTS, raw)
    if not isinstance(cfg["name"], str) or not cfg["name"]:
        raise RecipeError(f"{source}: name: expected a non-empty string, got {cfg['name']!r}")
    out = {"name": cfg["name"]}
    system = SYSTEMS.get(str(cfg["system"]), where="system")
    out["system"] = cfg["system"]
    out["system_options"] = SYSTEMS.check(cfg["system"], cfg["system_options"], "system_options")
    network = cfg.get("network") or system.network_spec(out["system_options"])
    out["network"] = _check_component(NETWORKS, network, "network")
    out["data"] = _check_model(DataSection, cfg["data"], "data")
    if out["data"]["dataset"] != "auto":
        DATASETS.get(out["data"]["dataset"], where="data.dataset")
        out["data"]["dataset_options"] = DATASETS.check(out["data"]["dataset"], out["data"]["dataset_options"],
                                                        "data.dataset_options")
    for key in ("frontend", "model", "head"):
        out[key] = _check_component(COMPONENTS[key], cfg[key], key)
    out["augment"] = check_augmentations(cfg["augment"], "augment")
    out["train"] = _check_model(TrainSection, cfg["train"], "train")
    if out["train"]["monitor"] not in system.monitors:
        raise RecipeError(f"train.monitor: {out['train']['monitor']!r} is not logged by the {cfg['system']} system "
                          f"(logged: {', '.join(system.monitors)})")
    return out


def parse_value(text: str):
    """A YAML value, except that ``5e-4`` is a number (YAML 1.1 reads it as a string)."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """``key=value`` items applied to an unchecked recipe (a changed component ``name`` resets its section)."""
    raw = copy.deepcopy(raw)
    items = []
    for item in overrides or []:
        if "=" not in item:
            raise RecipeError(f"override {item!r}: expected key=value, e.g. train.epochs=5")
        key, value = item.split("=", 1)
        items.append((key.strip().split("."), parse_value(value), key.strip()))
    items.sort(key=lambda it: it[0][-1] != "name")      # a new component name first, then its options
    for parts, value, key in items:
        if not all(parts):
            raise RecipeError(f"override {key}: empty key part")
        if parts[0] in COMPONENTS and parts[1:] == ["name"] and value != (raw.get(parts[0]) or {}).get("name"):
            raw[parts[0]] = {"name": value}
            continue
        node = raw
        for i, p in enumerate(parts[:-1]):
            nxt = parts[i + 1]
            if isinstance(node, list):
                node = _list_item(node, p, key)
                continue
            if p not in node or node[p] is None:
                node[p] = [] if nxt.isdigit() else {}
            node = node[p]
        last = parts[-1]
        if isinstance(node, list):
            idx = int(last) if last.isdigit() else None
            if idx is None or idx >= len(node):
                raise RecipeError(f"override {key}: {last!r} is not an index of the list ({len(node)} entries)")
            node[idx] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise RecipeError(f"override {key}: {'.'.join(parts[:-1])} is not a section")
    return raw


def _list_item(node: list, part: str, key: str):
    if not part.isdigit() or int(part) >= len(node):
        raise RecipeError(f"override {key}: {part!r} is not an index of the list ({len(node)} entries)")
    return node[int(part)]


def load_recipe(name: str | Path, overrides=()) -> dict:
    """A packaged recipe or YAML file with its bases and ``overrides``, checked."""
    source = str(name)
    raw = apply_overrides(read_recipe(name), list(overrides))
    return check_recipe(raw, source=source)


def resolve(recipe, data=None, overrides=()) -> dict:
    """The checked recipe with ``data.root`` resolved (``--data``, the recipe's root, or urban-mobile)."""
    cfg = load_recipe(recipe, overrides)
    cfg["data"]["root"] = str(resolve_root(data or cfg["data"].get("root")))
    return cfg


def save_config(cfg: dict, path: Path):
    atomic_write_text(path, yaml.safe_dump(cfg, sort_keys=False))
