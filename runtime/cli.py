"""The `sentilite` command. Runtime subcommands import no TensorFlow; `train` and
`export` load the training stack only when they run."""
from __future__ import annotations

import argparse
import signal
import sys
import threading

from .errors import SentiliteError


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model on IMDB and save it into a folder")
    p.add_argument("--cell", choices=("rnn", "lstm", "gru"), required=True)
    p.add_argument("--preset", choices=("seed", "default"), default="default")
    p.add_argument("--input", choices=("ids", "onehot"), default="ids",
                   help="ids: Embedding layer; onehot: one-hot inside the model (the notebook's first model)")
    p.add_argument("--out", required=True, help="model folder to write (replaced atomically)")
    p.add_argument("--data", help="IMDB folder or .tar.gz (default: $IMDB_DATA, else the cache/download)")
    p.add_argument("--max-epochs", type=int, help="override the preset's epoch limit")
    p.add_argument("--train-subset", type=int, help="use only this many training reviews (quick runs)")
    p.add_argument("--seed", type=int, help="override the preset's random seed")
    p.add_argument("--quiet", action="store_true", help="one line per epoch instead of a progress bar")
    p.set_defaults(func=_run_train)


def _run_train(args) -> int:
    from sentilite.train.config import preset_config
    from sentilite.train.fit import train_model

    config = preset_config(args.preset, args.cell, args.input)
    training = {}
    if args.max_epochs is not None:
        training["max_epochs"] = args.max_epochs
    if args.train_subset is not None:
        training["train_subset"] = args.train_subset
    if args.seed is not None:
        training["seed"] = args.seed
    if training:
        config = config.replace(training=training)
    metrics = train_model(config, args.out, args.data, verbose=2 if args.quiet else None)
    print(f"{metrics['name']}: test accuracy {metrics['test_accuracy']:.4f} ({metrics['test_reviews']} reviews)")
    return 0


def _add_results(sub) -> None:
    p = sub.add_parser("results", help="table of the trained models under a folder (test accuracy, size)")
    p.add_argument("folder", help="folder holding one model folder per cell, e.g. artifacts")
    p.add_argument("--write", help="also write the table to this markdown file")
    p.set_defaults(func=_run_results)


def _run_results(args) -> int:
    from .results import results_table

    table = results_table(args.folder)
    print(table)
    if args.write:
        from ._io import atomic_write_text

        atomic_write_text(args.write, table + "\n")
    return 0


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="export a trained model folder to TFLite and ONNX, each file validated")
    p.add_argument("model_dir", help="folder written by `sentilite train`")
    p.add_argument("--data", help="IMDB folder or .tar.gz (default: $IMDB_DATA, else the cache/download)")
    p.add_argument("--formats", nargs="+", choices=("tflite", "onnx"), help="default: both")
    p.add_argument("--precisions", nargs="+", choices=("fp32", "fp16", "dynamic-int8", "int8"), help="default: all")
    p.add_argument("--calibration-reviews", type=int, help="training reviews for int8 calibration (default 300)")
    p.add_argument("--validation-reviews", type=int, help="validation reviews for the parity check (default: all)")
    p.add_argument("--test-reviews", type=int, help="test reviews to evaluate each file on (default: all 25,000)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_run_export)


def _run_export(args) -> int:
    from sentilite.export.package import ExportConfig, export_package

    options = {}
    for name in ("formats", "precisions"):
        if getattr(args, name):
            options[name] = tuple(getattr(args, name))
    for name in ("calibration_reviews", "validation_reviews", "test_reviews"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    manifest = export_package(args.model_dir, args.data, ExportConfig(**options), progress=not args.quiet)
    for a in manifest["artifacts"]:
        ev = a["eval"]
        print(f"{a['file']:<26} {a['bytes']:>10,} bytes  accuracy {ev['accuracy']:.4f}  "
              f"agreement {ev['agreement']:.4%}  max diff {ev['max_abs_diff']:.2g}")
    return 0


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="parity.json, report.md and charts for every package under a folder")
    p.add_argument("folder", help="folder holding one exported package per cell, e.g. artifacts")
    p.set_defaults(func=_run_report)


def _run_report(args) -> int:
    from sentilite.export.report import write_report

    path = write_report(args.folder)
    print(path.read_text())
    return 0


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="classify texts: arguments, or one per line on standard input")
    p.add_argument("--model", required=True, help="package folder or a single .onnx / .tflite / .npz file")
    p.add_argument("--backend", choices=("onnxruntime", "litert", "tflite", "numpy"))
    p.add_argument("--format", choices=("onnx", "tflite", "numpy"))
    p.add_argument("--precision", choices=("fp32", "fp16", "dynamic-int8", "int8"))
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("texts", nargs="*", help="texts to classify (default: read lines from standard input)")
    p.set_defaults(func=_run_predict)


