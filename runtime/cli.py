"""The `sentilite` command. Runtime subcommands import no TensorFlow; `train` and
`export` load the training stack only when they run."""
from __future__ import annotations

import argparse
import sys

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sentilite", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(sub)
    _add_results(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SentiliteError as exc:
        print(f"sentilite {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sentilite {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
