"""Training subcommands: `train`, `sweep` (seeds) and `results`."""
from __future__ import annotations

from sentilite.shared.extras import require

CELLS = ("rnn", "lstm", "gru")
PRESETS = ("seed", "default")


def add_commands(sub) -> None:
    p = sub.add_parser("train", help="train a model on your labeled file (or IMDB) and save it into a folder")
    p.add_argument("--cell", choices=CELLS, required=True)
    p.add_argument("--preset", choices=PRESETS,
                   help="the settings to start from (default: IMDB's \"default\"; for your own --data, sizes "
                        "derived from the data, each printed)")
    p.add_argument("--input", choices=("ids", "onehot"), default="ids",
                   help="ids: Embedding layer; onehot: one-hot inside the model (the notebook's first model)")
    p.add_argument("--out", required=True, help="model folder to write (replaced atomically)")
    _add_data_options(p, own_data=True)
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
    p.add_argument("--preset", choices=PRESETS, help="as for train")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    _add_set_option(p)
    p.add_argument("--out", required=True, help="folder for one model folder per seed and sweep.json")
    _add_data_options(p, own_data=True)
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

    p = sub.add_parser("evaluate", help="accuracy, macro-F1, per-class figures and the confusion matrix of a "
                                        "package or model file on a labeled file; without --data, accuracy on "
                                        "the IMDB test reviews, whole and cut to their last 10/20/40 words "
                                        "(no TensorFlow needed)")
    p.add_argument("model", help="package folder or a single .onnx / .tflite / .npz file")
    p.add_argument("--data", help="a labeled file (.csv .tsv .jsonl .parquet, fastText .txt, also .gz or a one-file "
                                  ".zip) or a folder with one sub-folder per label; an IMDB folder or .tar.gz gives "
                                  "the IMDB evaluation, as does no --data ($IMDB_DATA, else the cache/download)")
    p.add_argument("--text-column", help="column of the texts: a name, or a 0-based index (default: the first of "
                                         "text, sentence, review, ... found)")
    p.add_argument("--label-column", help="column of the labels: a name, or a 0-based index (default: the first "
                                          "of label, sentiment, class, ... found)")
    p.add_argument("--data-format", help="the file's format when its name does not say: csv, tsv, jsonl, parquet, "
                                         "fasttext or folder")
    p.add_argument("--encoding", default="utf-8", help="text encoding of the file (default utf-8)")
    p.add_argument("--skip-bad-rows", action="store_true",
                   help="skip and count unusable rows (empty text, missing label, ...) instead of stopping")
    p.add_argument("--confusion-chart", metavar="PNG", help="also draw the confusion matrix into this PNG "
                                                            "(needs matplotlib)")
    p.add_argument("--allow-incomplete", action="store_true",
                   help="accept an IMDB copy with fewer than 12,500 reviews per class and split")
    p.add_argument("--format", choices=("onnx", "tflite", "numpy"))
    p.add_argument("--precision", choices=("fp32", "fp16", "dynamic-int8", "int8"))
    p.add_argument("--words", type=int, nargs="+", default=[10, 20, 40],
                   help="IMDB: keep the last K words (default 10 20 40)")
    p.add_argument("--reviews", type=int, help="IMDB: evaluate on this many test reviews (class-balanced; default all)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_evaluate)

    p = sub.add_parser("baseline", help="train the TF-IDF uni+bigram logistic regression every cell is measured "
                                        "against, on the model's splits, and write its validation and test numbers")
    p.add_argument("--out", required=True, help="folder for metrics.json, e.g. artifacts/baseline")
    p.add_argument("--data", help="the training file of `sentilite train --data` (a labeled file or a folder per "
                                  "label), or an IMDB folder or .tar.gz (default: $IMDB_DATA, else the "
                                  "cache/download)")
    p.add_argument("--validation-data", help="the validation file, as given to `sentilite train`")
    p.add_argument("--test-data", help="the test file, as given to `sentilite train`")
    p.add_argument("--text-column", help="column of the texts: a name, or a 0-based index")
    p.add_argument("--label-column", help="column of the labels: a name, or a 0-based index")
    p.add_argument("--labels", help="the label order, comma-separated, as given to `sentilite train`")
    p.add_argument("--data-format", help="the files' format when their names do not say")
    p.add_argument("--encoding", help="text encoding of the files (default utf-8)")
    p.add_argument("--skip-bad-rows", action="store_true", help="skip and count unusable rows instead of stopping")
    p.add_argument("--seed", type=int, help="the training seed, which draws the validation split (default: the "
                                            "preset's)")
    p.add_argument("--model", metavar="FOLDER",
                   help="a trained model folder (or its config.json): its data, splits and word rule, exactly; "
                        "the data options are then taken from it")
    p.add_argument("--allow-incomplete", action="store_true",
                   help="accept an IMDB copy with fewer than 12,500 reviews per class and split")
    # the model the reference stands beside: the gru cell, its sizes taken from the data, as `train` would make it
    p.set_defaults(func=run_baseline, cell="gru", preset=None)

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


def _add_data_options(p, own_data: bool = False) -> None:
    """--data (IMDB's copy); with ``own_data`` also a user's labeled file, and how to read it (IMDB stays the
    default: no --data, or an IMDB folder or archive)."""
    if not own_data:
        p.add_argument("--data", help="IMDB folder or .tar.gz (default: $IMDB_DATA, else the cache/download)")
    else:
        p.add_argument("--data", help="your labeled texts: a .csv, .tsv, .jsonl, .parquet or fastText .txt file "
                                      "(also .gz, or a one-file .zip), or a folder with one sub-folder of .txt files "
                                      "per label; an IMDB folder or .tar.gz, or no --data ($IMDB_DATA, else the "
                                      "cache/download), trains on IMDB")
    p.add_argument("--allow-incomplete", action="store_true",
                   help="accept an IMDB copy with fewer than 12,500 reviews per class and split")
    if own_data:
        _add_own_data_options(p)


def _add_own_data_options(p) -> None:
    p.add_argument("--validation-data", metavar="FILE",
                   help="validation texts, read as --data (default: a seeded, stratified share of --data)")
    p.add_argument("--test-data", metavar="FILE",
                   help="test texts, read as --data (default: a seeded, stratified 20%% of --data)")
    p.add_argument("--text-column", help="column of the texts: a name, or a 0-based index for a file without a "
                                         "header (default: the first of text, sentence, review, ... found)")
    p.add_argument("--label-column", help="column of the labels: a name, or a 0-based index (default: the first "
                                          "of label, sentiment, class, ... found)")
    p.add_argument("--labels", help="the labels in the order the model gives them, comma-separated, e.g. "
                                    "negative,neutral,positive (default: numeric order when all are integers, "
                                    "else sorted); the data must have exactly these")
    p.add_argument("--data-format", help="the files' format when their names do not say: csv, tsv, jsonl, "
                                         "parquet, fasttext or folder")
    p.add_argument("--encoding", help="text encoding of the files (default utf-8)")
    p.add_argument("--skip-bad-rows", action="store_true",
                   help="skip and count unusable rows (empty text, missing label, ...) instead of stopping; the "
                        "counts go into metrics.json")


def _config(args, profile=None):
    """The run's settings: --preset (default "default"), or with a data ``profile`` and no --preset the sizes
    derived from it; then --max-epochs, --seed, --train-subset, --no-ngrams and --set, which override either."""
    from .config import preset_config, sized_for_data

    if args.preset is None and profile is not None:
        config, _ = sized_for_data(profile, args.cell, getattr(args, "input", "ids"))
    else:
        config = preset_config(args.preset or "default", args.cell, getattr(args, "input", "ids"))
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


def _own_data_config(args):
    """The DataConfig of --data and its reading options; None for IMDB (no --data, or an IMDB folder or archive)."""
    import codecs
    from pathlib import Path

    from sentilite.shared.errors import ConfigError

    from .config import DataConfig
    from .readers import FORMAT_ALIASES, FORMATS, column_spec

    given = {"--validation-data": args.validation_data, "--test-data": args.test_data,
             "--text-column": args.text_column, "--label-column": args.label_column, "--labels": args.labels,
             "--data-format": args.data_format, "--encoding": args.encoding,
             "--skip-bad-rows": args.skip_bad_rows or None}
    if args.data is None or (_means_imdb(args.data) and args.data_format is None):
        options = [flag for flag, value in given.items() if value is not None]
        if options:
            raise ConfigError(f"{', '.join(options)}: for your own labeled files given with --data; IMDB "
                              f"({args.data or 'the default data'}) has its own splits and labels")
        return None
    if args.allow_incomplete:
        raise ConfigError("--allow-incomplete is for an IMDB copy, not your own --data")
    if args.data_format is not None and FORMAT_ALIASES.get(args.data_format.lower(),
                                                           args.data_format.lower()) not in FORMATS:
        raise ConfigError(f"--data-format {args.data_format!r}: choose one of {', '.join(FORMATS)}")
    if args.encoding is not None:
        try:
            codecs.lookup(args.encoding)
        except LookupError:
            raise ConfigError(f"--encoding {args.encoding!r}: not an encoding Python knows (e.g. utf-8, cp1252, "
                              f"gb18030, utf-16)") from None
    labels = None
    if args.labels is not None:
        labels = tuple(name.strip() for name in args.labels.split(","))
        if not all(labels):
            raise ConfigError(f"--labels {args.labels!r}: an empty label name; give them comma-separated, e.g. "
                              f"negative,neutral,positive")

    def absolute(path):
        return None if path is None else str(Path(path).expanduser().absolute())

    return DataConfig(train=absolute(args.data), validation=absolute(args.validation_data),
                      test=absolute(args.test_data),
                      data_format=None if args.data_format is None else args.data_format.lower(),
                      text_column=None if args.text_column is None else column_spec(args.text_column),
                      label_column=None if args.label_column is None else column_spec(args.label_column),
                      labels=labels, encoding=args.encoding or "utf-8", skip_bad_rows=args.skip_bad_rows)


def _means_imdb(path: str) -> bool:
    """An IMDB copy, or a missing path that names no labeled file (which load_imdb reports as IMDB not found)."""
    from pathlib import Path

    from .readers import format_of

    location = Path(path).expanduser()
    if location.exists():
        return _is_imdb_copy(path)
    return _is_imdb_copy(path) or (format_of(location) is None and not location.name.lower().endswith(".zip"))


def _config_and_data(args):
    """(the run's RunConfig, its TrainingData): IMDB as before, or the user's files, read and checked before any
    training, with the sizes derived from them when no --preset is given (each choice printed)."""
    import dataclasses
    import logging

    from .data import load_imdb, profile_texts, read_labeled_splits, training_data

    data_config = _own_data_config(args)
    if data_config is None:
        return _config(args), load_imdb(args.data, allow_incomplete=args.allow_incomplete)
    log = logging.getLogger("sentilite.data")
    splits = read_labeled_splits(data_config)
    names = splits.label_names
    profile = derived = None
    if args.preset is None:
        from .config import sized_for_data

        profile = profile_texts(splits.pool.texts, splits.pool.labels, len(names))
        derived = sized_for_data(profile, args.cell, getattr(args, "input", "ids"))[1]
    config = _config(args, profile)
    if derived:
        derived = tuple(_as_run(setting, config) for setting in derived)
        for setting in derived:
            log.info("from the data: %s", setting.line())
    data_config = dataclasses.replace(data_config, labels=names, profile=profile, derived=derived or ())
    config = config.replace(data=data_config, model={"labels": names})
    return config, training_data(splits, config)  # training logs how the splits were made


def _as_run(setting, config):
    """A derived setting as the run has it: --set and the other options override what the data suggested."""
    import dataclasses

    section, field = setting.setting.split(".")
    value = getattr(getattr(config, section), field)
    if value == setting.value:
        return setting
    return dataclasses.replace(setting, value=value, reason=f"given on the command line (the data suggested "
                                                            f"{setting.value}: {setting.reason})")


def run_train(args) -> int:
    require("train", "train", "tensorflow", "keras")
    config, data = _config_and_data(args)  # bad data stops here, before --out is touched
    from .fit import train_model

    metrics = train_model(config, args.out, data, verbose=2 if args.epoch_lines else None,
                          test_reviews=args.test_reviews)
    print(f"{metrics['name']}: test accuracy {metrics['test_accuracy']:.4f} ({metrics['test_reviews']} reviews)")
    return 0


def run_sweep(args) -> int:
    require("sweep", "train", "tensorflow", "keras")
    from .sweep import run_seed_sweep

    config, data = _config_and_data(args)
    summary = run_seed_sweep(config, args.seeds, args.out, data, verbose=2 if args.epoch_lines else None)
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


def _labeled_read_options(args) -> dict:
    """train.readers.read_labeled's options from --text-column, --label-column, --data-format, --encoding, ..."""
    from .readers import column_spec

    return {"data_format": args.data_format, "encoding": args.encoding, "skip_bad_rows": args.skip_bad_rows,
            "text_column": None if args.text_column is None else column_spec(args.text_column),
            "label_column": None if args.label_column is None else column_spec(args.label_column)}


def _is_imdb_copy(path: str) -> bool:
    """An IMDB archive (.tar.gz, .tgz, .tar) or a folder in the aclImdb layout, which `evaluate` reads as IMDB."""
    from pathlib import Path

    location = Path(path).expanduser()
    if location.is_dir():
        return any((root / "train" / "pos").is_dir() or (root / "test" / "pos").is_dir()
                   for root in (location / "aclImdb", location))
    return location.name.lower().endswith((".tar.gz", ".tgz", ".tar"))


def run_evaluate(args) -> int:
    import json

    from sentilite.runtime import load

    from .data import load_imdb, subset
    from .evaluate import evaluate_model, format_evaluation

    model = load(args.model, format=args.format, precision=args.precision)  # a bad path fails before IMDB loads
    labeled_options = (args.text_column, args.label_column, args.data_format)
    if args.data is not None and (any(o is not None for o in labeled_options) or not _is_imdb_copy(args.data)):
        return _evaluate_labeled(args, model)
    if args.confusion_chart:
        from sentilite.shared.errors import ConfigError

        raise ConfigError("--confusion-chart draws the confusion matrix of a labeled file given with --data")
    data = load_imdb(args.data, allow_incomplete=args.allow_incomplete)
    test = data.test if args.reviews is None else subset(data.test, args.reviews, seed=0)
    result = evaluate_model(model, test, tuple(args.words))
    result["data"] = data.describe()
    print(json.dumps(result, indent=2) if args.json else format_evaluation(args.model, result))
    return 0


def _evaluate_labeled(args, model) -> int:
    """`evaluate MODEL --data FILE`: accuracy, macro-F1, per class and the confusion matrix on every row of FILE."""
    import json

    from .evaluate import evaluate_labeled_file, format_labeled_evaluation

    if args.confusion_chart:
        require("evaluate --confusion-chart", "train", "matplotlib")  # before the minutes of reading and scoring
    result = evaluate_labeled_file(model, args.model, args.data, **_labeled_read_options(args))
    if args.confusion_chart:
        from sentilite.shared.charts import plot_confusion

        plot_confusion(result.metrics, args.confusion_chart, f"{args.model} on {result.data['source']}")
    print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False) if args.json
          else format_labeled_evaluation(result))
    return 0


