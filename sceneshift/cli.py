"""The ``sceneshift`` command line.

Exit status (README, "When things go wrong"): 0 all done; 1 done, but some input files were
skipped (each named on stderr and listed in the report); 2 bad usage, input or resources (a
one-line ``sceneshift: error: ...``, no traceback: recipe, data, weights, disk full, non-finite
loss); 3 interrupted (SIGINT/SIGTERM/SIGUSR1; the message gives the ``--resume`` command); 4 an
unexpected error, i.e. a bug in sceneshift (traceback printed).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

EXIT_OK, EXIT_SKIPPED, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_BUG = 0, 1, 2, 3, 4

from importlib.metadata import PackageNotFoundError, version as _dist_version
try:
    __version__ = _dist_version("sceneshift")
except PackageNotFoundError:        # a checkout used through PYTHONPATH, not installed
    __version__ = "unknown (not installed)"


def _common_data(p):
    p.add_argument("--data", help="dataset folder: TAU 2020 Mobile layout, ICME 2024 label files or one folder per class (default: the built urban-mobile)")


def cmd_benchmark(a):
    from .data.benchmark import build_benchmark
    out = build_benchmark(a.out, tiny=a.tiny, max_per_class=a.max_per_class, shared=a.shared, workers=a.workers)
    print(out)


def train_and_evaluate(recipe, data=None, out=None, overrides=(), resume=False, log=print) -> Path:
    """Train a recipe, then score the run on the recipe's test split and print the device table."""
    return _train_evaluate(recipe, data, out, overrides, resume, log)[0]


def _train_evaluate(recipe, data=None, out=None, overrides=(), resume=False, log=print) -> tuple[Path, dict]:
    from .evaluation.evaluate import evaluate
    from .evaluation.report import device_table
    from .training.loggers import log_report
    from .training.run import train
    run_dir = train(recipe, data=data, out=out, overrides=overrides, resume=resume, log=log)
    import yaml
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    report = evaluate(run_dir, split=cfg["data"]["test_split"], log=log)
    log_report(run_dir, report)             # TensorBoard / W&B when the recipe names them
    log(device_table(report))
    log(f"report: {report['meta']['out']}/report.md")
    return run_dir, report


def _skipped_status(run_dir: Path, report: dict) -> int:
    """1 when training or the evaluation just written skipped files (they are listed there), else 0."""
    summary = run_dir / "summary.json"
    n = len(json.loads(summary.read_text()).get("skipped") or []) if summary.is_file() else 0
    n += len(report["meta"].get("skipped") or [])
    if n:
        print(f"sceneshift: {n} file(s) skipped; listed in {summary} and the report (meta.skipped)", file=sys.stderr)
    return EXIT_SKIPPED if n else EXIT_OK


def cmd_semi(a):
    """Seed 001's pipeline: each stage is a run folder under --out; finished stages are kept (resumable)."""
    import yaml
    from .training.recipe import resolve
    from .training.semi import semi_stages
    cfg = resolve(a.recipe, a.data, a.overrides)
    t = cfg["train"]
    if t.get("devices") not in (1, None, [0]) or (t.get("num_nodes") or 1) > 1:
        raise ValueError("train.devices / train.num_nodes: `sceneshift semi` runs its stages in one process "
                         "(each stage folder is managed here); train a stage alone with `sceneshift train` for DDP")
    if cfg["system"] != "semi_supervised":
        raise ValueError(f"{a.recipe}: `sceneshift semi` runs a recipe whose system is semi_supervised "
                         f"(this one: {cfg['system']})")
    out = Path(a.out)
    for name, over in semi_stages(cfg["system_options"], out):
        stage_dir = out / name
        if list((stage_dir / "eval").glob("*/report.json")):
            print(f"{name}: done, kept")
            continue
        if (stage_dir / "summary.json").is_file():       # trained, but its evaluation did not finish
            print(f"{name}: trained; evaluating")
            from .evaluation.evaluate import evaluate
            evaluate(stage_dir, split=cfg["data"]["test_split"])
            continue
        print(f"{name}: training")
        resume = (stage_dir / "checkpoints" / "last.ckpt").is_file()
        if (stage_dir / "config.yaml").is_file() and not resume:   # failed before its first checkpoint
            import shutil
            shutil.rmtree(stage_dir)
        train_and_evaluate(a.recipe, data=a.data, out=stage_dir, overrides=[] if resume else list(a.overrides) + over,
                           resume=resume)
    stages = [n for n, _ in semi_stages(cfg["system_options"], out)]
    rows = []
    for n in stages:
        rep = out / n / "eval"
        reports = sorted(rep.glob("*/report.json")) if rep.is_dir() else []
        if not reports:
            rows.append(f"{n:<16}no report")
        else:
            r = json.loads(reports[0].read_text())
            rows.append(f"{n:<16}" + "".join(f"{g} {100 * v['accuracy']:.1f}  " for g, v in r["groups"].items())
                        + f"overall {100 * r['overall']['accuracy']:.1f}  macro {100 * r['overall']['macro_accuracy']:.1f}")
    print("\n".join(rows))
    (out / "stages.txt").write_text("\n".join(rows) + "\n")


