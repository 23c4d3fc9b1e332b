"""The paired cluster bootstrap (evaluation/bootstrap.py) on synthetic clips: clusters, pairing, reduction;
and the benchmark scripts that tabulate seeds (t-intervals) from run folders."""
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sceneshift.evaluation.bootstrap import (cluster_key, cluster_keys, observed_difference, paired_bootstrap,
                                             paired_predictions, seed_t_interval)

DEVICES = ["a", "b", "c", "s1", "s2", "s3", "s4", "s5", "s6"]


def clip_bootstrap(correct_a, correct_b, devices, groups, n, seed):
    """The clip-level paired bootstrap (seed pairs and single clips resampled), as it was before clusters."""
    da, db = np.atleast_2d(correct_a), np.atleast_2d(correct_b)
    rng = np.random.default_rng(seed)
    out = {}
    for g, devs in groups.items():
        cols = np.arange(len(devices)) if devs is None else np.flatnonzero(np.isin(devices, list(devs)))
        diffs = np.empty(n)
        for k in range(n):
            s = rng.integers(0, len(da), len(da))
            c = cols[rng.integers(0, len(cols), len(cols))]
            diffs[k] = 100 * (db[s][:, c].mean() - da[s][:, c].mean())
        out[g] = np.percentile(diffs, [2.5, 97.5])
    return out


def tau_clips(segments: int, seed: int = 0):
    """TAU-style names, every segment through all 9 devices, 4 segments per location. b is right on
    every copy of the segments a gets right plus a third of the others (an effect shared by the copies),
    with a little per-clip noise."""
    rng = np.random.default_rng(seed)
    files = [f"audio/park-lisbon-{s // 4}-{s}-{d}.wav" for s in range(segments) for d in DEVICES]
    devices = np.array([d for _ in range(segments) for d in DEVICES])
    a_seg = rng.random(segments) < 0.5
    gain = rng.random(segments) < 0.33
    a = np.repeat(a_seg, len(DEVICES)).astype(float)
    b = np.repeat(a_seg | gain, len(DEVICES)).astype(float)
    flip = rng.random(len(files)) < 0.03
    b[flip] = 1 - b[flip]
    return files, devices, a, b


def test_cluster_keys():
    assert cluster_key("audio/airport-lisbon-1000-40000-a.wav") == "audio/airport-lisbon-1000-40000"
    assert cluster_key("audio/airport-lisbon-1000-40000-s4.wav", "s4", by="location") == "audio/airport-lisbon-1000"
    assert cluster_key("audio/airport-lisbon-1000-40000-a.wav", by="clip") == "audio/airport-lisbon-1000-40000-a.wav"
    # urban-mobile and `sceneshift devices simulate` names
    assert cluster_key("audio/car_horn-fold10-100648-100648_1_0_0-s1.flac", "s1") == \
        "audio/car_horn-fold10-100648-100648_1_0_0"
    assert cluster_key("audio/park-mypark-3-s4.flac", "s4") == "audio/park-mypark-3"
    assert cluster_key("audio/park-mypark-3-s4.flac", "s4", by="location") == "audio/park-mypark"
    # another layout: a suffix that is not the clip's device stays; no suffix: the clip is its own cluster
    assert cluster_key("street/street-traffic-01.wav", "unknown") == "street/street-traffic-01.wav"
    assert cluster_key("clip.wav") == "clip.wav"
    with pytest.raises(ValueError, match="cluster"):
        cluster_key("x-a.wav", by="scene")
    files = ["audio/x-1-1-a.wav", "audio/x-1-1-b.wav", "audio/x-1-2-a.wav"]
    assert list(cluster_keys(files)) == ["audio/x-1-1", "audio/x-1-1", "audio/x-1-2"]
    assert list(cluster_keys(files, by="location")) == ["audio/x-1"] * 3


