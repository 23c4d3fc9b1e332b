"""``sceneshift compare``: the page's numbers are the reports' numbers, paired intervals, recipe differences, errors."""
import base64
import json
import os
import re
import shutil
from html.parser import HTMLParser

import numpy as np
import pytest
import yaml

from sceneshift.cli import main
from sceneshift.evaluation.bootstrap import paired_bootstrap
from sceneshift.evaluation.compare import compare, flatten, recipe_differences
from sceneshift.evaluation.report import pct

QUICK = ["train.epochs=1", "train.progress=false", "train.batch_size=32"]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, tiny_benchmark):
    """Run a: trained and evaluated. Run b: another learning rate, trained only (compare evaluates it)."""
    from sceneshift.cli import train_and_evaluate
    from sceneshift.training.run import train
    base = tmp_path_factory.mktemp("compare")
    a = train_and_evaluate("baseline", data=tiny_benchmark, out=base / "a", overrides=QUICK, log=lambda *x: None)
    b = train("baseline", data=tiny_benchmark, out=base / "b", overrides=QUICK + ["train.lr=0.003"],
              log=lambda *x: None)
    return a, b


def md_tables(text: str) -> dict:
    """``{section title: [row cells]}`` of a Markdown file's tables (header row included)."""
    out, title = {}, None
    for line in text.splitlines():
        if line.startswith("## "):
            title = line[3:]
            out[title] = []
        elif line.startswith("|") and not line.startswith("|---"):
            out[title].append([c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return out


class Tables(HTMLParser):
    """Every ``<h2>`` title with the cells of the table that follows it, and every ``src``/``href``."""

    def __init__(self):
        super().__init__()
        self.tables, self.links, self.title, self.text, self.cell = {}, [], None, None, None

    def handle_starttag(self, tag, attrs):
        self.links += [v for k, v in attrs if k in ("src", "href")]
        if tag == "h2":
            self.text = ""
        elif tag == "tr":
            self.tables[self.title].append([])
        elif tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if tag == "h2":
            self.title, self.text = self.text, None
            self.tables[self.title] = []
        elif tag in ("td", "th"):
            self.tables[self.title][-1].append(self.cell)
            self.cell = None

    def handle_data(self, data):
        if self.text is not None:
            self.text += data
        if self.cell is not None:
            self.cell += data


def section(tables: dict, start: str) -> list:
    return tables[start] if start in tables else next(v for k, v in tables.items() if k.startswith(start))


def test_compare_page_numbers_are_the_reports(two_runs, tmp_path):
    a, b = two_runs
    system = tmp_path / "ens.yaml"
    system.write_text(f"ensemble: [{a}, {b}]\n")
    assert not (b / "eval" / "tiny-evaluate").exists()
    out = tmp_path / "cmp"
    assert main(["compare", str(a), str(b), str(system), "--out", str(out)]) == 0
    reports = [json.loads((p / "report.json").read_text())
               for p in (a / "eval" / "tiny-evaluate", b / "eval" / "tiny-evaluate", tmp_path / "ens-eval" / "tiny-evaluate")]
    html = Tables()
    html.feed((out / "compare.html").read_text())
    md = md_tables((out / "compare.md").read_text())
    for tables in (md, html.tables):
        groups = {row[0]: row[1:] for row in section(tables, "Accuracy % per device group")[1:]}
        assert list(groups) == ["source", "seen", "unseen", "overall", "macro class accuracy"]
        for i, rep in enumerate(reports):
            for g in ("source", "seen", "unseen"):
                assert groups[g][i] == pct(rep["groups"][g]["accuracy"])
            assert groups["overall"][i] == pct(rep["overall"]["accuracy"])
            assert groups["macro class accuracy"][i] == pct(rep["overall"]["macro_accuracy"])
        devices = {row[0]: row[2:] for row in section(tables, "Accuracy % per device")[1:] if row[0] != "device"}
        assert set(devices) == set(reports[0]["devices"])
        for i, rep in enumerate(reports):
            for d, v in rep["devices"].items():
                assert devices[d][i] == pct(v["accuracy"])
        cost = section(tables, "Complexity")
        assert cost[0][:3] == ["run", "networks", "parameters"]
        for row, rep in zip(cost[1:], reports):
            c = rep["complexity"]
            assert int(row[1]) == c["networks"] and int(row[2].replace(",", "")) == c["parameters"]
            assert float(row[4]) == pytest.approx(c["macs_per_second"] / 1e6, abs=0.051)
        assert cost[3][1] == "2"                                    # the ensemble of both runs
        paired = {row[0]: row[1:] for row in section(tables, "Paired difference")[1:]}
        assert list(paired) == ["b", "ens.yaml"]
        for row, rep in zip(paired.values(), reports[1:]):
            for g, cell in zip(["source", "seen", "unseen", "overall"], row):
                num = r"([+-]\d+\.\d)"
                d, lo, hi = map(float, re.fullmatch(rf"{num} \[{num}, {num}\]", cell).groups())
                acc = (lambda r: r["overall"]["accuracy"]) if g == "overall" else (lambda r: r["groups"][g]["accuracy"])
                assert d == pytest.approx(100 * (acc(rep) - acc(reports[0])), abs=0.051)
                assert lo <= d <= hi
    # self-contained: the only link is the chart, inlined as a PNG
    assert len(html.links) == 1 and html.links[0].startswith("data:image/png;base64,")
    assert base64.b64decode(html.links[0].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


def test_recipe_differences_and_unpaired_clip_sets(two_runs, tmp_path):
    a, b = two_runs
    c = tmp_path / "c"
    shutil.copytree(b, c)
    if not (c / "eval" / "tiny-evaluate").exists():         # when this test runs alone
        assert main(["evaluate", str(c)]) == 0
    preds = c / "eval" / "tiny-evaluate" / "predictions.csv"
    preds.write_text("".join(preds.read_text().splitlines(True)[:-10]))   # 10 clips fewer
    out = tmp_path / "cmp"
    assert main(["compare", str(a), str(c), "--out", str(out)]) == 0
    for tables in (md_tables((out / "compare.md").read_text()), _html_tables(out / "compare.html")):
        recipe = {row[0]: row[1:] for row in section(tables, "Recipe differences")}
        assert recipe["key"] == ["a", "c"] and recipe["train.lr"] == ["0.001", "0.003"]
        assert set(recipe) == {"key", "train.lr"}                # train.seed, model.name, ... are the same
        row = section(tables, "Paired difference")[1]
        assert row[0] == "c" and "not paired" in row[1] and "360 vs 350" in row[1]


def _paired_rows(out) -> dict:
    return {row[0]: row[1:] for row in section(md_tables((out / "compare.md").read_text()), "Paired difference")[1:]}


def _shuffle_predictions(run, seed=0):
    """Rewrite ``predictions.csv`` with its clip rows in another order (same header, same rows)."""
    preds = run / "eval" / "tiny-evaluate" / "predictions.csv"
    head, *rows = preds.read_text().splitlines(True)
    order = np.random.default_rng(seed).permutation(len(rows))
    assert (order != np.arange(len(rows))).any()
    preds.write_text(head + "".join(rows[i] for i in order))


def test_compare_pairs_clips_by_name(two_runs, tmp_path):
    """The k-th row of one run's predictions is not the k-th of another's: clips are paired by file name."""
    a, b = two_runs
    if not (b / "eval" / "tiny-evaluate").exists():         # when this test runs alone
        assert main(["evaluate", str(b)]) == 0
    b2, a2 = tmp_path / "b2", tmp_path / "a2"
    shutil.copytree(b, b2)
    shutil.copytree(a, a2)
    _shuffle_predictions(b2)
    _shuffle_predictions(a2, seed=1)
    out = tmp_path / "cmp"
    logs = []
    compare([a, b, b2, a2], out, log=logs.append)
    assert not any("evaluating" in line for line in logs)      # the copies' reports are reused as they are
    rows = _paired_rows(out)
    assert rows["b2"] == rows["b"]                             # b's clips in another order: the same result
    assert any(cell != "+0.0 [+0.0, +0.0]" for cell in rows["b"])
    assert rows["a2"] == ["+0.0 [+0.0, +0.0]"] * 4             # a against itself, rows shuffled: no difference at all


def test_compare_evaluates_a_stale_or_foreign_report_again(two_runs, tmp_path, tiny_benchmark):
    """A report for another dataset folder, or older than model.pt, is not this model's: evaluated again."""
    a, _ = two_runs
    c = tmp_path / "c"
    shutil.copytree(a, c)
    rep_path = c / "eval" / "tiny-evaluate" / "report.json"
    real = json.loads(rep_path.read_text())
    assert real["meta"]["dataset"] == str(tiny_benchmark.resolve()) and real["meta"]["split"] == "evaluate"
    fake = json.loads(rep_path.read_text())
    fake["meta"]["dataset"] = str(tmp_path / "elsewhere" / "tiny")           # same folder name, another dataset
    fake["overall"]["accuracy"] = 0.0
    rep_path.write_text(json.dumps(fake))
    os.utime(rep_path, ns=(c.joinpath("model.pt").stat().st_mtime_ns + 10**9,) * 2)   # newer than the weights
    logs = []
    summary = compare([a, c], tmp_path / "cmp", log=logs.append)
    assert any(f"is for dataset {tmp_path / 'elsewhere' / 'tiny'}" in line and "evaluating" in line for line in logs)
    again = json.loads(rep_path.read_text())
    assert again["meta"]["dataset"] == str(tiny_benchmark.resolve())
    assert again["overall"]["accuracy"] == real["overall"]["accuracy"] \
        == summary["runs"][1]["report"]["overall"]["accuracy"]
    assert _paired_rows(tmp_path / "cmp")["c"] == ["+0.0 [+0.0, +0.0]"] * 4
    # the weights changed after the report (model.pt touched): evaluated again
    t = c.joinpath("model.pt").stat().st_mtime_ns
    os.utime(rep_path, ns=(t - 60 * 10**9,) * 2)
    os.utime(c / "model.pt")
    t = rep_path.stat().st_mtime_ns
    logs = []
    compare([a, c], tmp_path / "cmp", log=logs.append)
    assert any("model.pt is newer than" in line and "evaluating" in line for line in logs)
    assert rep_path.stat().st_mtime_ns > t
    logs = []                                                               # now fresh: reused
    compare([a, c], tmp_path / "cmp", log=logs.append)
    assert not any("evaluating" in line for line in logs)
    # an evaluation interrupted between its two files: a fresh report beside older predictions is stale too
    preds = rep_path.parent / "predictions.csv"
    os.utime(preds, ns=(c.joinpath("model.pt").stat().st_mtime_ns - 60 * 10**9,) * 2)
    logs = []
    compare([a, c], tmp_path / "cmp", log=logs.append)
    assert any("model.pt is newer than" in line and "predictions.csv" in line for line in logs)


def test_compare_notes_a_report_it_cannot_check(two_runs, tmp_path):
    """The run's dataset is not at hand (no --data, its folder gone): the report is used, with a note that says why."""
    a, _ = two_runs
    d = tmp_path / "d"
    shutil.copytree(a, d)
    cfg = yaml.safe_load((d / "config.yaml").read_text())
    cfg["data"]["root"] = str(tmp_path / "gone" / "tiny")                 # same folder name, not there
    (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    logs = []
    summary = compare([a, d], tmp_path / "cmp", log=logs.append)
    assert not any("evaluating" in line for line in logs)
    note = next(n for n in summary["notes"] if n.startswith("d: "))
    assert f"not {tmp_path / 'gone' / 'tiny'}" in note and "not at hand" in note
    assert f"note: {note}" in (tmp_path / "cmp" / "compare.md").read_text()
    assert any(line.startswith("warning: d: ") for line in logs)


def _html_tables(path):
    t = Tables()
    t.feed(path.read_text())
    return t.tables


def test_compare_refuses_what_is_not_a_run(two_runs, tmp_path, capsys):
    a, _ = two_runs
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    for bad, words in ((tmp_path / "empty", "not a run folder"), (tmp_path / "nowhere", "no such run"),
                       (tmp_path / "notes.txt", "not a run folder")):
        assert main(["compare", str(a), str(bad), "--out", str(tmp_path / "cmp")]) == 2
        err = capsys.readouterr().err
        assert str(bad) in err and words in err
    assert not (tmp_path / "cmp").exists()


def test_paired_bootstrap_and_flatten():
    rng = np.random.default_rng(1)
    a = (rng.random(400) < 0.5).astype(float)
    b = np.where(rng.random(400) < 0.2, 1.0, a)                # b: a's right answers plus some more
    devices = np.array(["a", "b"] * 200)
    clusters = np.arange(400) // 2                            # pairs of clips, one per device, share a recording
    ci = paired_bootstrap(a, b, devices, {"source": ["a"], "none": ["z"], "overall": None}, clusters=clusters, n=500)
    assert set(ci) == {"source", "overall"}                    # a group without clips is left out
    d = 100 * (b.mean() - a.mean())
    assert ci["overall"][0] <= d <= ci["overall"][1] and ci["overall"][0] > 0
    same = paired_bootstrap(a, a, devices, {"overall": None}, clusters=clusters, n=200)
    assert list(same["overall"]) == [0.0, 0.0]
    assert paired_bootstrap(np.stack([a, a]), np.stack([b, b]), devices, {"overall": None}, clusters=clusters,
                            n=50)["overall"][1] > 0
    with pytest.raises(ValueError):
        paired_bootstrap(a, b[:10], devices, {"overall": None}, clusters=clusters)
    assert flatten({"train": {"lr": 1}, "augment": [{"name": "mixup"}], "devices": ["a", "b"]}) == \
        {"train.lr": 1, "augment.0.name": "mixup", "devices": ["a", "b"]}
    assert recipe_differences([{"x": {"y": 1, "z": 2}}, {"x": {"y": 1, "z": 3}}]) == {"x.z": [2, 3]}
