"""`sceneshift devices simulate`: users' labelled recordings -> a device-shift dataset in the TAU layout.

Source material: a few UrbanSound8K clips and MicIRP responses from the shared folder where it
exists, else synthesised scenes and impulse responses (the tests run either way).
"""
import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sceneshift.augment import simulate as sim
from sceneshift.data.datasets.tau import TauDataset, location_of

SR = 16000
SCENES = ("dog_bark", "siren", "street_music")
FAST = dict(devices=2, unseen=1, segment_seconds=2.0, seen_share=0.3)      # 4-s files -> two 2-s clips each


def _synth_scene(k: int, i: int) -> np.ndarray:
    rng = np.random.default_rng(100 * k + i)
    t = np.arange(4 * SR) / SR
    return (0.05 * rng.standard_normal(len(t)) + 0.2 * np.sin(2 * np.pi * 300 * (k + 1) * t)).astype(np.float32)


def _synth_ir(i: int) -> np.ndarray:
    rng = np.random.default_rng(1000 + i)
    n = int(0.05 * SR)
    return (rng.standard_normal(n) * np.exp(-np.arange(n) / (0.002 * SR * (i + 1)))).astype(np.float32)


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    """``(source folder, impulse-response folder)``: 3 scenes x 3 recordings of 4 s."""
    root = tmp_path_factory.mktemp("material")
    src = root / "src"
    try:
        from sceneshift.paths import shared_dir
        shared = shared_dir() / "data"
        rows = list(csv.DictReader(open(shared / "urbansound8k-16k" / "meta.csv")))
    except (FileNotFoundError, OSError):
        shared = None
    if shared is not None:
        for scene in SCENES:
            picked = [r for r in rows if r["class_name"] == scene and float(r["seconds"]) >= 4.0][:3]
            (src / scene).mkdir(parents=True)
            for r in picked:
                shutil.copy(shared / "urbansound8k-16k" / r["filename"], src / scene)
        return src, shared / "micirp"
    irs = root / "irs"
    irs.mkdir()
    for i in range(6):
        sf.write(irs / f"mic{i}.wav", _synth_ir(i), SR)
    for k, scene in enumerate(SCENES):
        (src / scene).mkdir(parents=True)
        for i in range(3):
            sf.write(src / scene / f"rec{i}.flac", _synth_scene(k, i), SR)
    return src, irs


@pytest.fixture(scope="module")
def simulated(material, tmp_path_factory):
    src, irs = material
    out = tmp_path_factory.mktemp("sim") / "out"
    summary = sim.simulate(src, irs, out, seed=3, log=lambda *a: None, warn=lambda *a: None, **FAST)
    return out, summary


def test_layout_groups_and_split(simulated, material):
    out, summary = simulated
    for f in ("meta.csv", "devices.json", "summary.json", "sources.csv", "evaluation_setup/fold1_train.csv",
              "evaluation_setup/fold1_validate.csv", "evaluation_setup/fold1_evaluate.csv",
              "evaluation_setup/fold1_test.csv"):
        assert (out / f).is_file(), f
    assert not list(out.parent.glob(".out.simulating-*"))          # the temporary folder was renamed
    spec = json.loads((out / "devices.json").read_text())
    assert spec["benchmark_version"] == sim.VERSION and spec["source_device"] == "a" and spec["seed"] == 3
    assert (spec["seen"], spec["unseen"]) == (["s1", "s2"], ["s3"])
    irs = {p.name for p in Path(material[1]).iterdir()}
    assert len({c["ir"] for c in spec["chains"].values()}) == 3 and {c["ir"] for c in spec["chains"].values()} <= irs
    for chain in spec["chains"].values():
        assert {"band", "resonances", "noise", "compressor", "agc", "clipping", "codec", "hum"} <= set(chain)

    tau = TauDataset(out)
    assert tau.groups() == {"source": ["a"], "seen": ["s1", "s2"], "unseen": ["s3"]}
    assert tau.device_irs() == {d: c["ir"] for d, c in spec["chains"].items()}
    assert tau.benchmark_version == sim.VERSION
    split = {s: tau.clips(s) for s in ("train", "validate", "evaluate")}
    assert {c.device for c in split["train"]} == {"a", "s1", "s2"}              # seen devices share training
    assert {c.device for c in split["validate"]} == {"a", "s1", "s2"}
    assert {c.device for c in split["evaluate"]} == {"a", "s1", "s2", "s3"}      # unseen only here
    assert {c.scene for c in split["evaluate"]} == set(SCENES)
    locs = {s: {location_of(c.filename) for c in cl} for s, cl in split.items()}
    assert not locs["train"] & locs["evaluate"] and not locs["train"] & locs["validate"]
    assert not locs["validate"] & locs["evaluate"]
    for cl in split.values():
        for c in cl:
            info = sf.info(out / c.filename)
            assert (info.samplerate, info.channels, round(info.duration, 3)) == (SR, 1, 2.0)
    assert summary["evaluate"]["per_device"] == {d: len(locs["evaluate"]) * 2 for d in ("a", "s1", "s2", "s3")}
    assert summary["skipped"] == []