def test_shared_effect_widens_the_interval():
    files, devices, a, b = tau_clips(150)
    groups = {"unseen": ["s4", "s5", "s6"], "overall": None}
    d = observed_difference(a, b, devices, groups)
    clip = paired_bootstrap(a, b, devices, groups, clusters=np.arange(len(files)), n=1000)
    seg = paired_bootstrap(a, b, devices, groups, clusters=cluster_keys(files, devices), n=1000)
    loc = paired_bootstrap(a, b, devices, groups, clusters=cluster_keys(files, devices, "location"), n=1000)
    for g in groups:
        width = {k: ci[g][1] - ci[g][0] for k, ci in (("clip", clip), ("segment", seg), ("location", loc))}
        assert seg[g][0] <= d[g] <= seg[g][1] and loc[g][0] <= d[g] <= loc[g][1]
        # about sqrt(copies of a segment in the group) for a fully shared effect: 3 overall, 1.7 for 3 devices
        assert width["segment"] > {"overall": 2.0, "unseen": 1.3}[g] * width["clip"]
        assert width["segment"] < 4 * width["clip"]
        assert width["location"] > width["clip"]
    # with one clip per cluster it is the clip bootstrap, draw for draw
    ref = clip_bootstrap(a, b, devices, groups, 500, 3)
    same = paired_bootstrap(a, b, devices, groups, clusters=files, n=500, seed=3)
    for g in groups:
        np.testing.assert_allclose(same[g], ref[g], atol=1e-9)


def test_seed_pairs_reduce_to_the_clip_bootstrap():
    rng = np.random.default_rng(2)
    a = (rng.random((3, 200)) < 0.5).astype(float)
    b = np.where(rng.random((3, 200)) < 0.2, 1.0, a)
    devices = np.array(["a", "s4"] * 100)
    groups = {"source": ["a"], "overall": None}
    ref = clip_bootstrap(a, b, devices, groups, 300, 0)
    got = paired_bootstrap(a, b, devices, groups, clusters=np.arange(200), n=300)
    for g in groups:
        np.testing.assert_allclose(got[g], ref[g], atol=1e-9)


def test_pairing_is_by_file_name():
    files, devices, a, b = tau_clips(40, seed=1)
    pa = ({f: x for f, x in zip(files, a)}, dict(zip(files, devices)))
    order = np.random.default_rng(0).permutation(len(files))
    pb = ({files[i]: b[i] for i in order}, {files[i]: devices[i] for i in order})   # written in another order
    got_files, (ca, cb), got_dev = paired_predictions(pa, pb)
    assert got_files == sorted(files)
    idx = [files.index(f) for f in got_files]
    assert (ca == a[idx]).all() and (cb == b[idx]).all() and (got_dev == devices[idx]).all()
    in_order = paired_predictions(pa, (dict(zip(files, b)), dict(zip(files, devices))))
    assert in_order[0] == got_files and (in_order[1] == [ca, cb]).all()     # the order rows came in is irrelevant
    groups = {"overall": None}
    ci = paired_bootstrap(ca, cb, got_dev, groups, clusters=cluster_keys(got_files, got_dev), n=300)
    shuffled = paired_bootstrap(ca[::-1], cb[::-1], got_dev[::-1], groups,
                                clusters=cluster_keys(got_files[::-1], got_dev[::-1]), n=2000)
    assert ci["overall"][0] <= observed_difference(ca, cb, got_dev, groups)["overall"] <= ci["overall"][1]
    # another clip order changes only which draw picks which cluster: the same interval up to Monte Carlo noise
    np.testing.assert_allclose(shuffled["overall"], paired_bootstrap(ca, cb, got_dev, groups, n=2000,
                               clusters=cluster_keys(got_files, got_dev))["overall"], atol=2.0)
    # paired by position instead of by name, the pairs would be other clips: the pairing is lost, the interval wider
    wrong = paired_bootstrap(a, b[order], devices, groups, clusters=cluster_keys(files, devices), n=300)
    assert np.ptp(wrong["overall"]) > 1.15 * np.ptp(ci["overall"])
    # different clip sets, or other devices for a clip, are refused
    fewer = ({f: x for f, x in list(pa[0].items())[:-9]}, pa[1])
    with pytest.raises(ValueError, match=r"different clips \(360 vs 351 clips, 351 in common\)"):
        paired_predictions(pa, fewer)
    with pytest.raises(ValueError, match="other devices"):
        paired_predictions(pa, (pa[0], {**pa[1], files[0]: "zz"}))
    with pytest.raises(ValueError, match="same seeds and clips"):
        paired_bootstrap(a, b[:10], devices, groups, clusters=files)
    with pytest.raises(ValueError, match="cluster keys"):
        paired_bootstrap(a, b, devices, groups, clusters=files[:10])


