"""``sceneshift compare``: several runs side by side on one split, as the page a researcher reads after a sweep.

Why a page of its own: after a sweep the questions are always the same - which run is better on
the unseen devices, is the gap larger than the test clips' noise, what does each run cost, and
which recipe keys actually differ between them. Each run's ``report.json`` answers one run at a
time; this puts them in one table, one chart, one list of differing keys, and a paired bootstrap
interval of every run against the first (the first run is the reference of a sweep).

Runs are what ``sceneshift evaluate`` scores: a run folder, an ensemble / two-stage system file or
an exported ``.onnx`` file. A run without a report for the split (or without its
``predictions.csv``) is evaluated first, with the same function and to the same folder as
``sceneshift evaluate``, so a later ``compare`` finds it. A report found there is used only when
it describes this model on this dataset: its ``meta.dataset`` is the resolved dataset folder,
its ``meta.split`` the split, it is not adapted, and it is newer than the weights (``model.pt``,
the ``.onnx`` file, the system file and its members' weights). Otherwise the run is evaluated
again - unless the dataset is not at hand (no ``--data``, the run's dataset folder missing), and
then the report is used with a note on the page saying why it may not fit. Intervals come from
the clips' predictions, so they need the same clips on both sides; runs scored on different clip
sets are shown unpaired, with the reason, rather than paired on a subset no report describes.
The interval resamples recording segments (every device copy of a segment together), see
:mod:`.bootstrap`.
"""
from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np

from ..data.domain import device_order
from ..io import atomic_write_text
from .bootstrap import cluster_keys, observed_difference, paired_bootstrap, paired_predictions, read_predictions
from .report import pct

MISSING = "—"


def _kind(path: Path) -> str:
    """'run', 'system' or 'onnx'; anything else is refused with its path before any work starts."""
    from ..networks.ensemble import is_system_file
    from ..networks.onnx_predictor import is_onnx_file
    if path.is_dir():
        if not (path / "config.yaml").is_file():
            raise ValueError(f"{path}: not a run folder (no config.yaml); compare takes run folders, "
                             "ensemble / two-stage system files (.yaml) or exported .onnx files")
        return "run"
    if is_system_file(path):
        return "system"
    if is_onnx_file(path):
        return "onnx"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such run folder or file")
    raise ValueError(f"{path}: not a run folder, a system file (.yaml) or an exported .onnx model")


def _locate(path: Path, kind: str, data, split: str) -> dict:
    """The recipe to diff, the folder ``evaluate`` writes its default report for ``split`` to, the
    resolved dataset folder it is for, and the weights files the report must be newer than.

    The folder is computed the way :func:`evaluate.evaluate` names it, without opening the dataset,
    so runs whose reports exist can be compared where the dataset is not at hand. A system file's
    recipe is its own YAML (its members are runs with recipes of their own).
    """
    from .. import paths
    if kind == "run":
        from ..networks.predictor import load_run_config
        cfg = recipe = load_run_config(path)[0]
        eval_dir, weights = path / "eval", [path / "model.pt"]
    else:
        from ..networks.predictor import load_predictor
        predictor = load_predictor(path, "cpu")
        cfg, eval_dir = predictor.cfg, Path(predictor.eval_dir)
        weights = [path] + _weights(predictor)
        if kind == "system":
            import yaml
            recipe = yaml.safe_load(path.read_text())
        else:
            recipe = cfg
    root = data or cfg["data"].get("root")
    root = Path(root).expanduser().resolve() if root else paths.default_benchmark().resolve()
    return {"recipe": recipe, "report_dir": eval_dir / f"{root.name}-{split}", "dataset": root, "weights": weights}


def _weights(predictor) -> list[Path]:
    """The weights files a system (ensemble, two-stage, their members) or an exported model reads."""
    if getattr(predictor, "members", None) is not None:
        return [w for m in predictor.members for w in _weights(m)]
    if getattr(predictor, "fine", None) is not None:
        return _weights(predictor.fine) + _weights(predictor.coarse)
    if getattr(predictor, "run_dir", None) is not None:
        return [Path(predictor.run_dir) / "model.pt"]
    return [Path(predictor.path)] if getattr(predictor, "path", None) is not None else []