def _baseline_config_and_data(args):
    """(RunConfig, TrainingData) of the model the baseline stands beside: a trained model's (--model), read back
    from its config.json, else the one `sentilite train --cell gru` with these options would use."""
    from pathlib import Path

    from .data import load_training_data

    if not args.model:
        return _config_and_data(args)  # `train`'s own: its splits, labels and word rule
    from sentilite.shared.errors import ConfigError
    from sentilite.shared.files import parse_json

    from .config import RunConfig

    given = [flag for flag, value in (("--data", args.data), ("--validation-data", args.validation_data),
                                      ("--test-data", args.test_data), ("--labels", args.labels),
                                      ("--text-column", args.text_column), ("--label-column", args.label_column),
                                      ("--data-format", args.data_format), ("--seed", args.seed)) if value is not None]
    path = Path(args.model).expanduser()
    path = path / "config.json" if path.is_dir() else path
    if not path.is_file():
        raise ConfigError(f"{args.model}: no config.json of a trained model there")
    config = RunConfig.from_dict(parse_json(path.read_bytes(), str(path), ConfigError), str(path))
    if given and not config.data.imdb:
        raise ConfigError(f"{', '.join(given)}: --model {args.model} names its own data and splits")
    return config, load_training_data(config, args.data, allow_incomplete=args.allow_incomplete)


def run_baseline(args) -> int:
    require("baseline", "train", "sklearn")
    from .baseline import train_baseline
    from .evaluate import format_evaluation

    config, data = _baseline_config_and_data(args)
    metrics = train_baseline(data, args.out, config=config)
    if data.imdb:
        print(format_evaluation(metrics["name"], {"accuracy": metrics["test_accuracy"], "n": metrics["test_reviews"],
                                                  "short_text": metrics["short_text"]}))
    else:
        for split in ("validation", "test"):
            part = metrics[split]
            print(f"{metrics['name']}: {split} accuracy {part['accuracy']:.4f}, macro-F1 {part['macro_f1']:.4f} "
                  f"on {part['rows']:,} texts")
    return 0