def test_seed_t_interval_is_students_t_over_the_seeds():
    lo, hi = seed_t_interval([1.0, 2.0, 3.0])          # mean 2, sd 1, t(0.975, 2) = 4.3027
    assert lo == pytest.approx(2 - 4.302653 / np.sqrt(3), abs=1e-5)
    assert hi == pytest.approx(2 + 4.302653 / np.sqrt(3), abs=1e-5)
    assert seed_t_interval([5.0, 5.0]) == (5.0, 5.0)
    with pytest.raises(ValueError, match="two or more seeds"):
        seed_t_interval([1.0])


def benchmark_script(name: str):
    """A script of benchmarks/ imported as a module (they are scripts, not a package)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_heldout_choice_reads_the_held_out_device_and_pairs_the_runs(tmp_path, capsys):
    """benchmarks/heldout_choice.py: validation accuracy pooled over the held-out device only, unseen
    accuracy of the evaluation split, paired differences over runs, and each split's choice."""
    mod = benchmark_script("heldout_choice")

    def write(run, folder, devices, unseen=None):
        rep = {"devices": {d: {"accuracy": a, "n": n} for d, (a, n) in devices.items()},
               "groups": {"unseen": {"accuracy": unseen}} if unseen is not None else {}}
        (run / "eval" / folder).mkdir(parents=True)
        (run / "eval" / folder / "report.json").write_text(json.dumps(rep))

    runs = []
    for k, (held, gain) in enumerate((("s1", 0.10), ("s2", 0.20))):
        run = tmp_path / f"r-no_{held}-s{k}"
        run.mkdir()
        (run / "config.yaml").write_text(f"data:\n  exclude_devices: [{held}]\n")
        for i, (suffix, a) in enumerate((("", 0.5), ("-bandwise", 0.5 + gain), ("-bandwise+adabn", 0.5))):
            # the other device (b) must not count: it was trained on
            write(run, f"um-validate{suffix}", {held: (a, 100), "b": (0.9, 300)})
            write(run, f"um-evaluate{suffix}", {}, unseen=0.4 + 0.1 * i)
        runs.append(run)
    mod.main([str(r) for r in runs])
    out = capsys.readouterr().out
    assert "| r-no_s1-s0 | s1 | 50.0 | 60.0 | 50.0 | 40.0 | 50.0 | 60.0 |" in out
    assert "| bandwise − none | +15.0 [-48.5, +78.5] (per run +10.0, +20.0) | +10.0 [+10.0, +10.0]" in out
    assert "Chosen on validation (highest mean on the held-out device): bandwise; best on the unseen devices " \
           "of the evaluation split: bandwise+adabn (n = 2 runs)" in out
    (runs[0] / "config.yaml").write_text("data: {}\n")
    with pytest.raises(SystemExit, match="trained on every device"):
        mod.main([str(r) for r in runs])


