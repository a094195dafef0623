"""`sentilite bench`."""
from __future__ import annotations

from sentilite.shared.extras import require


def add_commands(sub) -> None:
    p = sub.add_parser("bench", help="latency, throughput, size, cold start and memory of every file vs Keras")
    p.add_argument("folder", help="folder holding the exported packages, e.g. artifacts")
    p.add_argument("--data", help="IMDB folder or .tar.gz (default: $IMDB_DATA, else the cache/download)")
    p.add_argument("--cells", nargs="+", choices=("rnn", "lstm", "gru"))
    p.add_argument("--latency-reviews", type=int, default=1000)
    p.add_argument("--cold-start-runs", type=int, default=5)
    p.add_argument("--latency-rounds", type=int, default=5,
                   help="time a cell's Keras model and files in turns, the reviews in this many blocks (1: one after another)")
    p.add_argument("--quick", action="store_true", help="few repetitions: a smoke run, not a measurement")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run_bench)


def run_bench(args) -> int:
    require("bench", "train", "tensorflow", "keras", "matplotlib")
    from sentilite.train.data import load_imdb

    from .bench import BenchConfig, run_bench as bench

    cells = tuple(args.cells) if args.cells else None
    if args.quick:
        config = BenchConfig(latency_reviews=50, warmup_reviews=5, throughput_reviews=256, throughput_batch=64,
                             cold_start_runs=1, whole_row_reviews=20, cells=cells)
    else:
        config = BenchConfig(latency_reviews=args.latency_reviews, cold_start_runs=args.cold_start_runs,
                             latency_rounds=args.latency_rounds, cells=cells)
    bench(args.folder, config, data=load_imdb(args.data))
    print(open(f"{args.folder}/bench.md").read())
    return 0