def _run_predict(args) -> int:
    import io
    import json

    from .model import load

    model = load(args.model, format=args.format, precision=args.precision, backend=args.backend,
                 batch_size=args.batch_size)
    if args.texts:
        texts = args.texts
    else:
        # Undecodable bytes become U+FFFD rather than an error; lines stream, never all in memory.
        stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace", newline=None)
        texts = (line.rstrip("\n") for line in stdin)
    out = sys.stdout
    for label, score in model.iter_predict(texts):
        out.write(json.dumps({"label": label, "score": round(score, 6)}) + "\n")
    out.flush()
    return 0


def _add_info(sub) -> None:
    p = sub.add_parser("info", help="what a package folder or model file holds")
    p.add_argument("path")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_run_info)


def _run_info(args) -> int:
    import json

    from .info import describe

    info = describe(args.path)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    tok = info["tokenizer"]
    print(f"{info['path']}: {info['kind']}, cell {info.get('cell')}, labels {', '.join(info['labels'])}")
    print(f"tokenizer: {tok['vocab_size']} ids, length {tok['maxlen']}, padding {tok['padding']}, "
          f"truncating {tok['truncating']}, lowercase {tok['lowercase']}, unicode {tok['unicode_form']}")
    if info.get("source_test_accuracy") is not None:
        print(f"Keras source: test accuracy {info['source_test_accuracy']:.4f}")
    for a in info["files"]:
        acc = f"test accuracy {a['accuracy']:.4f}" if a.get("accuracy") is not None else ""
        print(f"  {a['file']:<26} {a['format']:<7} {a['precision']:<13} {a['bytes']:>10,} bytes  {acc}")
    return 0


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="latency, throughput, size, cold start and memory of every file vs Keras")
    p.add_argument("folder", help="folder holding the exported packages, e.g. artifacts")
    p.add_argument("--data", help="IMDB folder or .tar.gz (default: $IMDB_DATA, else the cache/download)")
    p.add_argument("--cells", nargs="+", choices=("rnn", "lstm", "gru"))
    p.add_argument("--latency-reviews", type=int, default=1000)
    p.add_argument("--cold-start-runs", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="few repetitions: a smoke run, not a measurement")
    p.set_defaults(func=_run_bench)


def _run_bench(args) -> int:
    from sentilite.export.bench import BenchConfig, run_bench
    from sentilite.train.data import load_imdb

    if args.quick:
        config = BenchConfig(latency_reviews=50, warmup_reviews=5, throughput_reviews=256, throughput_batch=64,
                             cold_start_runs=1, whole_row_reviews=20, cells=tuple(args.cells) if args.cells else None)
    else:
        config = BenchConfig(latency_reviews=args.latency_reviews, cold_start_runs=args.cold_start_runs,
                             cells=tuple(args.cells) if args.cells else None)
    run_bench(args.folder, config, data=load_imdb(args.data))
    print(open(f"{args.folder}/bench.md").read())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sentilite", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(sub)
    _add_results(sub)
    _add_export(sub)
    _add_report(sub)
    _add_predict(sub)
    _add_info(sub)
    _add_bench(sub)
    return parser


def _exit_on_sigterm(signum, frame):
    # SIGTERM (a `kill`, a CI timeout) would end Python without running `finally`
    # blocks; as SystemExit it removes staging folders and half-written temp files.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        return args.func(args)
    except SentiliteError as exc:
        print(f"sentilite {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `sentilite predict ... | head` closed the pipe: not an error
        try:
            sys.stdout = None
        finally:
            return 0
    except KeyboardInterrupt:
        print(f"sentilite {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