def test_deployed_gap_reads_adapted_export_json_before_its_table(tmp_path, capsys):
    """benchmarks/deployed_gap.py: int8 source accuracy minus the adapted int8 files' mean, per run and
    over runs; the JSON of adapted_export.py --json wins over its printed table."""
    mod = benchmark_script("deployed_gap")
    runs = []
    for k, (source, files) in enumerate(((0.70, {"s4": 66.0, "s5": 68.0}), (0.72, {"s4": 70.0, "s5": 70.0}))):
        run = tmp_path / f"kd-s{k}"
        (run / "model.int8-eval" / "um-evaluate").mkdir(parents=True)
        (run / "model.int8-eval" / "um-evaluate" / "report.json").write_text(
            json.dumps({"groups": {"source": {"accuracy": source}}}))
        table = {"devices": {d: {"adapted file int8": v} for d, v in files.items()},
                 "mean": {"adapted file int8": float(np.mean(list(files.values())))}}
        (tmp_path / f"kd-s{k}-adapted.json").write_text(json.dumps(table))
        (tmp_path / f"kd-s{k}-adapted.md").write_text("not a table\n")       # the JSON is read first
        runs.append(str(run))
    mod.main(runs)
    out = capsys.readouterr().out
    assert f"| {runs[0]} | 70.0 | 67.0 (s4 66.0, s5 68.0) | 3.0 |" in out
    assert "| mean ± std (n = 2) | 71.0 ± 1.4 | 68.5 ± 2.1 | 2.5 ± 0.7 |" in out
    assert "| gap below 3 points | | | 1 of 2 runs |" in out          # gaps 3.0 and 2.0: 3.0 is not below 3
    # --versus: the same runs' files of another method, paired (here 1.0 and 3.0 points lower)
    for k, files in enumerate(({"s4": 65.0, "s5": 67.0}, {"s4": 67.0, "s5": 67.0})):
        table = {"devices": {d: {"adapted file int8": v} for d, v in files.items()},
                 "mean": {"adapted file int8": float(np.mean(list(files.values())))}}
        (tmp_path / f"kd-s{k}-adapted-quantile.json").write_text(json.dumps(table))
    mod.main(runs + ["--method", "quantile", "--versus", "bandwise", "--within", "5"])
    out = capsys.readouterr().out
    assert "| gap below 5 points | | | 1 of 2 runs |" in out          # gaps 4.0 and 5.0
    lo, hi = seed_t_interval(np.array([-1.0, -3.0]))
    assert f"| unseen, quantile − bandwise files (paired) | | -2.0 [{lo:+.1f}, {hi:+.1f}] | |" in out


def test_monitor_choice_epochs_ties_and_the_determinism_check(tmp_path, capsys):
    """benchmarks/monitor_choice.py: best epochs by val/acc and val/macro_acc (1-based, first of ties, as
    Lightning's checkpoint keeps), --same-epoch's exit code, and a retrained run whose validation
    accuracies differ from the first run's is refused rather than compared."""
    mod = benchmark_script("monitor_choice")

    def run(name, accs, macros):
        r = tmp_path / name
        (r / "logs").mkdir(parents=True)
        lines = ["epoch,step,train/loss,val/acc,val/loss,val/macro_acc"]
        for e, (a, m) in enumerate(zip(accs, macros)):
            lines += [f"{e},{10 * e},,{a},1.0,{m}", f"{e},{10 * e},0.5,,,"]     # a train row between
        (r / "logs" / "metrics.csv").write_text("\n".join(lines) + "\n")
        return r

    a = run("x-acc-s0", [0.5, 0.6, 0.6, 0.55], [0.4, 0.5, 0.7, 0.7])
    assert mod.best_epochs(mod.validation_trace(a)) == (2, 3)
    assert mod.main(["--same-epoch", str(a)]) == 1
    assert mod.main(["--same-epoch", str(run("y", [0.1, 0.3], [0.2, 0.4]))]) == 0
    run("x-macro-s0", [0.5, 0.6, 0.61, 0.55], [0.4, 0.5, 0.7, 0.7])     # epoch 3 trained differently
    assert mod.main(["--table", str(tmp_path), "x", "--seeds", "0"]) == 1
    assert "not deterministic" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="x-acc-s1.*not a trained run"):                # a seed not trained yet
        mod.main(["--table", str(tmp_path), "x", "--seeds", "1"])