def report_problem(rep_dir: Path, dataset: Path, split: str, weights: list[Path]) -> str | None:
    """Why the report in ``rep_dir`` does not describe these weights on ``split`` of ``dataset``; None when it does."""
    rep = rep_dir / "report.json"
    if not (rep.is_file() and (rep_dir / "predictions.csv").is_file()):
        return f"no report for split {split!r} in {rep_dir}"
    try:
        meta = json.loads(rep.read_text())["meta"]
    except (ValueError, KeyError, TypeError, OSError):
        return f"{rep}: unreadable (no meta section)"
    if meta.get("split") != split:
        return f"{rep} is for split {meta.get('split')!r}, not {split!r}"
    if not meta.get("dataset") or Path(meta["dataset"]).expanduser().resolve() != dataset:
        return f"{rep} is for dataset {meta.get('dataset')}, not {dataset}"
    if meta.get("adapt", "none") != "none":
        return f"{rep} is of a run adapted with {meta['adapt']!r}"
    for made in (rep, rep_dir / "predictions.csv"):      # both must postdate the weights they describe
        newer = [w for w in weights if w.is_file() and w.stat().st_mtime_ns > made.stat().st_mtime_ns]
        if newer:
            return f"{newer[0]} is newer than {made}"
    return None


def flatten(tree, prefix: str = "") -> dict:
    """Nested sections as dotted keys (``train.lr``); lists of sections by index (``augment.0.name``)."""
    if isinstance(tree, dict) and tree:
        items = tree.items()
    elif isinstance(tree, list) and tree and all(isinstance(v, dict) for v in tree):
        items = ((str(i), v) for i, v in enumerate(tree))
    else:
        return {prefix: tree}
    out = {}
    for k, v in items:
        out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def recipe_differences(recipes: list[dict]) -> dict[str, list]:
    """``{dotted key: [value per run]}`` for the keys whose values are not the same in every run."""
    flat = [flatten(r) for r in recipes]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    return {k: [f.get(k, MISSING) for f in flat] for k in keys
            if any(f.get(k, MISSING) != flat[0].get(k, MISSING) for f in flat[1:])}


def _labels(paths: list[Path]) -> list[str]:
    """The shortest path tail that tells the runs apart (``s0``, or ``plain/s0`` when names repeat)."""
    for depth in range(1, max(len(p.parts) for p in paths) + 1):
        labels = ["/".join(p.parts[-depth:]) for p in paths]
        if len(set(labels)) == len(labels):
            return labels
    return [f"{p.name}#{i + 1}" for i, p in enumerate(paths)]


def _pairing(first: dict, other: dict, groups: dict) -> dict:
    """Observed difference and paired cluster bootstrap interval of ``other`` − ``first`` per group, or why not."""
    try:
        files, (a, b), devices = paired_predictions(first["predictions"], other["predictions"])
    except ValueError as e:
        return {"paired": False, "reason": str(e)}
    groups = {**groups, "overall": None}
    ci = paired_bootstrap(a, b, devices, groups, clusters=cluster_keys(files, devices))
    return {"paired": True, "diff": observed_difference(a, b, devices, groups),
            "ci": {g: [float(x) for x in v] for g, v in ci.items()}}


