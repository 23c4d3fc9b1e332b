"""The evaluation report: report.json, report.md, a confusion matrix and a per-device bar chart."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import atomic_savefig, atomic_write_json, atomic_write_text

GROUP_COLOURS = {"source": "#1f77b4", "seen": "#ff7f0e", "unseen": "#d62728"}


def pct(x) -> str:
    return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{100 * x:.1f}"


def device_table(report: dict) -> str:
    """Plain-text table of accuracy per device and group, as printed at the end of a run."""
    lines = [f"{'device':<8}{'group':<8}{'n':>6}{'acc %':>8}{'logloss':>9}"]
    group_of = {d: g for g, v in report["groups"].items() for d in v["devices"]}
    for d, v in report["devices"].items():
        lines.append(f"{d:<8}{group_of.get(d, '-'):<8}{v['n']:>6}{pct(v['accuracy']):>8}{v['log_loss']:>9.3f}")
    lines.append("-" * 39)
    for g, v in report["groups"].items():
        lines.append(f"{g:<16}{v['n']:>6}{pct(v['accuracy']):>8}{v['log_loss']:>9.3f}")
    o = report["overall"]
    lines.append(f"{'overall':<16}{o['n']:>6}{pct(o['accuracy']):>8}{o['log_loss']:>9.3f}")
    lines.append(f"{'macro class accuracy':<30}{pct(o['macro_accuracy']):>8}")
    return "\n".join(lines)


def markdown(report: dict) -> str:
    meta = report.get("meta", {})
    out = [f"# Evaluation report: {meta.get('run', '')}", ""]
    for k in ("dataset", "split", "benchmark_version", "adapt", "adapted_devices", "skipped"):
        if k in meta:
            v = meta[k] if k != "skipped" else len(meta[k])
            out.append(f"- {k}: {v}")
    if report.get("complexity"):
        from .complexity import describe
        out.append(f"- complexity: {describe(report['complexity'])}")
    o = report["overall"]
    out += ["", f"Overall accuracy **{pct(o['accuracy'])} %**, macro class accuracy {pct(o['macro_accuracy'])} %, "
            f"log loss {o['log_loss']:.3f} on {o['n']} clips.", "", "## Device groups", "",
            "| group | devices | n | accuracy % | log loss |", "|---|---|---|---|---|"]
    for g, v in report["groups"].items():
        out.append(f"| {g} | {', '.join(v['devices'])} | {v['n']} | {pct(v['accuracy'])} | {v['log_loss']:.3f} |")
    out += ["", "## Devices", "", "| device | n | accuracy % | log loss |", "|---|---|---|---|"]
    for d, v in report["devices"].items():
        out.append(f"| {d} | {v['n']} | {pct(v['accuracy'])} | {v['log_loss']:.3f} |")
    out += ["", "## Classes", "", "| class | n | accuracy % |", "|---|---|---|"]
    for c, v in report["classes"].items():
        out.append(f"| {c} | {v['n']} | {pct(v['accuracy'])} |")
    out += ["", "![confusion matrix](confusion.png)", "", "![accuracy per device](devices.png)", ""]
    return "\n".join(out)


def plot_confusion(report: dict, path: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = report["confusion"]["labels"]
    cm = np.array(report["confusion"]["matrix"], dtype=float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(labels), 1.0 + 0.55 * len(labels)))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if cm[i, j]:
                ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"confusion (rows normalised), accuracy {pct(report['overall']['accuracy'])} %")
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=120)
    plt.close(fig)


def plot_devices(report: dict, path: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    group_of = {d: g for g, v in report["groups"].items() for d in v["devices"]}
    devs = list(report["devices"])
    accs = [100 * report["devices"][d]["accuracy"] for d in devs]
    colours = [GROUP_COLOURS.get(group_of.get(d), "#7f7f7f") for d in devs]
    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * len(devs), 3.2))
    ax.bar(devs, accs, color=colours)
    for i, a in enumerate(accs):
        ax.text(i, a + 1, f"{a:.0f}", ha="center", fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_ylabel("accuracy %")
    ax.axhline(100 * report["overall"]["accuracy"], color="k", lw=0.8, ls="--", label="overall")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for g, c in GROUP_COLOURS.items() if g in report["groups"]]
    ax.legend(handles + ax.get_legend_handles_labels()[0],
              [g for g in GROUP_COLOURS if g in report["groups"]] + ["overall"], fontsize=7, loc="lower right")
    ax.set_title("accuracy per device")
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=120)
    plt.close(fig)


def write_report(report: dict, out_dir: str | Path):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_confusion(report, out_dir / "confusion.png")
    plot_devices(report, out_dir / "devices.png")
    atomic_write_text(out_dir / "report.md", markdown(report))
    atomic_write_json(out_dir / "report.json", report)
