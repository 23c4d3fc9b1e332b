"""Device simulation for users' own labelled recordings (``sceneshift devices simulate``).

Why: a device-robust system is only tested when the evaluation holds devices it never heard.
urban-mobile does that for one corpus; this module does it for any labelled recordings, and
writes the TAU Urban Acoustic Scenes 2020 Mobile layout, so ``sceneshift train --data OUT`` and
``sceneshift evaluate`` read the result like urban-mobile (source / seen / unseen device table).

Input (``--source``), one of:

* a folder of class folders: ``SRC/<scene>/<file>`` (each file is one recording) or
  ``SRC/<scene>/<location>/<file>`` (the files of one subfolder share a recording location).
  Top-level folders named ``train``, ``validate``, ``evaluate`` or ``unlabeled`` are refused: in
  a ``--data`` folder tree (datasets/folders.py) they mean a split made by the user and clips
  without a label, and taking them for scenes would build a dataset of the scenes "train" and
  "evaluate". This command makes its own split by recording location and needs a label per file;
* a CSV file with a header ``filename,scene_label[,location]`` (comma, semicolon or TAB
  separated; file names relative to the CSV's folder). Rows sharing a ``location`` are one
  recording location; without it each file is one.

Split: whole recording locations go to train, validate or evaluate (per scene, in a fixed hash
order of the location, independent of ``--seed``), so segments of one recording never sit on
both sides. Every scene keeps at least one training location (a class a model never trained on
cannot be predicted); a scene left without a usable training recording after unreadable files
were skipped is an error naming it. Recordings are cut into ``segment_seconds`` clips, named as
in TAU: ``audio/<scene>-<location>-<segment>-<device>.flac``.

Devices: ``a`` is the source audio itself. Seen devices ``s1..sN`` also record a share of the
training clips and every validate and evaluate clip; unseen devices ``sN+1..sN+M`` record only
the evaluate clips. Each device draws its own chain from the seed (its own random stream, so
adding unseen devices never changes the others): a microphone impulse response from ``--irs``,
band limit, resonances, hum and a noise floor, compressor, automatic gain control, clipping and
a lossy codec (libsndfile's Opus or MP3, in memory). ``devices.json`` records every draw in the
format :class:`~sceneshift.data.datasets.tau.TauDataset` reads.

Levels: each clip keeps its own level. The chain runs with the clip brought to a nominal
working level (-25 dBFS RMS), so its dBFS settings (noise floor, compressor threshold, AGC
target, clipping) mean the same for a quiet recording and a loud one; its output is then taken
back by the same ratio and multiplied by the device's gain (``gain_db``): a clip's RMS is its
source clip's RMS times the device's gain (less what the compressor and clipping take off).
Normalising every clip to one output level instead would give all clips of a simulated device
the same RMS - a fingerprint of the device, and scene loudness erased on simulated devices only
(the augmentations keep each clip's level for the same reason: augment/device.py's
``keep_level``). The one exception is a device whose chain has an automatic gain control: an AGC
equalises levels, that is what it is for, so on those devices the AGC's output level stands.
Noise floor and hum are set relative to the working level, so on a device they lie a fixed
distance below each clip's level.

The output is built in a temporary folder beside ``--out`` (each file written atomically) and
renamed into place when complete, so an interrupted run never leaves something that looks like
a finished dataset. A run killed before it could clean up leaves that temporary folder
(``.<out>.simulating-<host>-<pid>``); the next run into the same ``--out`` removes those of this
host whose process is gone. Unreadable recordings are skipped and listed (``summary.json``); bad
options and unusable impulse responses are errors naming them.
"""
from __future__ import annotations

import csv
import io
import os
import re
import shutil
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from scipy import signal

from .device import apply_frame_gain, compression_db, frame_levels_db
from ..io import HOST, process_alive, atomic_path, atomic_write_json, atomic_write_text
from ..data.audio import AudioError, load_audio
from ..data.datasets.folders import AUDIO_SUFFIXES, SPLIT_DIRS, UNLABELED
from ..data.datasets.tau import location_order, read_table
from ..data.irs import impulse_response_files, load_impulse_responses