def test_train_can_load_it(simulated):
    """What `sceneshift train --data OUT` does first: resolve the recipe, make the domain, decode the splits."""
    from sceneshift.data.domain import Domain
    from sceneshift.data.splits import DataSource
    from sceneshift.training.recipe import resolve
    out, _ = simulated
    cfg = resolve("baseline", data=out)
    source = DataSource(cfg["data"], log=lambda *a: None)
    domain = Domain.from_dataset(source.adapter, source.clips("train"))
    assert domain.classes == SCENES and domain.source == "a" and domain.groups["unseen"] == ["s3"]
    source.domain = domain
    train = source.split("train")
    assert train.waves.shape[1] == 4 * SR and (train.labels >= 0).all() and not train.skipped
    assert set(np.unique(train.devices)) == {0, 1, 2}


def test_same_seed_same_bytes_other_seed_differs(simulated, material, tmp_path):
    out, _ = simulated
    src, irs = material
    again, other = tmp_path / "again", tmp_path / "other"
    sim.simulate(src, irs, again, seed=3, log=lambda *a: None, warn=lambda *a: None, **FAST)
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert all((out / f).read_bytes() == (again / f).read_bytes() for f in files)
    sim.simulate(src, irs, other, seed=4, log=lambda *a: None, warn=lambda *a: None, **FAST)
    assert (other / "devices.json").read_bytes() != (out / "devices.json").read_bytes()
    # the split does not depend on the seed, the devices do
    assert (other / "evaluation_setup/fold1_evaluate.csv").read_bytes() == \
        (out / "evaluation_setup/fold1_evaluate.csv").read_bytes()
    name = next(f for f in files if f.name.endswith("-s3.flac"))
    assert (other / name).read_bytes() != (out / name).read_bytes()
    assert (other / name.with_name(name.name.replace("-s3", "-a"))).read_bytes() == \
        (out / name.with_name(name.name.replace("-s3", "-a"))).read_bytes()      # source audio is the original


def test_csv_input_locations_and_skipped_files(material, tmp_path, capsys):
    """A CSV with a location column: files of one location stay in one split; unreadable and missing
    files are skipped, named, listed in summary.json, and the command exits with status 1."""
    from sceneshift.cli import main
    src, irs = material
    (tmp_path / "audio").symlink_to(src)
    rows = [("filename", "scene_label", "location")]
    for i, f in enumerate(sorted(src.rglob("*.*"))):
        rows.append((f"audio/{f.relative_to(src)}", f.parent.name, f"{f.parent.name} place {i % 2}"))
    (tmp_path / "broken.wav").write_bytes(b"RIFF0000WAVEnot audio")
    rows += [("broken.wav", "siren", "x"), ("missing.wav", "siren", "x")]
    (tmp_path / "labels.csv").write_text("".join(",".join(r) + "\n" for r in rows))
    out = tmp_path / "out"
    rc = main(["devices", "simulate", "--source", str(tmp_path / "labels.csv"), "--irs", str(irs),
               "--out", str(out), "--devices", "1", "--unseen", "1", "--segment-seconds", "0",
               "--validate-fraction", "0"])
    err = capsys.readouterr().err
    assert rc == 1 and "skipped broken.wav: unreadable audio" in err and "skipped missing.wav: file not found" in err
    assert {s["file"] for s in json.loads((out / "summary.json").read_text())["skipped"]} == \
        {"broken.wav", "missing.wav"}
    tau = TauDataset(out)
    train, evaluate = tau.clips("train"), tau.clips("evaluate")
    assert not {location_of(c.filename) for c in train} & {location_of(c.filename) for c in evaluate}
    assert not (out / "evaluation_setup/fold1_validate.csv").exists()    # --validate-fraction 0: derived instead
    assert all("place_" in c.filename for c in train + evaluate)
    assert all(abs(sf.info(out / c.filename).duration - 4.0) < 0.01 for c in evaluate)   # whole files: one clip each