def cmd_train(a):
    return _skipped_status(*_train_evaluate(a.recipe, a.data, a.out, a.overrides, a.resume))


def cmd_run(a):
    from .data.benchmark import build_benchmark, is_built
    from .paths import default_benchmark
    from .training.run import launch_info
    first, launched = launch_info()
    if not a.data and launched > 1:     # srun/torchrun: every task runs this command, none could wait for a build
        if not is_built(default_benchmark()):
            raise ValueError(f"sceneshift run on {launched} processes (srun/torchrun) does not build the benchmark: "
                             f"build it once before, in one process (`sceneshift benchmark build`)")
    elif not a.data and first:          # Lightning's launcher starts the others later, from this command line
        build_benchmark(shared=a.shared)        # builds it if missing or of another version than the builder's
    return _skipped_status(*_train_evaluate(a.recipe, a.data, a.out, a.overrides))


def cmd_evaluate(a):
    from .evaluation.evaluate import evaluate
    from .evaluation.report import device_table
    report = evaluate(a.run, data=a.data, split=a.split, groups=a.groups, out=a.out, adapt=a.adapt,
                      adapt_devices="all" if a.adapt_all else "untrained")
    print(device_table(report))
    print(f"report: {report['meta']['out']}/report.md")
    skipped = report["meta"].get("skipped") or []
    if skipped:
        print(f"sceneshift: {len(skipped)} file(s) skipped; listed in {report['meta']['out']}/report.json "
              f"(meta.skipped)", file=sys.stderr)
    return EXIT_SKIPPED if skipped else EXIT_OK


def cmd_predict(a):
    from .evaluation.predict import format_result, predict_files
    results, skipped = predict_files(a.run, a.files)
    if a.json:
        print(json.dumps({"results": results, "skipped": [{"file": f, "error": r} for f, r in skipped]}, indent=2))
    else:
        for r in results:
            print(format_result(r, a.top))
    for f, reason in skipped:
        print(f"skipped {f}: {reason}", file=sys.stderr)
    return EXIT_SKIPPED if skipped else EXIT_OK


def cmd_table1(a):
    from .evaluation.table1 import markdown, table1
    adapted = [(method, run) for method, run in (a.adapt or [])]
    table = table1(a.runs, adapted, data=a.data, split=a.split, out=a.out)
    print(markdown(table["rows"]))
    if a.out:
        print(f"written: {Path(a.out) / 'table1.json'}, {Path(a.out) / 'table1.md'}")


def cmd_compare(a):
    from .evaluation.compare import compare
    compare(a.runs, data=a.data, split=a.split, out=a.out)
    print(f"written: {Path(a.out) / 'compare.html'}, {Path(a.out) / 'compare.md'}")


def cmd_features(a):
    from .frontend.extract import extract_features
    from .training.recipe import resolve
    cfg = resolve(a.recipe, a.data, a.overrides)
    splits = [s.strip() for s in a.splits.split(",") if s.strip()]
    print(extract_features(cfg["data"], cfg["frontend"], a.out, splits=splits))


def cmd_explain(a):
    from .evaluation.cam import explain
    explain(a.run, a.file, out=a.out, class_name=a.class_name)