# The device family; bump when a chain is drawn or applied differently. v2: each clip keeps its
# level relative to its source (the device's gain_db replaced v1's level_dbfs, an output level
# every clip of a device was set to), and clipping returns to the level it was driven from.
VERSION = "simulated-v2"
SOURCE = "a"
IR_SECONDS = 0.3
NOMINAL_DBFS = -25.0         # the chain works at one level, so its dBFS settings mean the same for any input
RESERVED_FOLDERS = (*SPLIT_DIRS, UNLABELED)   # a split --data folder tree's names (datasets/folders.py)


@dataclass(frozen=True)
class Recording:
    path: Path
    name: str        # as the user gave it (relative to --source)
    scene: str
    location: str    # the split groups by this key


def _token(text: str) -> str:
    """A file-name part: TAU names split on '-', so only letters, digits and '_' survive."""
    return re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_") or "x"


def find_recordings(source: str | Path) -> tuple[list[Recording], list[tuple[str, str]]]:
    """The labelled recordings of a class-folder tree or a CSV, and ``(file, reason)`` of those left out."""
    source = Path(source).expanduser()
    if source.is_file():
        return _from_csv(source)
    if not source.is_dir():
        raise FileNotFoundError(f"--source {source}: no such folder or CSV file")
    recs, skipped, reserved = [], [], set()
    for f in sorted(p for p in source.rglob("*") if p.is_file()):
        rel = f.relative_to(source)
        if f.suffix.lower() not in AUDIO_SUFFIXES or any(part.startswith(".") for part in rel.parts):
            continue
        if len(rel.parts) < 2:
            skipped.append((str(rel), "not in a class folder (expected <source>/<scene>/<file>)"))
            continue
        if rel.parts[0] in RESERVED_FOLDERS:
            reserved.add(rel.parts[0])
            continue
        location = "/".join(rel.parts[:-1]) if len(rel.parts) > 2 else str(rel)
        recs.append(Recording(f, str(rel), rel.parts[0], location))
    if reserved:
        names = ", ".join(f"{n}/" for n in sorted(reserved))
        raise ValueError(
            f"--source {source}: audio in {names}: that is a split --data folder (<root>/{{{','.join(SPLIT_DIRS)}}}"
            f"/<scene>/<file>, <root>/{UNLABELED}/), but simulate makes its own split (by recording location) and "
            "needs a scene for every file. Give <source>/<scene>/<file> or <source>/<scene>/<location>/<file> "
            f"(move the scene folders out of {', '.join(f'{d}/' for d in SPLIT_DIRS)} into one folder; leave "
            f"{UNLABELED}/ out), or a CSV filename,scene_label[,location] (the way to keep a scene named "
            f"{sorted(reserved)[0]!r})")
    if not recs:
        raise FileNotFoundError(f"--source {source}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in class folders; "
                                "expected <source>/<scene>/<file> or a CSV file filename,scene_label[,location]")
    return recs, skipped


def _from_csv(path: Path) -> tuple[list[Recording], list[tuple[str, str]]]:
    rows = read_table(path)
    if not rows:
        raise ValueError(f"--source {path}: lists no file (a header line only)")
    if "scene_label" not in rows[0]:
        raise ValueError(f"--source {path}: no 'scene_label' column (columns: {', '.join(rows[0])}); "
                         "expected filename,scene_label[,location]")
    recs, skipped, label = [], [], {}
    for r in rows:
        name, scene = r["filename"], r["scene_label"]
        if not scene:
            skipped.append((name, f"no scene_label in {path.name}"))
            continue
        if name in label:
            if label[name] != scene:
                raise ValueError(f"--source {path}: {name} is listed with two labels ({label[name]!r} and {scene!r})")
            continue                    # the same row again: once
        label[name] = scene
        recs.append(Recording((path.parent / name).expanduser(), name, scene, r.get("location") or name))
    return recs, skipped