def test_bad_input_is_named(material, tmp_path, capsys):
    from sceneshift.cli import main
    src, irs = material
    quiet = dict(log=lambda *a: None, warn=lambda *a: None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="--source .*empty: no audio files"):
        sim.simulate(tmp_path / "empty", irs, tmp_path / "o1", **FAST, **quiet)
    with pytest.raises(ValueError, match="--devices must be 0 or more"):
        sim.simulate(src, irs, tmp_path / "o2", devices=-1, **quiet)
    with pytest.raises(ValueError, match="nothing to simulate"):
        sim.simulate(src, irs, tmp_path / "o3", devices=0, unseen=0, **quiet)
    few = tmp_path / "few"
    few.mkdir()
    for f in sorted(Path(irs).iterdir())[:2]:
        shutil.copy(f, few)
    with pytest.raises(ValueError, match=r"--irs .*few: 2 impulse response\(s\) for 3 devices"):
        sim.simulate(src, few, tmp_path / "o4", **FAST, **quiet)
    (few / "zz_broken.wav").write_bytes(b"not a wav file at all")
    with pytest.raises(ValueError, match="zz_broken.wav: unreadable impulse response"):
        sim.simulate(src, few, tmp_path / "o5", devices=3, unseen=0, seed=0, **quiet)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(FileExistsError, match="--out .*full: exists and is not empty"):
        sim.simulate(src, irs, tmp_path / "full", **FAST, **quiet)
    one = tmp_path / "one"
    for scene in SCENES[:2]:
        (one / scene).mkdir(parents=True)
        shutil.copy(next((src / scene).iterdir()), one / scene)
    with pytest.raises(ValueError, match="single recording location"):
        sim.simulate(one, irs, tmp_path / "o6", **FAST, **quiet)
    (tmp_path / "nolabel.csv").write_text("filename,location\na.wav,x\n")
    with pytest.raises(ValueError, match="no 'scene_label' column"):
        sim.simulate(tmp_path / "nolabel.csv", irs, tmp_path / "o7", **FAST, **quiet)
    assert main(["devices", "simulate", "--source", str(src), "--irs", str(few), "--out", str(tmp_path / "o8"),
                 "--devices", "9"]) == 2
    assert "sceneshift: error: --irs" in capsys.readouterr().err
    assert not any(p.name.startswith(".o") for p in tmp_path.iterdir())      # no temporary folder left behind


def test_chain_draws_and_codec_fallback(monkeypatch, material):
    ir_files = sorted(Path(material[1]).iterdir())
    a = sim.draw_devices(ir_files, 2, 2, seed=5, sample_rate=SR)
    assert sim.draw_devices(ir_files, 2, 3, seed=5, sample_rate=SR)["s2"] == a["s2"]   # more devices: same first ones
    monkeypatch.setattr(sim, "codec_available", lambda kind, rate: False)
    b = sim.draw_devices(ir_files, 2, 2, seed=5, sample_rate=SR)
    for dev in a:       # without the codec the rest of each chain is drawn the same
        assert {k: v for k, v in b[dev].items() if k not in ("codec", "codec_unavailable")} == \
               {k: v for k, v in a[dev].items() if k != "codec"}
        assert b[dev]["codec"] is None and (("codec_unavailable" in b[dev]) == bool(a[dev]["codec"]))
    x = np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.1
    chain = dict(a["s1"], band={"highpass_hz": 100.0, "lowpass_hz": 3000.0, "order": 4}, codec=None, clipping=None)
    y = sim.apply_chain(x, chain, np.r_[1.0, np.zeros(31)], SR, np.random.default_rng(0))
    spec = np.abs(np.fft.rfft(y)) ** 2
    f = np.fft.rfftfreq(len(y), 1 / SR)
    above = spec[f > 4500].mean() / spec[(f > 500) & (f < 2000)].mean()
    assert y.dtype == np.float32 and np.isfinite(y).all() and np.abs(y).max() <= 1.0 and above < 0.1