def cmd_augment(a):
    from .augment.offline import generate
    from .training.recipe import resolve
    cfg = resolve(a.recipe, a.data, a.overrides)
    print(generate(cfg, a.out, copies=a.copies, devices=a.devices, seed=a.seed))


def cmd_export(a):
    from .export.onnx import export_onnx
    r = export_onnx(a.run, out=a.out, int8=a.int8, frontend=a.frontend, calibration_clips=a.calibration_clips,
                    data=a.data, qat=a.qat, qat_lr=a.qat_lr, adapt=a.adapt, adapt_to=a.adapt_to)
    length = "dynamic batch and length" if r["dynamic_length"] else "dynamic batch, the run's clip length"
    print(f"written {r['file']} ({r['bytes'] / 1024:.0f} kB; {r['input']} in, logits out; {length}); "
          f"fp32 ONNX vs PyTorch: largest logit difference {r['fp32_max_difference']:.1e}")
    if a.qat is not None:
        print(f"QAT: {r['qat_epochs']} epoch(s) at learning rate {r['qat_lr']:g}, selected epoch {r['qat_selected_epoch']} on validation accuracy "
              f"(simulated int8, per epoch from 0 = untuned: "
              f"{', '.join(f'{100 * v:.1f}' for v in r['qat_val_acc'])} %); fp32 weights in {r['qat_weights']}")
    if a.adapt:
        ad = r["adapted"]
        for f, reason in ad["skipped"]:
            print(f"skipped {f}: {reason}", file=sys.stderr)
        skipped = f", {len(ad['skipped'])} file(s) skipped" if ad["skipped"] else ""
        print(f"adapted ({ad['method']}) to the device of the given recordings ({ad['windows']} windows{skipped}): "
              "use this file for that device")
    if a.int8 or a.qat is not None:
        where = (("training clips", "validation clips") if not a.adapt else ("windows of one recording", "the same")
                 if r["compared_on_calibration"] else ("windows of half the recordings", "windows of the others"))
        print(f"int8 (calibrated on {r['calibration_clips']} {where[0]}) vs fp32 on {r['compared_clips']} "
              f"{where[1]}: same decision on "
              f"{100 * r['int8_agreement']:.1f} %, largest logit difference {r['int8_max_logit_difference']:.2f}; "
              f"score it with `sceneshift evaluate {r['file']}`")
    return EXIT_SKIPPED if a.adapt and r["adapted"]["skipped"] else EXIT_OK


def cmd_list(a):
    if a.what == "models" and (a.macs or a.recipe):
        from .evaluation.complexity import cost_table, format_table
        print(format_table(cost_table(a.recipe, a.overrides)))
    elif a.what == "models":
        from .models import MODELS
        print("\n".join(MODELS.names()))
    else:
        from .training.recipe import list_recipes
        print("\n".join(list_recipes()))