def split_locations(recs: list[Recording], validate_fraction: float, evaluate_fraction: float,
                    warn=print) -> dict[str, str]:
    """``{location: "train" | "validate" | "evaluate"}``: per scene, the first locations in a fixed hash
    order are evaluated, the next validated; a scene keeps at least one training location, whatever
    the fractions (2 locations at --evaluate-fraction 0.75 are one evaluated and one trained on)."""
    _check_fractions(validate_fraction, evaluate_fraction)
    scene_of: dict[str, str] = {}
    for r in recs:                     # a location shared by scenes counts for its first scene
        scene_of[r.location] = min(scene_of.get(r.location, r.scene), r.scene)
    by_scene: dict[str, list[str]] = {}
    for loc, scene in sorted(scene_of.items()):
        by_scene.setdefault(scene, []).append(loc)
    part, single = {}, set()
    for scene, locs in sorted(by_scene.items()):
        locs = location_order(locs)
        n = len(locs)
        # at least one location each for evaluate and (when asked) validate, never the last training one
        n_eval = min(n - 1, max(1, round(evaluate_fraction * n)))
        n_val = min(n - n_eval - 1, max(1, round(validate_fraction * n))) if validate_fraction > 0 else 0
        if n == 1:
            single.add(scene)
            warn(f"scene {scene!r} has one recording location ({locs[0]}): it is used for training only")
        for i, loc in enumerate(locs):
            part[loc] = "evaluate" if i < n_eval else "validate" if i < n_eval + n_val else "train"
    if "evaluate" not in part.values():
        raise ValueError("--source: every scene has a single recording location; at least two per scene are "
                         "needed to hold one out for evaluation")
    missing = sorted({r.scene for r in recs} - {r.scene for r in recs if part[r.location] == "evaluate"} - single)
    if missing:
        warn(f"scene(s) {', '.join(missing)} have no recording location in evaluate (a location is kept whole, "
             "and one shared by scenes counts for the first of them)")
    return part


# ---------------------------------------------------------------- the device family

