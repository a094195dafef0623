"""`sentilite bench`."""
from __future__ import annotations

import argparse
from pathlib import Path

from sentilite.runtime.model import MANIFEST_FILE
from sentilite.shared.errors import ModelFileError
from sentilite.shared.extras import require

from .peers import FASTTEXT_GRID, PEERS

# One point: a smoke run trains fastText once.
_QUICK_FASTTEXT_GRID = {"epoch": (5,), "lr": (1.0,), "wordNgrams": (2,), "dim": (10,)}


def _grid_item(item: str) -> tuple[str, tuple[float, ...]]:
    """'lr=0.25,1' -> ('lr', (0.25, 1.0))."""
    key, sep, values = item.partition("=")
    try:
        if not sep or not values:
            raise ValueError
        return key, tuple(float(v) for v in values.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SETTING=VALUE[,VALUE...], e.g. lr=0.25,1.0; got {item!r}") from None


def add_commands(sub) -> None:
    p = sub.add_parser("bench", help="latency, throughput, size, cold start and memory of every file, beside Keras "
                                     "and the peers (fastText, TF-IDF)")
    p.add_argument("folder", help="folder holding the exported packages, e.g. artifacts")
    p.add_argument("--data", help="IMDB folder or .tar.gz (default: $IMDB_DATA, else the cache/download)")
    p.add_argument("--cells", nargs="+", choices=("rnn", "lstm", "gru"))
    p.add_argument("--latency-reviews", type=int, default=1000)
    p.add_argument("--cold-start-runs", type=int, default=5)
    p.add_argument("--latency-rounds", type=int, default=5,
                   help="time a cell's Keras model, files and peers in turns, the texts in this many blocks "
                        "(1: one after another)")
    p.add_argument("--short-text-words", type=int, default=20,
                   help="the short texts: the last this many words of each review (default: %(default)s)")
    p.add_argument("--peers", nargs="*", choices=PEERS, default=list(PEERS),
                   help=f"peers trained and timed beside the files (default: {' '.join(PEERS)}; none: --peers alone)")
    default_grid = " ".join(f"{k}={','.join(f'{v:g}' for v in vs)}" for k, vs in FASTTEXT_GRID.items())
    p.add_argument("--fasttext-grid", nargs="+", type=_grid_item, metavar="SETTING=VALUES",
                   help=f"fastText's settings to choose among on the validation reviews (default: {default_grid})")
    p.add_argument("--quick", action="store_true", help="few repetitions: a smoke run, not a measurement")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run_bench)


def run_bench(args) -> int:
    require("bench", "train", "tensorflow", "keras", "matplotlib", *(["sklearn"] if "tfidf" in args.peers else []))
    from sentilite.train.data import load_imdb

    from .bench import BenchConfig, run_bench as bench
    from .peers import require_fasttext

    if "fasttext" in args.peers:
        require_fasttext()  # before the data is read
    if not any(Path(args.folder).glob(f"*/{MANIFEST_FILE}")):
        raise ModelFileError(f"{args.folder}: no package to bench (no */{MANIFEST_FILE}); `make export` makes them")
    cells = tuple(args.cells) if args.cells else None
    peers = dict(peers=tuple(args.peers), short_text_words=args.short_text_words)
    # the settings a --fasttext-grid leaves out keep the default (or quick) grid's values
    grid = _QUICK_FASTTEXT_GRID if args.quick else FASTTEXT_GRID
    peers["fasttext_grid"] = {**grid, **dict(args.fasttext_grid or ())}
    if args.quick:
        config = BenchConfig(latency_reviews=50, warmup_reviews=5, throughput_reviews=256, throughput_batch=64,
                             cold_start_runs=1, whole_row_reviews=20, cells=cells, **peers)
    else:
        config = BenchConfig(latency_reviews=args.latency_reviews, cold_start_runs=args.cold_start_runs,
                             latency_rounds=args.latency_rounds, cells=cells, **peers)
    bench(args.folder, config, data=load_imdb(args.data))
    print(open(f"{args.folder}/bench.md").read())
    return 0