def compare(runs, out: str | Path, data=None, split: str = "evaluate", log=print) -> dict:
    """Compare ``runs`` on ``split``; writes ``compare.html`` and ``compare.md`` to ``out``; returns the summary."""
    given = [Path(r).expanduser() for r in runs]
    if not given:
        raise ValueError("compare: give at least one run folder or system file")
    kinds = [_kind(p) for p in given]                 # every argument checked before any evaluation
    entries, notes = [], []
    for path, kind, label in zip(given, kinds, _labels([p.absolute() for p in given])):
        where = _locate(path, kind, data, split)
        rep_dir = where["report_dir"]
        problem = report_problem(rep_dir, where["dataset"], split, where["weights"])
        found = (rep_dir / "report.json").is_file() and (rep_dir / "predictions.csv").is_file()
        if problem and found and data is None and not where["dataset"].is_dir():
            notes.append(f"{label}: {problem}; not evaluated again, as {where['dataset']} is not at hand "
                         "(give --data): its numbers may not be this model's on this dataset")
            log(f"warning: {notes[-1]}")
        elif problem:
            from .evaluate import evaluate
            log(f"{label}: {problem}; evaluating")
            rep_dir = Path(evaluate(path, data=data, split=split, log=log)["meta"]["out"])
        report = json.loads((rep_dir / "report.json").read_text())
        entries.append({"label": label, "path": str(path), "report_dir": str(rep_dir), "report": report,
                        "recipe": where["recipe"], "predictions": read_predictions(rep_dir / "predictions.csv")})
    first = entries[0]["report"]
    groups = {g: v["devices"] for g, v in first["groups"].items()}
    devices = sorted({d for e in entries for d in e["report"]["devices"]}, key=device_order)
    notes += [f"{e['label']}: {len(e['report']['meta'].get('skipped') or [])} clip(s) skipped in its evaluation "
              f"(listed in {e['report_dir']}/report.json)" for e in entries if e["report"]["meta"].get("skipped")]
    notes += [f"{e['label']}: device groups differ from {entries[0]['label']}'s; intervals use "
              f"{entries[0]['label']}'s groups" for e in entries[1:]
              if {g: v["devices"] for g, v in e["report"]["groups"].items()} != groups]
    pairs = [{"label": e["label"], **_pairing(entries[0], e, groups)} for e in entries[1:]]
    summary = {"split": split, "runs": entries, "groups": list(groups) + ["overall"], "devices": devices,
               "group_of": {d: g for g, ds in groups.items() for d in ds}, "pairs": pairs,
               "recipe_differences": recipe_differences([e["recipe"] for e in entries]), "notes": notes}
    out = Path(out)
    atomic_write_text(out / "compare.md", markdown(summary))
    atomic_write_text(out / "compare.html", page(summary, _chart(summary)))
    for e in entries:          # the clip-level data stays in the files, not in what callers get back
        e.pop("predictions")
    summary["out"] = str(out)
    return summary


def _acc(report: dict, group: str | None = None, device: str | None = None):
    if device is not None:
        return (report["devices"].get(device) or {}).get("accuracy")
    return report["overall"]["accuracy"] if group == "overall" else (report["groups"].get(group) or {}).get("accuracy")


def _value(v) -> str:
    if v == MISSING:
        return v
    return json.dumps(v) if isinstance(v, (list, dict, bool)) or v is None else str(v)


def _interval(p: dict, g: str) -> str:
    if g not in p.get("diff", {}):
        return "-"
    lo, hi = p["ci"][g]
    return f"{p['diff'][g]:+.1f} [{lo:+.1f}, {hi:+.1f}]"