@lru_cache(maxsize=None)
def codec_available(kind: str, sample_rate: int) -> bool:
    """Whether this libsndfile can encode ``kind`` at ``sample_rate`` (checked by encoding 0.1 s)."""
    try:
        _codec(np.zeros(sample_rate // 10), kind, 0.5, sample_rate)
        return True
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        return False


def draw_chain(rng: np.random.Generator, sample_rate: int) -> dict:
    """One device. The number and order of draws never depend on a draw's outcome or on what this
    machine supports, so a seed gives the same devices everywhere."""
    phone = bool(rng.random() < 0.5)                 # phones: narrower band, more processing
    u = lambda lo, hi: float(rng.uniform(lo, hi))    # noqa: E731
    chain = {
        "kind": "phone" if phone else "recorder",
        "band": {"highpass_hz": u(150, 450) if phone else u(30, 180),
                 "lowpass_hz": min(u(3200, 6500) if phone else u(5500, 9000), 0.45 * sample_rate),
                 "order": int(rng.integers(2, 5))},
        "resonances": [{"hz": float(np.exp(rng.uniform(np.log(200), np.log(min(7000, 0.4 * sample_rate))))),
                        "gain_db": float(rng.choice([-1, 1]) * rng.uniform(3, 12)), "q": u(0.7, 4.0)}
                       for _ in range(int(rng.integers(2, 6)))],
        "noise": {"dbfs": u(-72, -48), "tilt_db_per_octave": u(-4, 1)},
    }
    hum, compressor, agc, clipping, codec = (rng.random() for _ in range(5))
    harmonics = rng.uniform(0.1, 1.0, 5) / np.arange(1, 6)
    f0, hum_db = float(rng.choice([50.0, 60.0])), u(-62, -44)
    thr, ratio, att, rel = u(-38, -18), u(1.5, 3.0) if not phone else u(3.0, 8.0), u(1, 10), u(40, 250)
    target, window, max_gain = u(-28, -16), u(0.3, 2.0), u(10, 30)
    drive, shape = u(3, 18), str(rng.choice(["hard", "soft"]))
    kind, level = str(rng.choice(["opus", "mp3"])), u(0.5, 0.98)
    chain["hum"] = {"f0_hz": f0, "dbfs": hum_db, "harmonics": [float(h) for h in harmonics]} if hum < 0.3 else None
    chain["compressor"] = {"threshold_dbfs": thr, "ratio": ratio, "attack_ms": att, "release_ms": rel} \
        if compressor < (0.9 if phone else 0.6) else None
    chain["agc"] = {"target_dbfs": target, "window_s": window, "max_gain_db": max_gain} \
        if agc < (0.9 if phone else 0.3) else None
    chain["clipping"] = {"drive_db": drive, "shape": shape} if clipping < 0.3 else None
    chain["codec"] = {"kind": kind, "compression_level": level} if codec < (0.9 if phone else 0.4) else None
    # the device's gain on each clip's own level: up to 9 dB quieter or 3 dB louder than the source (louder
    # copies of a source that uses its full scale would only clip)
    chain["gain_db"] = u(-9, 3)
    if chain["codec"] and not codec_available(kind, sample_rate):
        chain["codec"] = None
        chain["codec_unavailable"] = f"{kind}: not supported by this libsndfile ({sf.__libsndfile_version__}) " \
                                     f"at {sample_rate} Hz; left out"
    return chain


def draw_devices(ir_files: list[Path], n_seen: int, n_unseen: int, seed: int, sample_rate: int) -> dict:
    """``{device: chain}`` for s1..sN (seen) and sN+1..sN+M (unseen), each with its own impulse response."""
    order = np.random.default_rng([seed, 0]).permutation(len(ir_files))
    chains = {}
    for k in range(n_seen + n_unseen):
        chain = {"role": "seen" if k < n_seen else "unseen", "ir": ir_files[order[k]].name}
        chain.update(draw_chain(np.random.default_rng([seed, 1, k]), sample_rate))
        chains[f"s{k + 1}"] = chain
    return chains


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x ** 2))) if len(x) else 0.0


def _level(x: np.ndarray, dbfs: float) -> np.ndarray:
    rms = _rms(x)
    return x * (10 ** (dbfs / 20) / rms) if rms > 1e-10 else x


def _peaking(hz: float, gain_db: float, q: float, sr: int) -> np.ndarray:
    """A resonance as one second-order section (the audio-EQ cookbook's peaking filter)."""
    amp, w = 10 ** (gain_db / 40), 2 * np.pi * hz / sr
    alpha = np.sin(w) / (2 * q)
    b = [1 + alpha * amp, -2 * np.cos(w), 1 - alpha * amp]
    a = [1 + alpha / amp, -2 * np.cos(w), 1 - alpha / amp]
    return np.array(b + a) / a[0]


def _frame_gain(x: np.ndarray, sr: int, gain_db_of, frame_s: float = 0.005) -> np.ndarray:
    """``x`` through a gain computer working on 5-ms frame levels (dB): the frame envelope of
    augment/device.py's ``compress`` (one implementation, in torch), with this module's gain
    computers (a device's attack/release and AGC, at absolute working-level thresholds) in numpy."""
    hop = max(1, int(frame_s * sr))
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))[None]
    g = gain_db_of(frame_levels_db(t, hop)[0].numpy(), hop / sr)
    return apply_frame_gain(t, torch.from_numpy(np.asarray(g, dtype=np.float64))[None], hop)[0].numpy()