def cmd_devices(a):
    from .augment.simulate import simulate
    s = simulate(a.source, a.irs, a.out, devices=a.devices, unseen=a.unseen, seed=a.seed, seen_share=a.seen_share,
                 segment_seconds=a.segment_seconds, sample_rate=a.sample_rate,
                 validate_fraction=a.validate_fraction, evaluate_fraction=a.evaluate_fraction,
                 warn=lambda m: print(f"sceneshift: warning: {m}", file=sys.stderr))
    for part in ("train", "validate", "evaluate"):
        print(f"{part:<9} {s[part]['clips']:>6} clips  " + "  ".join(f"{d} {n}" for d, n in s[part]["per_device"].items()))
    print(f"written {a.out} ({s['benchmark_version']}, seed {a.seed}; devices in devices.json); "
          f"train on it with `sceneshift train RECIPE --data {a.out}`")
    if s["skipped"]:
        print(f"sceneshift: {len(s['skipped'])} file(s) skipped; listed in {Path(a.out) / 'summary.json'} (skipped)",
              file=sys.stderr)
    return EXIT_SKIPPED if s["skipped"] else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="sceneshift", description="Acoustic scene classification under device shift.")
    ap.add_argument("--version", action="version", version=f"sceneshift {__version__}")
    ap.add_argument("--data-dir", help="where benchmarks and caches live (env SCENESHIFT_DATA; default ~/.cache/sceneshift)")
    ap.add_argument("--shared", help="folder with data/ and benchmarks/ (env SCENESHIFT_SHARED; default ../shared)")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="build urban-mobile if missing, train a recipe, evaluate, print the device table")
    p.add_argument("recipe", nargs="?", default="baseline")
    _common_data(p)
    p.add_argument("--out", help="run folder (default runs/<name>-<time>)")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("benchmark", help="build the urban-mobile benchmark")
    bsub = p.add_subparsers(dest="action", required=True)
    b = bsub.add_parser("build", help="build urban-mobile (TAU 2020 Mobile layout) from the shared material")
    b.add_argument("--out", help="target folder (default $SCENESHIFT_DATA/urban-mobile)")
    b.add_argument("--tiny", action="store_true", help="a tiny copy (4 clips per class and fold) for tests")
    b.add_argument("--max-per-class", type=int, help="clips per class and fold")
    b.add_argument("--workers", type=int)
    b.set_defaults(fn=cmd_benchmark)

    p = sub.add_parser("train", help="train a recipe into a run folder")
    p.add_argument("recipe", nargs="?", help="YAML recipe file or packaged recipe name (see `sceneshift list recipes`)")
    _common_data(p)
    p.add_argument("--out", help="run folder (default runs/<name>-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="recipe overrides, e.g. train.epochs=5")
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("semi", help="seed 001's semi-supervised pipeline: pre-train, fine-tune, pseudo-label; one run folder per stage")
    p.add_argument("recipe", nargs="?", default="seed001")
    p.add_argument("--out", required=True, help="folder of the stage runs (finished stages are kept: rerun to resume)")
    _common_data(p)
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.set_defaults(fn=cmd_semi)

    p = sub.add_parser("evaluate", help="score a run per device and device group; writes report.json/.md and plots")
    p.add_argument("run", help="run folder")
    _common_data(p)
    p.add_argument("--split", default="evaluate", help="train, validate, evaluate (default) or test")
    p.add_argument("--groups", help="device groups, e.g. 'source=a;seen=b,c,s1,s2,s3;unseen=s4,s5,s6' "
                                    "(default: devices.json, else the TAU 2020 grouping)")
    p.add_argument("--adapt", help="unsupervised adaptation fitted on the evaluated split: bandwise, quantile, adabn or "
                                   "bandwise+adabn; "
                                   "by default only the devices the run never trained on are adapted")
    p.add_argument("--adapt-all", action="store_true", help="with --adapt: adapt every device but the source")
    p.add_argument("--out", help="report folder (default RUN/eval/<dataset>-<split>)")
    p.set_defaults(fn=cmd_evaluate)

    p = sub.add_parser("predict", help="classify audio files of any length, sample rate and channel count")
    p.add_argument("run", help="run folder")
    p.add_argument("files", nargs="+")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--top", type=int, default=3, help="classes shown per file")
    p.set_defaults(fn=cmd_predict)

    p = sub.add_parser("table1", help="seed 000's Table 1 (scene/device accuracy on source/target, mask +/-)")
    p.add_argument("runs", nargs="*", help="run folders (C0 ... C3M, or any run)")
    _common_data(p)
    p.add_argument("--adapt", nargs=2, action="append", metavar=("METHOD", "RUN"),
                   help="also score RUN with an adaptation, e.g. --adapt bandwise runs/c0 (repeatable)")
    p.add_argument("--split", default="evaluate")
    p.add_argument("--out", help="folder for table1.json and table1.md")
    p.set_defaults(fn=cmd_table1)

    p = sub.add_parser("compare", help="runs side by side: accuracy per device and group, paired bootstrap "
                                       "intervals against the first run, complexity, recipe differences")
    p.add_argument("runs", nargs="+", metavar="RUN_OR_SYSTEM", help="run folders, system files or .onnx files; "
                                                                    "the first is the reference")
    _common_data(p)
    p.add_argument("--split", default="evaluate", help="runs without a report for it are evaluated first")
    p.add_argument("--out", required=True, help="folder for compare.html and compare.md")
    p.set_defaults(fn=cmd_compare)

    p = sub.add_parser("features", help="precomputed features (folder of per-clip .npy arrays)")
    fsub = p.add_subparsers(dest="action", required=True)
    f = fsub.add_parser("extract", help="write a recipe's front-end features of a dataset as a feature folder")
    f.add_argument("recipe", nargs="?", default="baseline", help="recipe whose data and frontend sections are used")
    _common_data(f)
    f.add_argument("--out", required=True, help="feature folder to write")
    f.add_argument("--splits", default="train,validate,evaluate")
    f.add_argument("overrides", nargs="*", metavar="key=value")
    f.set_defaults(fn=cmd_features)

    p = sub.add_parser("explain", help="figure: log-mel spectrogram and class activation map(s) of one file")
    p.add_argument("run", help="run folder or system file (ensemble / two-stage YAML)")
    p.add_argument("file", help="audio file")
    p.add_argument("--out", help="figure path (default ./<file stem>.cam.png)")
    p.add_argument("--class", dest="class_name", help="draw the map of this class instead of the predicted one")
    p.set_defaults(fn=cmd_explain)

    p = sub.add_parser("augment", help="offline augmentation (extra training data)")
    asub = p.add_subparsers(dest="action", required=True)
    g = asub.add_parser("generate", help="write a recipe's waveform augmentations of the training clips as a new "
                                         "TAU-layout dataset (generated clips appended to fold1_train.csv)")
    g.add_argument("recipe", help="recipe whose augment list (waveform entries) is applied")
    _common_data(g)
    g.add_argument("--out", required=True, help="new dataset folder")
    g.add_argument("--copies", type=int, default=1, help="augmented copies per clip and augmentation")
    g.add_argument("--devices", default="source", help="'source' (default, as the paper), 'all' or a list: a,b")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("overrides", nargs="*", metavar="key=value")
    g.set_defaults(fn=cmd_augment)

    p = sub.add_parser("export", help="export a run as an ONNX model for onnxruntime (fp32 or int8)")
    p.add_argument("run", help="run folder")
    p.add_argument("--format", choices=["onnx"], default="onnx")
    p.add_argument("--int8", action="store_true", help="post-training static int8 quantisation (calibrated on training clips)")
    p.add_argument("--frontend", choices=["included", "excluded"], default="included",
                   help="included: waveform in (default); excluded: log-mel in, faster in onnxruntime")
    p.add_argument("--calibration-clips", type=int, default=256, help="--int8: training clips that set activation ranges")
    p.add_argument("--qat", type=int, metavar="EPOCHS", help="implies --int8: quantisation-aware fine-tuning for EPOCHS "
                   "epochs first (the run's recipe and training split, selected on validation accuracy; weights "
                   "in RUN/model-qat.pt, model.pt untouched); default output RUN/model.qat.int8.onnx")
    p.add_argument("--qat-lr", type=float, metavar="LR", help="with --qat: the fine-tuning's learning rate, cosine-decayed "
                   "over its epochs (default: the recipe's / 10)")
    p.add_argument("--adapt", help="with --adapt-to: fit an unsupervised adaptation (bandwise, quantile, adabn, bandwise+adabn) to one device's "
                   "recordings and build it into the file (a model for that device)")
    p.add_argument("--adapt-to", nargs="+", metavar="PATH", help="unlabeled recordings of that device: audio files "
                   "or folders (any length, rate, channels); also the int8 calibration clips")
    p.add_argument("--out", help="output file (default RUN/model[.adapted][.int8].onnx)")
    _common_data(p)
    p.set_defaults(fn=cmd_export)

    p = sub.add_parser("list", help="list packaged recipes or registered models")
    p.add_argument("what", choices=["recipes", "models"])
    p.add_argument("--macs", action="store_true", help="models: parameters and multiply-accumulates per clip")
    p.add_argument("--recipe", action="append", help="models: cost of this recipe's classifier (repeatable)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="--recipe: overrides (model.norm=batch ...)")
    p.set_defaults(fn=cmd_list)

    p = sub.add_parser("devices", help="device simulation for your own labelled recordings")
    dsub = p.add_subparsers(dest="action", required=True)
    d = dsub.add_parser("simulate", help="turn labelled recordings into a device-shift dataset in the TAU 2020 "
                                         "Mobile layout (source a, seen and unseen simulated devices; docs/simulate.md)")
    d.add_argument("--source", required=True, help="folder of class folders (SRC/<scene>/[<location>/]<file>) or a "
                                                   "CSV file filename,scene_label[,location]")
    d.add_argument("--irs", required=True, help="folder of microphone impulse responses (.wav/.flac), one per device")
    d.add_argument("--out", required=True, help="new dataset folder (must not exist or be empty)")
    d.add_argument("--devices", type=int, default=5, help="seen devices s1..sN (default 5)")
    d.add_argument("--unseen", type=int, default=3, help="unseen devices, in evaluate only (default 3)")
    d.add_argument("--seed", type=int, default=0, help="draws every device chain and the seen devices' clips")
    d.add_argument("--seen-share", type=float, default=0.075,
                   help="share of training clips each seen device also records (default 0.075, as TAU 2020)")
    d.add_argument("--segment-seconds", type=float, default=10.0, help="clip length (default 10; 0: whole files)")
    d.add_argument("--sample-rate", type=int, default=16000)
    d.add_argument("--validate-fraction", type=float, default=0.15, help="of each scene's recording locations")
    d.add_argument("--evaluate-fraction", type=float, default=0.25, help="of each scene's recording locations")
    d.set_defaults(fn=cmd_devices)

    from .data.download import add_parser as add_datasets_parser      # sceneshift datasets list|download|verify
    add_datasets_parser(sub)
    return ap


def main(argv=None) -> int:
    parser = build_parser()
    a, rest = parser.parse_known_args(argv)
    if hasattr(a, "overrides"):   # key=value overrides may follow options
        extra = [r for r in rest if "=" in r and not r.startswith("-")]
        a.overrides, rest = a.overrides + extra, [r for r in rest if r not in extra]
        if a.recipe and "=" in a.recipe and not Path(a.recipe).exists():   # `sceneshift run key=value`
            a.overrides.insert(0, a.recipe)
            a.recipe = {"run": "baseline", "semi": "seed001"}.get(a.command)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if a.data_dir:
        os.environ["SCENESHIFT_DATA"] = str(Path(a.data_dir).expanduser())
    if a.shared:
        os.environ["SCENESHIFT_SHARED"] = str(Path(a.shared).expanduser())
    from .data.audio import AudioError
    from .registry import RecipeError
    from .runtime import keep_freed_memory
    previous = _on_signals(_terminate)
    try:
        keep_freed_memory()        # a command runs and exits: keep freed memory for reuse (runtime.py says why)
        return a.fn(a) or EXIT_OK
    except (OSError, ValueError, AudioError, RecipeError, FloatingPointError) as e:   # OSError: disk full too
        print(f"sceneshift: error: {_one_line(e)}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt as e:
        print(f"sceneshift: interrupted. {e}".rstrip(), file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:
        import traceback
        traceback.print_exc()
        print("sceneshift: internal error (a bug in sceneshift; please report it with the traceback above)",
              file=sys.stderr)
        return EXIT_BUG
    finally:
        _restore_signals(previous)


_STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGUSR1") if hasattr(signal, n))


def _on_signals(handler) -> dict:
    """Install ``handler`` for SIGTERM and SIGUSR1; return the handlers it replaces."""
    previous = {}
    try:
        for signum in _STOP_SIGNALS:
            previous[signum] = signal.signal(signum, handler)
    except ValueError:          # not the main thread (main() called from a thread): leave signals alone
        pass
    return previous


def _restore_signals(previous: dict):
    for signum, handler in previous.items():
        if handler is not None:
            signal.signal(signum, handler)


def _terminate(signum, frame):
    """SIGTERM (a scheduler's pre-emption, `kill`) and SIGUSR1 (what `sbatch --signal=USR1@90` sends before a
    time limit) end a command like Ctrl-C: cleanly, with status 3. Training on several processes handles
    them itself while it runs (training/run.py)."""
    raise KeyboardInterrupt(f"received {signal.Signals(signum).name}")


def _one_line(e: BaseException) -> str:
    """The error's own message; an OSError as ``<file>: <reason>`` (no ``[Errno N]``)."""
    if isinstance(e, OSError) and e.filename and e.strerror:
        return f"{e.filename}: {e.strerror}"
    return str(e).strip() or type(e).__name__


if __name__ == "__main__":
    sys.exit(main())
