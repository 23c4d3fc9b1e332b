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

from sceneshift.data import simulate as sim
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