def _compressor(x, sr, threshold_dbfs, ratio, attack_ms, release_ms):
    def gain(level, dt):
        want = compression_db(torch.from_numpy(level), threshold_dbfs, ratio).numpy()
        att, rel = np.exp(-dt / (attack_ms / 1000)), np.exp(-dt / (release_ms / 1000))
        out, g = np.empty_like(want), 0.0
        for i, w in enumerate(want):              # gain falls at the attack rate, recovers at the release rate
            c = att if w < g else rel
            g = c * g + (1 - c) * w
            out[i] = g
        return out
    return _frame_gain(x, sr, gain)


def _agc(x, sr, target_dbfs, window_s, max_gain_db):
    def gain(level, dt):
        a = np.exp(-dt / window_s)                # a slow running level, pulled towards the target
        env = signal.lfilter([1 - a], [1, -a], 10 ** (level / 10), zi=[a * 10 ** (level[0] / 10)])[0]
        return np.clip(target_dbfs - 10 * np.log10(np.maximum(env, 1e-12)), -max_gain_db, max_gain_db)
    return _frame_gain(x, sr, gain)


def _codec(x: np.ndarray, kind: str, level: float, sr: int) -> np.ndarray:
    """Encode and decode in memory; the decoded signal is cut or padded to the input's length."""
    fmt, sub = ("OGG", "OPUS") if kind == "opus" else ("MP3", "MPEG_LAYER_III")
    buf = io.BytesIO()
    sf.write(buf, x, sr, format=fmt, subtype=sub, compression_level=level)
    buf.seek(0)
    y, _ = sf.read(buf, dtype="float64", always_2d=True)
    y = y[:len(x), 0]
    return np.pad(y, (0, len(x) - len(y)))


