"""`sentilite score` (bulk scoring, one machine or Spark) and `sentilite bench-score`."""
from __future__ import annotations

import json

from sentilite.runtime.backends import BACKENDS, FORMAT_BACKENDS
from sentilite.runtime.model import PRECISIONS
from sentilite.shared.arguments import positive_int
from sentilite.shared.extras import install_hint, require


def add_commands(sub) -> None:
    p = sub.add_parser(
        "score", help="score many texts: JSONL, CSV, Parquet or text files into Parquet or JSONL parts",
        description="Score every row of INPUT (a file, a folder or a glob) into the folder OUT, one part per "
                    "chunk of rows. A killed run, started again with the same command, scores only the "
                    "missing parts.")
    p.add_argument("input", metavar="INPUT", help="a file, a folder (read recursively) or a glob pattern")
    p.add_argument("--model", required=True, help="package folder or a single .onnx / .tflite / .npz file")
    p.add_argument("--out", required=True, help="output folder (created; a restart resumes it)")
    p.add_argument("--text-column", default="text", help="column (or JSON field) holding the text (default: text)")
    p.add_argument("--id-column", help="column holding each row's id (default: its line, record or row number)")
    p.add_argument("--input-format", choices=("text", "jsonl", "csv", "parquet"),
                   help="default: from the file names (.txt, .jsonl/.json/.ndjson, .csv, .parquet; .gz allowed)")
    p.add_argument("--output-format", choices=("parquet", "jsonl"), default="parquet")
    p.add_argument("--engine", choices=("local", "spark"), default="local",
                   help="local: worker processes on this machine; spark: PySpark (" + install_hint("spark") + ")")
    p.add_argument("--workers", type=positive_int, help="local engine: worker processes (default: every core)")
    p.add_argument("--part-rows", type=positive_int, default=10_000,
                   help="local engine: rows per output part, the unit of resume (default: 10000)")
    p.add_argument("--spark-master", help="spark engine: master URL (default: spark-submit's, else local[*])")
    p.add_argument("--format", choices=tuple(FORMAT_BACKENDS), help="which file of a package to run")
    p.add_argument("--precision", choices=PRECISIONS)
    p.add_argument("--backend", choices=tuple(BACKENDS))
    p.add_argument("--quiet", action="store_true", help="no progress bar and no log lines; the summary still prints")
    p.set_defaults(func=run_score)

    p = sub.add_parser("bench-score", help="rows/s of `sentilite score`: 1 process, every core and Spark local[2]")
    p.add_argument("--model", required=True, help="package folder or model file, e.g. artifacts/gru")
    p.add_argument("--out", default="artifacts", help="folder for bench_score.json and bench_score.md")
    p.add_argument("--data", help="IMDB folder or .tar.gz (default: $IMDB_DATA, else the cache/download)")
    p.add_argument("--rows", type=positive_int, default=100_000, help="rows scored (the 25,000 test reviews repeated)")
    p.add_argument("--runs", nargs="+", choices=("one-process", "all-cores", "spark"),
                   default=["one-process", "all-cores", "spark"])
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run_bench_score)


def run_score(args) -> int:
    if args.engine == "spark":
        require("score --engine spark", "spark", "pyspark", "pandas", "pyarrow")
    else:
        require("score", "score", "pyarrow", "tqdm")
    from .run import score

    summary = score(args.input, model=args.model, out=args.out, text_column=args.text_column,
                    id_column=args.id_column, input_format=args.input_format, output_format=args.output_format,
                    engine=args.engine, workers=args.workers, part_rows=args.part_rows,
                    spark_master=args.spark_master, format=args.format, precision=args.precision,
                    backend=args.backend, quiet=args.quiet)
    print(json.dumps(summary, indent=2))
    return 0


def run_bench_score(args) -> int:
    require("bench-score", "score", "pyarrow", "tqdm")
    from .throughput import ScoreBenchConfig, run_score_bench

    config = ScoreBenchConfig(rows=args.rows, runs=tuple(args.runs))
    run_score_bench(args.model, args.out, config, data=args.data, progress=not args.quiet)
    print(open(f"{args.out}/bench_score.md").read())
    return 0
