"""`make train-time`: how long `sentilite train` takes on 10,000 short texts and on 100,000 texts, every stage.

The two files are made from the shared data (never written into the repository):

- **10,000 short texts**: a spread of 10,000 rows of the Twitter US Airline file (tweets, three labels);
- **100,000 texts**: SST-2's 67,349 training phrases and IMDB's 50,000 labeled reviews, the same two labels
  (``negative``, ``positive``), shuffled with a fixed seed, the first 100,000. No shared set has 100,000 rows;
  this one mixes the shortest texts here with the longest.

Each is trained by ``sentilite train --cell gru --data FILE`` as a user would run it (test and validation
split off the file, sizes from the data), in a child process, timed from its start to its end: reading,
vocabulary, the n-gram dictionary and regressions, the cell's epochs, the blend, every file written. The
times, the goals and the model's test accuracy go to ``OUT/train_time.json`` and a table on stdout.

    python -m sentilite.train.train_time --data-root ../shared/data --out artifacts/train-time
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sentilite.shared.files import atomic_write_json

from .data import load_imdb
from .datasets import (SHARED_SETS, SharedDataError, _cli, _column, _read_csv_records, _run, _write_csv, data_root,
                       spread)

log = logging.getLogger("sentilite.train")

SHUFFLE_SEED = 20_000
SST2_LABELS = {"0": "negative", "1": "positive"}


@dataclass(frozen=True)
class TimedSize:
    """One goal of the issue: a file of ``rows`` texts, trained within ``limit_seconds``."""

    name: str
    rows: int
    limit_seconds: float
    description: str


SIZES = (
    TimedSize("short-10k", 10_000, 120.0, "10,000 tweets (Twitter US Airline, 3 labels)"),
    TimedSize("mixed-100k", 100_000, 900.0, "100,000 texts: SST-2 phrases and IMDB reviews (2 labels)"),
)


@dataclass(frozen=True)
class TrainTime:
    """What one timed run measured."""

    name: str
    description: str
    rows: int
    labels: int
    median_words: float
    seconds: float
    cpu_seconds: float
    limit_seconds: float
    met: bool
    test_accuracy: float
    test_macro_f1: float


HEADER = ("text", "label")


def short_texts_file(root: Path, out: Path, rows: int) -> Path:
    airline = next(s for s in SHARED_SETS if s.name == "airline")
    source = root / airline.folder / airline.train
    if not source.is_file():
        raise SharedDataError(f"{source}: missing (see {root / 'README.md'})")
    header, records = _read_csv_records(source.read_bytes(), str(source))
    text, label = (_column(header, name, str(source)) for name in (airline.text_column, airline.label_column))
    return _write_csv(out, HEADER, [(records[i][text], records[i][label]) for i in spread(len(records), rows)])


SHARED_IMDB_ARCHIVE = "aclImdb_v1_labeled.tar.gz"  # the shared data folder's copy of IMDB


def imdb_source(given: str | None, root: Path) -> str | None:
    """--imdb, else $IMDB_DATA, else the shared folder's archive when it is there; None: load_imdb's cache."""
    if given or os.environ.get("IMDB_DATA"):
        return given or os.environ["IMDB_DATA"]
    shared = root / SHARED_IMDB_ARCHIVE
    return str(shared) if shared.exists() else None


def mixed_texts_file(root: Path, out: Path, rows: int, imdb: str | None, *, allow_incomplete: bool = False) -> Path:
    source = root / "sst2" / "train_full.tsv"
    if not source.is_file():
        raise SharedDataError(f"{source}: missing (see {root / 'README.md'})")
    lines = source.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    sentence, label = (_column(header, name, str(source)) for name in ("sentence", "label"))
    texts = [(fields[sentence], SST2_LABELS[fields[label]]) for fields in (line.split("\t") for line in lines[1:])]
    data = load_imdb(imdb, progress=False, allow_incomplete=allow_incomplete)
    for split in (data.train, data.test):
        texts += [(t, data.label_names[int(y)]) for t, y in zip(split.texts, split.labels)]
    order = np.random.default_rng(SHUFFLE_SEED).permutation(len(texts))[:rows]
    return _write_csv(out, HEADER, [texts[i] for i in order])


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_training(size: TimedSize, data: Path, model_dir: Path, train_args: Sequence[str] = ()) -> TrainTime:
    command = [*_cli(), "train", "--cell", "gru", "--data", str(data), "--out", str(model_dir), "--quiet",
               *train_args]
    started_cpu = _children_cpu()
    _, seconds = _run(command, f"{size.name}: train")
    cpu = _children_cpu() - started_cpu
    metrics = json.loads((model_dir / "metrics.json").read_text(encoding="utf-8"))
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    profile = config["data"].get("profile") or {}
    return TrainTime(size.name, size.description, size.rows, len(config["model"]["labels"]),
                     float(profile.get("median_words", float("nan"))), round(seconds, 1), round(cpu, 1),
                     size.limit_seconds, seconds <= size.limit_seconds, metrics["test"]["accuracy"],
                     metrics["test"]["macro_f1"])


def table(results: Sequence[TrainTime]) -> str:
    lines = ["| texts | labels | median words | train (wall) | CPU | goal | met | test accuracy / macro-F1 |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.description} | {r.labels} | {r.median_words:g} | {r.seconds / 60:.1f} min | "
                     f"{r.cpu_seconds / 60:.1f} min | {r.limit_seconds / 60:.0f} min | {'yes' if r.met else 'no'} | "
                     f"{r.test_accuracy:.4f} / {r.test_macro_f1:.4f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sentilite.train.train_time", description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", help="the shared data folder (default: ../shared/data)")
    parser.add_argument("--imdb", help="the IMDB archive or folder (default: $IMDB_DATA, else the data root's "
                                       f"{SHARED_IMDB_ARCHIVE}, else the cache)")
    parser.add_argument("--out", default="artifacts/train-time", help="output folder (default: %(default)s)")
    parser.add_argument("--sizes", nargs="+", choices=[s.name for s in SIZES], default=[s.name for s in SIZES])
    args = parser.parse_args(argv)
    from sentilite.cli import configure_logging
    from sentilite.shared.errors import SentiliteError

    configure_logging()
    root, out = data_root(args.data_root), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    try:
        for size in (s for s in SIZES if s.name in args.sizes):
            data = out / f"{size.name}.csv"
            if size.name == "short-10k":
                short_texts_file(root, data, size.rows)
            else:
                mixed_texts_file(root, data, size.rows, imdb_source(args.imdb, root))
            results.append(time_training(size, data, out / size.name))
            log.info("%s: %.0f s (goal %.0f s)", size.name, results[-1].seconds, size.limit_seconds)
    except SentiliteError as exc:
        print(f"train-time: error: {exc}", file=sys.stderr)
        return 2
    atomic_write_json(out / "train_time.json", {"machine_cpus": os.cpu_count(),
                                                "results": [asdict(r) for r in results]})
    print(table(results))
    return 0 if all(r.met for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