def test_label_free_choice_scores_each_unseen_device_without_labels(tmp_path, capsys):
    """benchmarks/label_free_choice.py: per unseen device, the method whose predictions score best without
    labels; the source device's clips are not scored; accuracy of the picks against the fixed methods and
    the oracle; a missing adapted evaluation names its command."""
    mod = benchmark_script("label_free_choice")

    def clips(device, right, confidence):       # four clips, two per class, `right` of them predicted right
        rows = []
        for i in range(4):
            label = "x" if i % 2 else "y"
            predicted = label if i < right else ("y" if label == "x" else "x")
            px = confidence if predicted == "x" else 1 - confidence
            rows.append(f"audio/{i}-{device}.wav\t{device}\t{label}\t{predicted}\t{px:.2f}\t{1 - px:.2f}")
        return rows

    runs = []
    for k in range(2):
        run = tmp_path / f"r{k}"
        run.mkdir()
        (run / "domain.json").write_text(json.dumps({"groups": {"source": ["a"], "unseen": ["s4", "s5"]}}))
        # none: s4 half right but confident, s5 all right but unsure; bandwise the other way round
        for folder, rows in (("um-evaluate", clips("a", 0, 0.99) + clips("s4", 2, 0.9) + clips("s5", 4, 0.6)),
                             ("um-evaluate-bandwise", clips("a", 4, 0.5) + clips("s4", 4, 0.7) + clips("s5", 2, 0.95))):
            (run / "eval" / folder).mkdir(parents=True)
            (run / "eval" / folder / "predictions.csv").write_text(
                "filename\tdevice\tscene_label\tpredicted\tp_x\tp_y\n" + "\n".join(rows) + "\n")
        runs.append(str(run))
    mod.main(runs + ["--methods", "bandwise"])
    out = capsys.readouterr().out
    assert "| r0 | s4 | 50.0 | 100.0 | none | none | none |" in out
    assert "| r1 | s5 | 100.0 | 50.0 | bandwise | bandwise | bandwise |" in out
    assert "| always none | 75.0 | +0.0 |" in out and "| always bandwise | 75.0 | +0.0 |" in out
    assert "| oracle (labels) | 100.0 | +25.0 |" in out
    assert "| chosen by confidence | 50.0 | -25.0 |" in out
    assert "confidence: picked none 2x, bandwise 2x of 4 devices" in out
    with pytest.raises(SystemExit, match=r"r0 has no \*-evaluate-bandwise\+adabn predictions.*--adapt bandwise\+adabn"):
        mod.main(runs)
    bandwise = Path(runs[1]) / "eval" / "um-evaluate-bandwise" / "predictions.csv"
    bandwise.write_text("\n".join(bandwise.read_text().splitlines()[:-1]) + "\n")     # one s5 clip fewer
    with pytest.raises(SystemExit, match="r1: the evaluations do not hold the same clips of unseen device s5 "
                                         r"\(none 4, bandwise 3\)"):
        mod.main(runs + ["--methods", "bandwise"])
    shutil.copytree(Path(runs[0]) / "eval" / "um-evaluate", Path(runs[0]) / "eval" / "other-evaluate")
    with pytest.raises(SystemExit, match="predictions of several datasets"):
        mod.main(runs + ["--methods", "bandwise"])


def test_paired_seeds_adds_a_row_per_named_device(tmp_path, capsys):
    """benchmarks/paired_seeds.py --devices: one row per device, paired over the seeds; an unknown device is
    an error naming it and the devices the report has."""
    mod = benchmark_script("paired_seeds")
    runs = []
    for k, (s5_a, s5_b) in enumerate(((0.60, 0.62), (0.64, 0.65), (0.58, 0.61))):
        run = tmp_path / f"s{k}"
        for split, s5 in (("um-evaluate", s5_a), ("um-evaluate-quantile", s5_b)):
            (run / "eval" / split).mkdir(parents=True)
            (run / "eval" / split / "report.json").write_text(json.dumps({
                "groups": {"unseen": {"accuracy": s5, "devices": ["s5"]}},
                "overall": {"accuracy": s5, "macro_accuracy": s5},
                "devices": {"a": {"accuracy": 0.7}, "s5": {"accuracy": s5}}}))
        runs.append(str(run))
    mod.main(["--a", *runs, "--b", *runs, "--split", "um-evaluate", "--split-b", "um-evaluate-quantile",
              "--devices", "s5"])
    out = capsys.readouterr().out
    d = np.array([2.0, 1.0, 3.0])
    lo, hi = seed_t_interval(d)
    assert f"| s5 | 60.7 ± 3.1 | 62.7 ± 2.1 | +2.0 [{lo:+.1f}, {hi:+.1f}] | n/a |" in out
    with pytest.raises(SystemExit, match="--devices s9: .* has no device s9 \\(it has a, s5\\)"):
        mod.main(["--a", *runs, "--b", *runs, "--split", "um-evaluate", "--devices", "s9"])