QUIET = dict(log=lambda *a: None, warn=lambda *a: None)


def test_split_folder_layout_is_refused(material, tmp_path):
    """`<root>/{train,validate,evaluate}/<scene>/...` and `<root>/unlabeled/` (a --data folder tree, see
    datasets/folders.py) would otherwise give scenes named "train", "evaluate" and "unlabeled"."""
    from sceneshift.cli import main
    for folder in ("split/train/dog", "split/evaluate/dog", "mixed/dog", "mixed/unlabeled"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "x.wav").write_bytes(b"")        # not decoded: refused before
    with pytest.raises(ValueError, match=r"split: audio in evaluate/, train/: that is a split --data folder.*own split"
                                         r".*Give <source>/<scene>/<file>.*or a CSV filename,scene_label"):
        sim.find_recordings(tmp_path / "split")
    with pytest.raises(ValueError, match=r"mixed: audio in unlabeled/.*leave unlabeled/ out"):
        sim.find_recordings(tmp_path / "mixed")
    assert main(["devices", "simulate", "--source", str(tmp_path / "split"), "--irs", str(material[1]),
                 "--out", str(tmp_path / "out"), "--devices", "1", "--unseen", "1"]) == 2
    assert not (tmp_path / "out").exists()


def _recs(scene: str, n: int) -> list:
    return [sim.Recording(Path(f"{scene}{i}.wav"), f"{scene}{i}.wav", scene, f"{scene}_loc{i}") for i in range(n)]


def test_split_keeps_a_training_location_per_scene(material, tmp_path):
    def count(parts, scene):
        got = [parts[loc] for loc in parts if loc.startswith(f"{scene}_")]
        return {p: got.count(p) for p in ("train", "validate", "evaluate")}
    parts = sim.split_locations(_recs("two", 2) + _recs("three", 3), 0.0, 0.75, warn=lambda *a: None)
    assert count(parts, "two") == {"train": 1, "validate": 0, "evaluate": 1}      # 0.75 * 2 rounds to 2
    parts = sim.split_locations(_recs("three", 3), 0.5, 0.4, warn=lambda *a: None)
    assert count(parts, "three") == {"train": 1, "validate": 1, "evaluate": 1}    # 1 + 2 asked of 3
    for n in range(2, 8):
        for vf, ef in [(0.0, 0.9), (0.45, 0.5), (0.9, 0.05), (0.3, 0.3)]:
            c = count(sim.split_locations(_recs("s", n), vf, ef, warn=lambda *a: None), "s")
            assert c["train"] >= 1 and c["evaluate"] >= 1, (n, vf, ef, c)
    src, irs = material
    for kw, match in [(dict(evaluate_fraction=1.0), r"--evaluate-fraction must lie in \(0, 1\), got 1.0"),
                      (dict(evaluate_fraction=float("nan")), "--evaluate-fraction must lie in"),
                      (dict(validate_fraction=-0.1), r"--validate-fraction must lie in \[0, 1\), got -0.1"),
                      (dict(validate_fraction=0.5, evaluate_fraction=0.5), "must sum to less than 1")]:
        with pytest.raises(ValueError, match=match):
            sim.split_locations(_recs("s", 3), **{"validate_fraction": 0.15, "evaluate_fraction": 0.25, **kw})
        with pytest.raises(ValueError, match=match):
            sim.simulate(src, irs, tmp_path / "o", **FAST, **QUIET, **kw)


def test_scene_without_a_usable_training_recording_is_an_error(material, tmp_path):
    """The split leaves each scene a training location; skipping its unreadable files must not silently
    leave a scene that is evaluated but never trained on."""
    src, irs = material
    mine = tmp_path / "src"
    shutil.copytree(src, mine)
    recs, _ = sim.find_recordings(mine)
    parts = sim.split_locations(recs, 0.15, 0.25, warn=lambda *a: None)
    trained = [r for r in recs if r.scene == "siren" and parts[r.location] == "train"]
    assert len(trained) == 1
    trained[0].path.write_bytes(b"RIFF0000WAVEnot audio")
    with pytest.raises(ValueError, match=r"no usable training recording of scene\(s\) 'siren'.*skipped from their "
                                         rf"training locations: {trained[0].name}"):
        sim.simulate(mine, irs, tmp_path / "out", **FAST, **QUIET)
    assert not (tmp_path / "out").exists()