def apply_chain(x: np.ndarray, chain: dict, ir: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Source audio -> the device's recording, in signal order: capsule (impulse response, band,
    resonances), analog front end (hum, noise floor), level processing (compressor, AGC), converter
    (clipping), output level, codec. ``rng`` draws the clip's own noise and hum phase.

    The stages up to clipping run at the working level ``NOMINAL_DBFS``; the output level is the
    clip's own (its RMS, times the device's ``gain_db``), or on a device with an AGC the AGC's."""
    x = np.asarray(x, dtype=np.float64)
    back = _rms(x) / 10 ** (NOMINAL_DBFS / 20)      # the working level stands for the clip's own level
    y = _level(signal.fftconvolve(x, ir)[:len(x)], NOMINAL_DBFS)
    band = chain["band"]
    sos = [signal.butter(band["order"], band["highpass_hz"], "highpass", fs=sr, output="sos"),
           signal.butter(band["order"], band["lowpass_hz"], "lowpass", fs=sr, output="sos")]
    sos += [_peaking(r["hz"], r["gain_db"], r["q"], sr)[None] for r in chain["resonances"]]
    y = _level(signal.sosfilt(np.concatenate(sos), y), NOMINAL_DBFS)
    if chain.get("hum"):
        t, h = np.arange(len(y)) / sr, chain["hum"]
        hum = sum(w * np.sin(2 * np.pi * h["f0_hz"] * (i + 1) * t + rng.uniform(0, 2 * np.pi))
                  for i, w in enumerate(h["harmonics"]))
        y = y + _level(hum, h["dbfs"])
    spec = np.fft.rfft(rng.standard_normal(len(y)))
    f = np.maximum(np.fft.rfftfreq(len(y), 1 / sr), 20.0)
    spec *= (f / 1000) ** (chain["noise"]["tilt_db_per_octave"] / (20 * np.log10(2)))
    y = y + _level(np.fft.irfft(spec, len(y)), chain["noise"]["dbfs"])
    if chain.get("compressor"):
        y = _compressor(y, sr, **chain["compressor"])
    if chain.get("agc"):
        y = _agc(y, sr, **chain["agc"])
    if chain.get("clipping"):        # overdriven so the peaks go drive_db past full scale, then back to its level
        c = chain["clipping"]
        drive = 10 ** (c["drive_db"] / 20) / (np.max(np.abs(y)) + 1e-12)
        y = (np.clip(y * drive, -1, 1) if c["shape"] == "hard" else np.tanh(y * drive)) / drive
    if not chain.get("agc") and back > 1e-10:      # an AGC has set the level (its job); a silent clip: the floor
        y = y * back
    y = np.clip(y * 10 ** (chain["gain_db"] / 20), -1.0, 1.0)
    if chain.get("codec"):
        y = _codec(y, chain["codec"]["kind"], chain["codec"]["compression_level"], sr)
    return np.clip(y, -1.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------- the dataset

def _segments(n: int, sr: int, segment_seconds: float) -> list[tuple[int, int]]:
    """``(start, end)`` of each whole segment; a recording shorter than one segment is one clip."""
    size = int(round(segment_seconds * sr)) if segment_seconds > 0 else n
    if n <= size:
        return [(0, n)]
    return [(i * size, (i + 1) * size) for i in range(n // size)]


def _tsv(rows) -> str:
    buf = io.StringIO()
    csv.writer(buf, delimiter="\t", lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _check_options(n_seen, n_unseen, seed, seen_share, segment_seconds, sample_rate, validate_fraction,
                   evaluate_fraction):
    checks = [(n_seen >= 0, f"--devices must be 0 or more, got {n_seen}"),
              (n_unseen >= 0, f"--unseen must be 0 or more, got {n_unseen}"),
              (n_seen + n_unseen >= 1, "--devices and --unseen are both 0: nothing to simulate"),
              (seed >= 0, f"--seed must be 0 or more, got {seed}"),
              (0 < seen_share <= 1, f"--seen-share must lie in (0, 1], got {seen_share}"),
              (segment_seconds >= 0, f"--segment-seconds must be 0 (whole recordings) or more, got {segment_seconds}"),
              (8000 <= sample_rate <= 48000, f"--sample-rate must lie in 8000..48000 Hz, got {sample_rate}")]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)
    _check_fractions(validate_fraction, evaluate_fraction)


def _check_fractions(validate_fraction, evaluate_fraction):
    """Each fraction names its option (a NaN fails every comparison, so it is refused too)."""
    checks = [(0 <= validate_fraction < 1, f"--validate-fraction must lie in [0, 1), got {validate_fraction}"),
              (0 < evaluate_fraction < 1, f"--evaluate-fraction must lie in (0, 1), got {evaluate_fraction}"),
              (validate_fraction + evaluate_fraction < 1,
               f"--validate-fraction ({validate_fraction}) and --evaluate-fraction ({evaluate_fraction}) must sum "
               "to less than 1 (the rest is trained on)")]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


def _temporary(out: Path, pid: int | None = None) -> Path:
    """The folder a run builds ``out`` in: named by host and process, so a later run can tell whether
    its owner is gone."""
    return out.with_name(f".{out.name}.simulating-{HOST}-{os.getpid() if pid is None else pid}")


def remove_stale_temporaries(out: Path, log=print) -> list[Path]:
    """Remove the temporary folders of runs into ``out`` that were killed before they could clean up.

    Why: a killed run (``kill -9``, a lost session) leaves a hidden, possibly large, half-built folder
    beside ``--out`` that nothing else would ever remove. Like sceneshift.io's file temporaries, only
    this host's are judged (a process id says nothing about another machine's processes, and ``--out``
    may be on a shared disk), and only those whose process is gone; a name without a host
    (``.<out>.simulating-<pid>``, written before the host was part of the name) counts as this host's.
    """
    prefix, removed = f".{out.name}.simulating-", []
    if not out.parent.is_dir():
        return removed
    for tmp in sorted(out.parent.iterdir()):
        if not tmp.name.startswith(prefix) or not tmp.is_dir():
            continue
        host, _, pid = tmp.name[len(prefix):].rpartition("-")
        if host in ("", HOST) and pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
    if removed:
        log(f"removed {len(removed)} temporary folder(s) left by interrupted runs into {out} "
            f"({', '.join(p.name for p in removed)})")
    return removed


def simulate(source, irs, out, devices: int = 5, unseen: int = 3, seed: int = 0, seen_share: float = 0.075,
             segment_seconds: float = 10.0, sample_rate: int = 16000, validate_fraction: float = 0.15,
             evaluate_fraction: float = 0.25, log=print, warn=print) -> dict:
    """Write the simulated dataset into ``out``; return its summary (also in ``out/summary.json``)."""
    _check_options(devices, unseen, seed, seen_share, segment_seconds, sample_rate, validate_fraction,
                   evaluate_fraction)
    out = Path(out).expanduser()
    remove_stale_temporaries(out, log=log)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"--out {out}: exists and is not empty; give a new folder (or remove it)")
    ir_files = impulse_response_files(irs, "--irs")
    if len(ir_files) < devices + unseen:
        raise ValueError(f"--irs {irs}: {len(ir_files)} impulse response(s) for {devices + unseen} devices "
                         f"(--devices {devices} + --unseen {unseen}); each device needs its own")
    recs, skipped = find_recordings(source)
    parts = split_locations(recs, validate_fraction, evaluate_fraction, warn=warn)
    chains = draw_devices(ir_files, devices, unseen, seed, sample_rate)
    bank = {}
    for dev, chain in chains.items():
        f = Path(irs).expanduser() / chain["ir"]
        try:
            bank[dev] = load_impulse_responses(None, sample_rate, IR_SECONDS, files=[f])[0].astype(np.float64)
        except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as e:
            raise ValueError(f"--irs {f}: unreadable impulse response ({str(e).splitlines()[0]})") from None
    seen = [d for d, c in chains.items() if c["role"] == "seen"]
    unseen_devs = [d for d, c in chains.items() if c["role"] == "unseen"]

    # pass 1: decode every recording once to find its segments (and the files to skip)
    clips, counters, tokens, owner = [], {}, {}, {}
    for r in recs:
        try:
            n = len(load_audio(r.path, sample_rate))
        except AudioError as e:
            skipped.append((r.name, e.reason))
            continue
        scene_t = _token(r.scene)
        if (scene_t, r.location) not in tokens:      # a file-name spelling per location, unique per scene
            base = _token(Path(r.name).stem if r.location == r.name else r.location.split("/")[-1])
            loc_t, j = base, 1
            while (scene_t, loc_t) in owner:
                j += 1
                loc_t = f"{base}_{j}"
            tokens[(scene_t, r.location)], owner[(scene_t, loc_t)] = loc_t, r.location
        loc_t = tokens[(scene_t, r.location)]
        for start, end in _segments(n, sample_rate, segment_seconds):
            k = counters[(scene_t, loc_t)] = counters.get((scene_t, loc_t), -1) + 1
            clips.append({"rec": r, "stem": f"{scene_t}-{loc_t}-{k}", "start": start, "end": end,
                          "part": parts[r.location], "devices": [SOURCE]})
    for name, reason in skipped:
        warn(f"skipped {name}: {reason}")
    if not clips:
        raise ValueError(f"--source {source}: no usable recording ({len(skipped)} skipped; "
                         f"e.g. {skipped[0][0]}: {skipped[0][1]})" if skipped else f"--source {source}: no recording")
    train = [c for c in clips if c["part"] == "train"]
    for part in ("train", "evaluate"):
        if not any(c["part"] == part for c in clips):
            raise ValueError(f"--source {source}: no usable {part} recording ({len(skipped)} skipped)")
    untrained = sorted({c["rec"].scene for c in clips} - {c["rec"].scene for c in clips if c["part"] == "train"})
    if untrained:       # split_locations left each scene a training location, but its files may all be skipped
        by_name = {r.name: r for r in recs}
        lost = [n for n, _ in skipped if n in by_name and by_name[n].scene in untrained
                and parts[by_name[n].location] == "train"]
        raise ValueError(
            f"--source {source}: no usable training recording of scene(s) {', '.join(map(repr, untrained))}, so a "
            "model trained on the dataset could never predict them"
            + (f"; skipped from their training locations: {', '.join(lost)}" if lost else
               " (their recordings lie in locations held out for another scene: a shared location goes with the "
               "first scene)")
            + "; repair or replace those recordings, or add recordings of these scenes")
    for dev, chain in chains.items():
        if chain.get("codec_unavailable"):
            warn(f"device {dev}: codec {chain['codec_unavailable']}")
    for k, dev in enumerate(seen):        # each seen device records its own share of the training clips
        pick = np.random.default_rng([seed, 2, k]).choice(len(train), max(1, round(seen_share * len(train))),
                                                          replace=False)
        for i in sorted(pick):
            train[i]["devices"].append(dev)
    for c in clips:
        if c["part"] != "train":
            c["devices"] += seen + (unseen_devs if c["part"] == "evaluate" else [])

    # pass 2: write the audio into a temporary folder, then the lists, then rename it into place
    tmp = _temporary(out)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        lists = {p: [] for p in ("train", "validate", "evaluate")}
        meta, sources = [], []
        by_rec: dict[Recording, list[dict]] = {}
        for c in clips:
            by_rec.setdefault(c["rec"], []).append(c)
        for i, (r, rec_clips) in enumerate(by_rec.items(), 1):
            audio = load_audio(r.path, sample_rate)
            for c in rec_clips:
                x = audio[c["start"]:c["end"]]
                for dev in c["devices"]:
                    name = f"audio/{c['stem']}-{dev}.flac"
                    if dev == SOURCE:
                        y = x
                    else:
                        rng = np.random.default_rng([seed, 3, int(dev[1:]), zlib.crc32(name.encode())])
                        y = apply_chain(x, chains[dev], bank[dev], sample_rate, rng)
                    with atomic_path(tmp / name) as t:
                        sf.write(str(t), y, sample_rate, format="FLAC", subtype="PCM_16")
                    lists[c["part"]].append((name, r.scene))
                    meta.append((name, r.scene, c["stem"].rsplit("-", 1)[0], dev))
                    sources.append((name, r.name, f"{c['start'] / sample_rate:.3f}",
                                    f"{(c['end'] - c['start']) / sample_rate:.3f}"))
            if i % 50 == 0 or i == len(by_rec):
                log(f"  {i}/{len(by_rec)} recordings simulated")
        setup = tmp / "evaluation_setup"
        atomic_write_text(tmp / "meta.csv", _tsv([("filename", "scene_label", "identifier", "source_label")] + meta))
        for part, rows in lists.items():
            if rows:      # no validate list: the TAU reader holds training locations out instead
                atomic_write_text(setup / f"fold1_{part}.csv", _tsv([("filename", "scene_label")] + rows))
        atomic_write_text(setup / "fold1_test.csv", _tsv([("filename",)] + [(n,) for n, _ in lists["evaluate"]]))
        atomic_write_text(tmp / "sources.csv", _tsv([("filename", "source_file", "start_s", "seconds")] + sources))
        atomic_write_json(tmp / "devices.json", {
            "benchmark_version": VERSION, "generator": "sceneshift devices simulate", "seed": seed,
            "sample_rate": sample_rate, "source_device": SOURCE, "seen": seen, "unseen": unseen_devs,
            "seen_share": seen_share, "chains": chains})
        all_devices = [SOURCE] + seen + unseen_devs
        summary = {p: {"clips": len(rows), "per_device": {d: n for d in all_devices
                                                         if (n := sum(x.endswith(f"-{d}.flac") for x, _ in rows))}}
                   for p, rows in lists.items()}
        summary.update(benchmark_version=VERSION, recordings=len(by_rec),
                       skipped=[{"file": f, "reason": why} for f, why in skipped])
        atomic_write_json(tmp / "summary.json", summary)
        if out.is_dir():
            out.rmdir()                   # empty (checked above)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary
