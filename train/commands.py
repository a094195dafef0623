"""Training subcommands: `train`, `sweep` (seeds) and `results`."""
from __future__ import annotations

from sentilite.shared.extras import require

CELLS = ("rnn", "lstm", "gru")
PRESETS = ("seed", "default")


def add_commands(sub) -> None:
    p = sub.add_parser("train", help="train a model on IMDB and save it into a folder")
    p.add_argument("--cell", choices=CELLS, required=True)
    p.add_argument("--preset", choices=PRESETS, default="default")
    p.add_argument("--input", choices=("ids", "onehot"), default="ids",
                   help="ids: Embedding layer; onehot: one-hot inside the model (the notebook's first model)")
    p.add_argument("--out", required=True, help="model folder to write (replaced atomically)")
    _add_data_options(p)
    p.add_argument("--max-epochs", type=int, help="override the preset's epoch limit")
    p.add_argument("--train-subset", type=int, help="use only this many training reviews (quick runs)")
    p.add_argument("--seed", type=int, help="override the preset's random seed")
    p.add_argument("--test-reviews", type=int,
                   help="measure on this many test reviews (class-balanced; default all 25,000)")
    p.add_argument("--no-ngrams", action="store_true", help="leave out the n-gram branch (the ablation)")
    _add_set_option(p)
    p.add_argument("--quiet", dest="epoch_lines", action="store_true",
                   help="one line per epoch instead of a progress bar")
    p.set_defaults(func=run_train)

    p = sub.add_parser("sweep", help="train one cell with several seeds and report the spread of its numbers")
    p.add_argument("--cell", choices=CELLS, required=True)
    p.add_argument("--preset", choices=PRESETS, default="default")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    _add_set_option(p)
    p.add_argument("--out", required=True, help="folder for one model folder per seed and sweep.json")
    _add_data_options(p)
    p.add_argument("--quiet", dest="epoch_lines", action="store_true",
                   help="one line per epoch instead of a progress bar")
    p.set_defaults(func=run_sweep)

    p = sub.add_parser("levers", help="measure the model changes that were left out (pooling, bidirectional "
                                      "cells, word dropout, ...) against the kept model, on validation and test")
    p.add_argument("--cell", choices=CELLS, required=True)
    p.add_argument("--preset", choices=PRESETS, default="default")
    p.add_argument("--seed", type=int, help="override the preset's random seed")
    p.add_argument("--train-subset", type=int, help="use only this many training reviews (quick runs)")
    p.add_argument("--max-epochs", type=int, help="override the preset's epoch limit")
    p.add_argument("--test-reviews", type=int,
                   help="measure on this many test reviews (class-balanced; default all 25,000)")
    p.add_argument("levers", nargs="*", metavar="LEVER",
                   help="which levers (default: all): base pooling bidirectional bidirectional-pooling "
                        "word-dropout adamw label-smoothing units-64 tail-ngrams length-blend ngram-hashed")
    p.add_argument("--hashed-buckets", type=int, default=524_287,
                   help="bigram buckets of the ngram-hashed lever's table (default 524,287, the earlier branch)")
    _add_set_option(p)
    p.add_argument("--out", help="also write the rows to this JSON file")
    _add_data_options(p)
    p.set_defaults(func=run_levers)

    p = sub.add_parser("evaluate", help="accuracy of a package or model file on the IMDB test reviews, whole "
                                        "and cut to their last 10/20/40 words (no TensorFlow needed)")
    p.add_argument("model", help="package folder or a single .onnx / .tflite / .npz file")
    _add_data_options(p)
    p.add_argument("--format", choices=("onnx", "tflite", "numpy"))
    p.add_argument("--precision", choices=("fp32", "fp16", "dynamic-int8", "int8"))
    p.add_argument("--words", type=int, nargs="+", default=[10, 20, 40], help="keep the last K words (default 10 20 40)")
    p.add_argument("--reviews", type=int, help="evaluate on this many test reviews (class-balanced; default all)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_evaluate)

    p = sub.add_parser("baseline", help="train the TF-IDF uni+bigram logistic regression every cell is measured "
                                        "against, and write its test numbers")
    p.add_argument("--out", required=True, help="folder for metrics.json, e.g. artifacts/baseline")
    _add_data_options(p)
    p.set_defaults(func=run_baseline)

    p = sub.add_parser("results", help="table of the trained models under a folder (test accuracy, size)")
    p.add_argument("folder", help="folder holding one model folder per cell, e.g. artifacts")
    p.add_argument("--write", help="also write the table to this markdown file")
    p.set_defaults(func=run_results)


def _add_set_option(p) -> None:
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="change one setting of the preset, e.g. --set model.window=128 "
                        "--set training.crops_per_review=0 (VALUE is JSON; repeatable)")


def _settings(pairs: list[str]) -> dict:
    """--set section.field=value pairs -> {section: {field: value}}; values are JSON (strings may be bare)."""
    import json

    from sentilite.shared.errors import ConfigError

    out: dict = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        section, dot, field = name.partition(".")
        if not sep or not dot or section not in ("tokenizer", "model", "training") or not field:
            raise ConfigError(f"--set {pair!r}: expected SECTION.FIELD=VALUE with SECTION one of "
                              "tokenizer, model, training")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(section, {})[field] = value
    return out


def _add_data_options(p) -> None:
    p.add_argument("--data", help="IMDB folder or .tar.gz (default: $IMDB_DATA, else the cache/download)")
    p.add_argument("--allow-incomplete", action="store_true",
                   help="accept an IMDB copy with fewer than 12,500 reviews per class and split")


def _config(args):
    from .config import preset_config

    config = preset_config(args.preset, args.cell, getattr(args, "input", "ids"))
    training, model = {}, {}
    for option, field in (("max_epochs", "max_epochs"), ("train_subset", "train_subset"), ("seed", "seed")):
        if getattr(args, option, None) is not None:
            training[field] = getattr(args, option)
    if getattr(args, "no_ngrams", False):
        model["ngram_buckets"] = 0
    if training or model:
        config = config.replace(training=training, model=model)
    settings = _settings(getattr(args, "settings", []))
    if settings:
        import dataclasses

        from sentilite.shared.config import dataclass_from_dict

        config = config.replace(**{
            section: dataclass_from_dict(type(getattr(config, section)),
                                         {**dataclasses.asdict(getattr(config, section)), **values}, f"--set {section}")
            for section, values in settings.items()})
    return config


def run_train(args) -> int:
    require("train", "train", "tensorflow", "keras")
    from .data import load_imdb
    from .fit import train_model

    data = load_imdb(args.data, allow_incomplete=args.allow_incomplete)
    metrics = train_model(_config(args), args.out, data, verbose=2 if args.epoch_lines else None,
                          test_reviews=args.test_reviews)
    print(f"{metrics['name']}: test accuracy {metrics['test_accuracy']:.4f} ({metrics['test_reviews']} reviews)")
    return 0


def run_sweep(args) -> int:
    require("sweep", "train", "tensorflow", "keras")
    from .data import load_imdb
    from .sweep import run_seed_sweep

    data = load_imdb(args.data, allow_incomplete=args.allow_incomplete)
    summary = run_seed_sweep(_config(args), args.seeds, args.out, data, verbose=2 if args.epoch_lines else None)
    print(summary["table"])
    return 0


def run_levers(args) -> int:
    require("levers", "train", "tensorflow", "keras", "sklearn")
    from sentilite.shared.files import atomic_write_json

    from .data import load_imdb
    from .levers import check_levers
    from .levers import run_levers as measure

    levers = check_levers(args.levers)  # before the minutes of loading and fitting
    if args.hashed_buckets < 1:
        from sentilite.shared.errors import ConfigError

        raise ConfigError(f"--hashed-buckets must be at least 1, got {args.hashed_buckets}")
    data = load_imdb(args.data, allow_incomplete=args.allow_incomplete)
    result = measure(_config(args), data, levers, test_reviews=args.test_reviews, hashed_buckets=args.hashed_buckets)
    print(f"{result['cell']}, seed {result['seed']}: {result['validation_reviews']:,} validation reviews, "
          f"{result['test_reviews']:,} test reviews")
    print(result["table"])
    if args.out:
        atomic_write_json(args.out, {k: v for k, v in result.items() if k != "table"})
    return 0


def run_results(args) -> int:
    from sentilite.shared.files import atomic_write_text

    from .results import results_table

    table = results_table(args.folder)
    print(table)
    if args.write:
        atomic_write_text(args.write, table + "\n")
    return 0


def run_evaluate(args) -> int:
    import json

    from sentilite.runtime import load

    from .data import load_imdb, subset
    from .evaluate import evaluate_model, format_evaluation

    model = load(args.model, format=args.format, precision=args.precision)  # a bad path fails before IMDB loads
    data = load_imdb(args.data, allow_incomplete=args.allow_incomplete)
    test = data.test if args.reviews is None else subset(data.test, args.reviews, seed=0)
    result = evaluate_model(model, test, tuple(args.words))
    result["data"] = data.describe()
    print(json.dumps(result, indent=2) if args.json else format_evaluation(args.model, result))
    return 0


def run_baseline(args) -> int:
    require("baseline", "train", "sklearn")
    from .baseline import train_baseline
    from .data import load_imdb
    from .evaluate import format_evaluation

    data = load_imdb(args.data, allow_incomplete=args.allow_incomplete)
    metrics = train_baseline(data, args.out)
    print(format_evaluation(metrics["name"], {"accuracy": metrics["test_accuracy"], "n": metrics["test_reviews"],
                                              "short_text": metrics["short_text"]}))
    return 0