def tables(s: dict) -> list[tuple[str, list[str], list[list[str]], str]]:
    """The page's sections as ``(title, header, rows, note)``: one source for the Markdown and the HTML."""
    runs = s["runs"]
    names = [e["label"] for e in runs]
    out = [("Runs", ["run", "path", "report", "dataset", "clips"],
            [[e["label"], e["path"], e["report_dir"], str(e["report"]["meta"].get("dataset", "-")),
              str(e["report"]["overall"]["n"])] for e in runs], f"split: {s['split']}")]
    rows = [[g] + [pct(_acc(e["report"], g)) for e in runs] for g in s["groups"]]
    rows.append(["macro class accuracy"] + [pct(e["report"]["overall"]["macro_accuracy"]) for e in runs])
    out.append(("Accuracy % per device group", ["group"] + names, rows, ""))
    out.append(("Accuracy % per device", ["device", "group"] + names,
                [[d, s["group_of"].get(d, "-")] + [pct(_acc(e["report"], device=d)) for e in runs]
                 for d in s["devices"]], ""))
    if s["pairs"]:
        out.append((f"Paired difference to {names[0]} (percentage points, "
                    "95 % paired bootstrap interval over recording segments)",
                    ["run"] + s["groups"],
                    [[p["label"]] + ([_interval(p, g) for g in s["groups"]] if p["paired"]
                                     else [p["reason"]] + [""] * (len(s["groups"]) - 1)) for p in s["pairs"]],
                    "resampled: the recording segments (all device copies of a segment together), the same draw "
                    "for both runs; training-seed noise is not included"))
    cost = [e["report"].get("complexity") or {} for e in runs]
    out.append(("Complexity", ["run", "networks", "parameters", "kB as stored", "M MACs per second", "precision"],
                [[e["label"], str(c.get("networks", "-")), f"{c['parameters']:,}" if "parameters" in c else "-",
                  f"{c['parameter_bytes'] / 1024:.0f}" if "parameter_bytes" in c else "-",
                  f"{c['macs_per_second'] / 1e6:.1f}" if c.get("macs_per_second") is not None else "-",
                  str(c.get("precision", "-"))] for e, c in zip(runs, cost)],
                "MACs per second of audio; not counted for precomputed features"))
    diffs = s["recipe_differences"]
    out.append(("Recipe differences", ["key"] + names, [[k] + [_value(v) for v in vals] for k, vals in diffs.items()],
                "keys of the resolved recipes (of a system file: its YAML) whose values differ (— : not set)" if diffs
                else "the recipes are identical"))
    return out


def markdown(s: dict) -> str:
    cell = lambda t: str(t).replace("|", "\\|")       # noqa: E731
    lines = [f"# Comparison on split {s['split']}", "", "Figures: compare.html.", ""]
    lines += [f"- note: {n}" for n in s["notes"]] + ([""] if s["notes"] else [])
    for title, header, rows, note in tables(s):
        lines += [f"## {title}", ""] + ([note, ""] if note else [])
        if rows:
            lines += ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(map(cell, r)) + " |" for r in rows]
            lines.append("")
    return "\n".join(lines)


def page(s: dict, chart_png: bytes) -> str:
    """One HTML file, the chart inlined as a base64 PNG: it can be mailed or archived on its own."""
    e = html.escape
    body = [f"<h1>Comparison on split {e(s['split'])}</h1>"]
    body += [f"<p class=note>{e(n)}</p>" for n in s["notes"]]
    body.append(f'<img alt="accuracy per device and device group" src="data:image/png;base64,'
                f'{base64.b64encode(chart_png).decode()}">')
    for title, header, rows, note in tables(s):
        body.append(f"<h2>{e(title)}</h2>" + (f"<p>{e(note)}</p>" if note else ""))
        if rows:
            body.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>"
                        + "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows)
                        + "</table>")
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}img{max-width:100%}.note{color:#a40}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=utf-8><title>sceneshift compare</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def _chart(s: dict) -> bytes:
    """Grouped bars, one colour per run: accuracy per device (left) and per device group (right)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    runs = s["runs"]
    parts = [("per device", s["devices"], lambda r, d: _acc(r, device=d)),
             ("per device group", s["groups"], lambda r, g: _acc(r, g))]
    fig, axes = plt.subplots(1, 2, figsize=(min(16, 5 + 0.25 * len(runs) * (len(s["devices"]) + len(s["groups"]))), 3.6),
                             gridspec_kw={"width_ratios": [max(len(s["devices"]), 1), max(len(s["groups"]), 1)]})
    width = 0.8 / len(runs)
    for ax, (title, keys, acc) in zip(axes, parts):
        x = np.arange(len(keys))
        for i, e in enumerate(runs):
            vals = [acc(e["report"], k) for k in keys]
            ax.bar(x + (i - (len(runs) - 1) / 2) * width, [100 * v if v is not None else 0 for v in vals],
                   width, label=e["label"], color=f"C{i % 10}")
        ax.set_xticks(x, keys)
        ax.set_ylim(0, 100)
        ax.set_title(f"accuracy % {title}")
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))     # outside: never over a bar
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