def _db(x) -> float:
    return 10 * float(np.log10(np.mean(np.asarray(x, dtype=np.float64) ** 2)))


def test_clips_keep_their_level_relative_to_the_source(material):
    """A simulated device must not set every clip to one level (a device fingerprint, scene loudness
    erased on simulated devices only): a clip's level is its source clip's, times the device's gain."""
    base = sim.draw_devices(sorted(Path(material[1]).iterdir()), 1, 0, seed=5, sample_rate=SR)["s1"]
    loud, quiet = _synth_scene(0, 0)[:2 * SR], 0.02 * _synth_scene(2, 1)[:2 * SR]   # other content, ~34 dB quieter
    impulse = np.r_[1.0, np.zeros(31)]

    def device(**stages):
        chain = dict(base, codec=None, hum=None, gain_db=-4.0, **stages)
        return [sim.apply_chain(x, chain, impulse, SR, np.random.default_rng(0)) for x in (loud, quiet)]

    for x, y in zip((loud, quiet), device(agc=None, compressor=None, clipping=None)):
        assert abs(_db(y) - _db(x) - (-4.0)) < 1.0                      # the device's gain on the clip's level
    y_loud, y_quiet = device(agc=None, compressor={"threshold_dbfs": -30.0, "ratio": 4.0, "attack_ms": 5.0,
                                                   "release_ms": 100.0}, clipping={"drive_db": 6.0, "shape": "soft"})
    assert abs((_db(y_loud) - _db(y_quiet)) - (_db(loud) - _db(quiet))) < 2.0   # processed at one working level
    y_loud, y_quiet = device(agc={"target_dbfs": -20.0, "window_s": 0.5, "max_gain_db": 20.0}, compressor=None,
                             clipping=None)
    assert abs(_db(y_loud) - _db(y_quiet)) < 3.0                        # an AGC equalises: its job, on its devices


def test_frame_envelope_is_the_augmentations_compressor():
    """simulate's numpy frame-gain path runs augment/device.py's torch implementation: with the same gain
    computer (a threshold relative to the loudest frame, no smoothing) both compress alike."""
    import torch
    from sceneshift.augment.device import compress, compression_db
    t = np.arange(SR) / SR
    x = np.sin(2 * np.pi * 300 * t) * np.where(t < 0.5, 0.01, 0.8)
    ours = sim._frame_gain(x, SR, lambda level, dt: compression_db(torch.from_numpy(level), level.max() - 20, 8.0)
                           .numpy())
    theirs = compress(torch.from_numpy(x)[None], torch.tensor([-20.0], dtype=torch.float64),
                      torch.tensor([8.0], dtype=torch.float64), frame=SR // 200, smooth=1)[0].numpy()
    assert np.allclose(ours, theirs) and not np.allclose(ours, x)


def test_stale_temporary_folders_are_removed(material, tmp_path):
    """A run killed before it could clean up leaves `.<out>.simulating-<host>-<pid>`; the next run into the
    same --out removes this host's whose process is gone, and nothing else."""
    import os
    import subprocess
    import sys
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()                                    # a process id that is gone
    out = tmp_path / "out"
    stale = [sim._temporary(out, child.pid),                              # this host's, owner dead
             tmp_path / f".out.simulating-{child.pid}"]                   # named before the host was part of it
    kept = [sim._temporary(out, os.getppid()),                            # a run in progress
            tmp_path / f".out.simulating-otherhost-{child.pid}",           # another machine's: its pids mean nothing
            tmp_path / f".other.simulating-{sim.HOST}-{child.pid}"]        # another --out's
    for folder in stale + kept:
        (folder / "audio").mkdir(parents=True)
        (folder / "audio" / "half.flac").write_bytes(b"")
    said = []
    with pytest.raises(ValueError, match="impulse response"):      # the sweep comes first, even in a failed run
        sim.simulate(material[0], material[1], out, devices=99, log=said.append, warn=lambda *a: None)
    assert not any(f.exists() for f in stale) and all(f.is_dir() for f in kept)
    assert len(said) == 1 and "removed 2 temporary folder(s) left by interrupted runs" in said[0]
