"""`make datasets`: sentilite on public labeled sets it was not built for, beside the peers, in one table.

For each of SST-2, SST-5, Twitter US Airline and the Chinese shopping
reviews (``../shared/data``, described in its README.md) the runner

1. makes the split files the README's rules give (airline: test = ``tweet_id % 5 == 0``;
   zh-shopping: test = 0-based row index ``% 5 == 0``) under the output folder, never in the repository;
   SST-2 and SST-5 are used as given;
2. trains the gru cell with ``sentilite train --data ...`` and times it (every stage);
3. exports it (``sentilite export``) and scores each int8 file with ``sentilite evaluate --data`` on the
   test file (and SST-2's ``dev.tsv``, where its published anchors are measured);
4. fits the peers on the model's own splits (``train.data.load_training_data`` of its config.json): the
   TF-IDF reference of ``train.baseline`` and fastText, its settings chosen on the model's validation texts;
5. reads the ablation training writes (the n-gram branch alone, the cell alone) from metrics.json.

Each set's figures go to ``OUT/<set>/result.json`` as soon as they are known (``--resume`` keeps them),
all of them to ``OUT/datasets.json``, and the table to docs/datasets.md. ``--rows N`` runs on a
spread of N rows of every file, for a quick check of the whole chain; its numbers are not the sets'.

    python -m sentilite.train.datasets --out artifacts/datasets --doc docs/datasets.md [--sets sst2 airline]
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sentilite.runtime.metrics import ClassificationMetrics
from sentilite.shared.errors import ConfigError, SentiliteError
from sentilite.shared.files import atomic_write_json, atomic_write_text

from .errors import DatasetError

log = logging.getLogger("sentilite.datasets")
RESULTS_FILE = "datasets.json"
SET_RESULT_FILE = "result.json"
TRAIN_TIME_FILE = "train_seconds.json"
RESULTS_FORMAT_VERSION = 1
DEFAULT_DATA_ROOT = Path("..") / "shared" / "data"
ENV_DATA_ROOT = "SENTILITE_SHARED_DATA"
CELL = "gru"
# Exported for the table: the int8 files a device ships, and the fp32 files they are measured against
# (`--export-args` changes it).
EXPORT_ARGS: tuple[str, ...] = ()  # every format and precision
SPLIT_EVERY = 5  # airline and zh-shopping: one row in five is a test row


@dataclass(frozen=True)
class SharedSet:
    """One shared set: its files under the data root, its columns, how it is split, what it is compared with.

    ``split``: "given" (the published files), "tweet_id" (test = tweet_id % 5 == 0) or "row_index" (test =
    0-based row index % 5 == 0). ``reports``: (name, file) of the files every model and peer is scored on,
    the test file first; for a "given" set the file names are under ``folder``. ``expected_test_rows``: the
    README's count, checked on a full run. ``export_args``: `sentilite export` options this set needs, after
    the run's own, and ``export_reason`` why. ``targets``: (report, metric, floor) the issue set for the
    best 8-bit file, shown per seed in the spread table.
    """

    name: str
    title: str
    folder: str
    train: str
    labels: int
    split: str
    text_column: str | None
    label_column: str | None
    anchors: str
    validation: str | None = None
    test: str | None = None
    reports: tuple[tuple[str, str], ...] = ()
    skip_bad_rows: bool = False
    expected_test_rows: int | None = None
    export_args: tuple[str, ...] = ()
    export_reason: str = ""
    targets: tuple[tuple[str, str, float], ...] = ()


SHARED_SETS = (
    SharedSet("sst2", "SST-2", "sst2", "train_full.tsv", 2, "given", "sentence", "label",
              anchors="dev: MediaPipe Model Maker average word embedding 0.810 (776 KB), MobileBERT 0.9036 "
                      "(28.4 MB); sentence-level test: Naive Bayes 0.818, bigram NB 0.831 (Socher et al. 2013)",
              test="test-labeled.tsv", reports=(("test", "test-labeled.tsv"), ("dev", "dev.tsv")),
              expected_test_rows=1_821, targets=(("dev", "accuracy", 0.85),)),
    SharedSet("sst5", "SST-5", "sst5", "sst_train.txt", 5, "given", None, None,
              anchors="test accuracy: Naive Bayes 0.410, bigram NB 0.419, RNTN 0.457 (Socher et al. 2013); "
                      "CNN, random vectors 0.450 (Kim 2014); LSTM with GloVe 0.464 (Tai et al. 2015)",
              validation="sst_dev.txt", test="sst_test.txt", reports=(("test", "sst_test.txt"),),
              expected_test_rows=2_210,
              export_args=("--calibration-reviews", "1000", "--formats", "tflite", "onnx", "numpy"),
              export_reason="five uncertain labels leave many near-ties. With the default 300 calibration rows "
                            "its int8 TFLite file (training seed 1234) agreed with Keras on 98.8% of the validation "
                            "sentences, under the 99% floor, and with 1,000 on 99.1%. Its MediaPipe file "
                            "(MediaPipe's own tokens and vocab.txt casings) agreed with the int8 file on 97.9% of "
                            "the test sentences, under that check's 99% floor, so it is not made",
              targets=(("test", "accuracy", 0.43),)),
    SharedSet("airline", "Twitter US Airline", "airline", "Tweets.csv", 3, "tweet_id", "text", "airline_sentiment",
              anchors="none standard", expected_test_rows=2_901,
              targets=(("test", "accuracy", 0.825), ("test", "macro_f1", 0.76))),
    SharedSet("zh-shopping", "Chinese shopping reviews", "zh-shopping", "online_shopping_10_cats.zip", 2,
              "row_index", "review", "label", anchors="none standard", skip_bad_rows=True,
              expected_test_rows=12_555, targets=(("test", "accuracy", 0.94),)),
)
SET_NAMES = tuple(s.name for s in SHARED_SETS)


@dataclass(frozen=True)
class SplitFiles:
    """The files one set is trained and scored on, and how they were made."""

    train: Path
    validation: Path | None
    test: Path
    reports: tuple[tuple[str, Path], ...]
    note: str
    train_rows: int
    test_rows: int


class SharedDataError(DatasetError):
    """A shared set's file is missing or not what its README says."""


# -- splits ------------------------------------------------------------------------------------------------------
def shared_set(name: str) -> SharedSet:
    for candidate in SHARED_SETS:
        if candidate.name == name:
            return candidate
    raise ConfigError(f"unknown shared set {name!r}; choose among {', '.join(SET_NAMES)}")


def spread(count: int, rows: int | None) -> list[int]:
    """Indices of ``rows`` rows spread evenly over ``count`` (all of them when rows is None or too many)."""
    if rows is None or rows >= count:
        return list(range(count))
    return sorted({int(i) for i in np.linspace(0, count - 1, rows)})


def _read_csv_records(data: bytes, source: str) -> tuple[list[str], list[list[str]]]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SharedDataError(f"{source}: not UTF-8 at byte {exc.start}") from None
    records = list(csv.reader(io.StringIO(text, newline="")))
    if not records:
        raise SharedDataError(f"{source}: empty")
    return records[0], records[1:]


def _write_csv(path: Path, header: Sequence[str], records: Sequence[Sequence[str]]) -> Path:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(records)
    return atomic_write_text(path, buffer.getvalue())


def _column(header: Sequence[str], name: str, source: str) -> int:
    names = [h.lstrip("\ufeff") for h in header]
    if name not in names:
        raise SharedDataError(f"{source}: no column {name!r}; columns: {', '.join(names)}")
    return names.index(name)


def split_airline(source: Path, out_dir: Path, rows: int | None = None) -> tuple[Path, Path, int, int]:
    """(train.csv, test.csv, train rows, test rows): test = rows whose tweet_id % 5 == 0, the README's rule."""
    header, records = _read_csv_records(source.read_bytes(), str(source))
    tweet_id = _column(header, "tweet_id", str(source))
    records = [records[i] for i in spread(len(records), rows)]
    train, test = [], []
    for line, record in enumerate(records, start=2):
        try:
            identifier = int(record[tweet_id])
        except (IndexError, ValueError):
            raise SharedDataError(f"{source}: record {line - 1}: tweet_id {record[tweet_id:tweet_id + 1]} is not "
                                  f"an integer") from None
        (test if identifier % SPLIT_EVERY == 0 else train).append(record)
    return (_write_csv(out_dir / "train.csv", header, train), _write_csv(out_dir / "test.csv", header, test),
            len(train), len(test))


def split_zh_shopping(source: Path, out_dir: Path, rows: int | None = None) -> tuple[Path, Path, int, int]:
    """(train.csv, test.csv, train rows, test rows): test = 0-based row index (header not counted) % 5 == 0.

    The index is the row's in the whole file, before any ``rows`` subset is taken.
    """
    with zipfile.ZipFile(source) as archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) != 1:
            raise SharedDataError(f"{source}: expected one CSV inside, found {len(members)} files")
        header, records = _read_csv_records(archive.read(members[0]), f"{source}:{members[0].filename}")
    train, test = [], []
    for index in spread(len(records), rows):
        (test if index % SPLIT_EVERY == 0 else train).append(records[index])
    return (_write_csv(out_dir / "train.csv", header, train), _write_csv(out_dir / "test.csv", header, test),
            len(train), len(test))


def _subset_lines(source: Path, target: Path, rows: int | None, header: bool) -> tuple[Path, int]:
    """A given line-per-row file, whole (read in place) or a spread of ``rows`` of its rows (copied to target)."""
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    head, body = (lines[:1], lines[1:]) if header else ([], lines)
    if rows is None:
        return source, len(body)
    chosen = [body[i] for i in spread(len(body), rows)]
    atomic_write_text(target, "".join(head + chosen))
    return target, len(chosen)


def make_splits(dataset: SharedSet, data_root: Path, out_dir: Path, rows: int | None = None) -> SplitFiles:
    """The set's files: given ones read in place (or subsets under out_dir), made ones written under out_dir."""
    folder = data_root / dataset.folder
    source = folder / dataset.train
    if not source.is_file():
        raise SharedDataError(f"{source}: missing (see {data_root / 'README.md'})")
    out_dir.mkdir(parents=True, exist_ok=True)
    subset = "" if rows is None else f"; a spread of at most {rows:,} rows of each file (--rows)"
    if dataset.split == "given":
        header = dataset.train.endswith(".tsv")
        train, train_rows = _subset_lines(source, out_dir / dataset.train, rows, header)
        given = {}
        for name in {dataset.validation, dataset.test, *(f for _, f in dataset.reports)} - {None}:
            path = folder / name
            if not path.is_file():
                raise SharedDataError(f"{path}: missing (see {data_root / 'README.md'})")
            given[name] = _subset_lines(path, out_dir / name, rows, header)
        test, test_rows = given[dataset.test]
        validation = given[dataset.validation][0] if dataset.validation else None
        reports = tuple((name, given[file][0]) for name, file in dataset.reports)
        note = (f"train on {dataset.train}" + (f", validation {dataset.validation}" if dataset.validation else
                                               ", validation split off it by `sentilite train`")
                + f", test {dataset.test}, as published" + subset)
    else:
        split = split_airline if dataset.split == "tweet_id" else split_zh_shopping
        train, test, train_rows, test_rows = split(source, out_dir, rows)
        validation = None
        reports = (("test", test),)
        rule = "tweet_id % 5 == 0" if dataset.split == "tweet_id" else "0-based row index % 5 == 0"
        note = (f"test: the rows of {dataset.train} whose {rule}; train: the rest, validation split off it by "
                f"`sentilite train`" + subset)
    if rows is None and dataset.expected_test_rows is not None and test_rows != dataset.expected_test_rows:
        raise SharedDataError(f"{dataset.name}: {test_rows:,} test rows, the README says "
                              f"{dataset.expected_test_rows:,}: not the published file or not its split rule")
    return SplitFiles(train, validation, test, reports, note, train_rows, test_rows)


# -- the chain: train, export, evaluate ---------------------------------------------------------------------------
def _cli() -> list[str]:
    return [sys.executable, "-m", "sentilite"]


def _run(command: Sequence[str], what: str, capture: bool = False) -> tuple[str, float]:
    """Run one sentilite command, its progress on our stderr; (stdout, seconds). A failure stops with the
    command's own error line."""
    log.info("%s: %s", what, " ".join(command[3:]))
    started = time.perf_counter()
    process = subprocess.Popen(list(command), stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE,
                               text=True, errors="replace")
    errors: list[str] = []

    def relay() -> None:  # the child's progress as it comes, and its error lines kept
        for line in process.stderr:
            sys.stderr.write(line)
            if ": error: " in line:
                errors.append(line.strip())

    relaying = threading.Thread(target=relay, daemon=True)
    relaying.start()
    stdout = process.stdout.read() if capture else ""
    returncode = process.wait()
    relaying.join()
    seconds = time.perf_counter() - started
    if returncode != 0:
        said = f": {errors[-1]}" if errors else ""
        raise SentiliteError(f"{what} failed (exit {returncode}){said} [{' '.join(command[3:])}]")
    return stdout, seconds


def _data_options(dataset: SharedSet) -> list[str]:
    options = []
    if dataset.text_column:
        options += ["--text-column", dataset.text_column]
    if dataset.label_column:
        options += ["--label-column", dataset.label_column]
    if dataset.skip_bad_rows:
        options.append("--skip-bad-rows")
    return options


def train_command(dataset: SharedSet, files: SplitFiles, model_dir: Path, train_args: Sequence[str] = ()) -> list[str]:
    command = [*_cli(), "train", "--cell", CELL, "--data", str(files.train)]
    if files.validation is not None:
        command += ["--validation-data", str(files.validation)]
    return command + ["--test-data", str(files.test), *_data_options(dataset), "--out", str(model_dir), "--quiet",
                      *train_args]


def evaluate_command(dataset: SharedSet, model_file: Path, data: Path) -> list[str]:
    return [*_cli(), "evaluate", str(model_file), "--data", str(data), *_data_options(dataset), "--json"]


def int8_files(model_dir: Path) -> list[dict]:
    """The manifest's 8-bit entries (``int8`` precision) that sentilite's runtime loads, TFLite first.

    A client's file (MediaPipe's) reads its client's token ids: its export already evaluated it with the client.
    """
    manifest = json.loads((model_dir / "manifest.json").read_text(encoding="utf-8"))
    files = [a for a in manifest["artifacts"] if a.get("precision") == "int8" and not a.get("client")]
    return sorted(files, key=lambda a: (a["format"] != "tflite", a["format"]))


def int8_left_out(model_dir: Path) -> list[dict]:
    """The 8-bit files export left out because they failed their check: file, format and the reason."""
    manifest = json.loads((model_dir / "manifest.json").read_text(encoding="utf-8"))
    return [{"file": s["file"], "format": s["format"], "reason": s["reason"]} for s in manifest.get("skipped", ())
            if s.get("failed_check") and s.get("precision") == "int8"]


def _missing_file(result: dict | None, fmt: str) -> str:
    """The cell of a file a result lacks: "left out" when export refused it, else "-"."""
    left_out = result.get("left_out", ()) if result else ()
    return "left out" if any(f["format"] == fmt for f in left_out) else "-"


def left_out_notes(result: dict, seed=None) -> list[str]:
    """One line per file a result's export left out, with why."""
    where = result["title"] + (f", training seed {seed}" if seed is not None else "")
    return [f"- {where}: {f['file']} left out: {f['reason']}" for f in result.get("left_out", ())]


# -- the peers ----------------------------------------------------------------------------------------------------
def fit_peers(model_dir: Path, workdir: Path, peers: Sequence[str], fasttext_grid=None, seed: int = 0) -> dict:
    """The peers fitted on the model's own splits: {name: peer}; fastText chosen on the model's validation texts."""
    from sentilite.bench.peers import FASTTEXT_GRID, require_fasttext, train_fasttext, train_tfidf

    from .config import RunConfig
    from .data import Reviews, load_training_data

    config = RunConfig.from_dict(json.loads((model_dir / "config.json").read_text(encoding="utf-8")),
                                 str(model_dir / "config.json"))
    data = load_training_data(config, progress=False)
    classes = len(data.label_names)
    character_words = config.tokenizer.character_words
    if data.validation is None:
        raise SharedDataError(f"{model_dir}: its data has no validation split to choose fastText's settings on")
    everything = Reviews(list(data.train.texts) + list(data.validation.texts),
                         np.concatenate([data.train.labels, data.validation.labels]).astype(np.int32))
    out = {}
    if "tfidf" in peers:
        out["tfidf"] = train_tfidf(everything, log.info, classes=classes, character_words=character_words)
    if "fasttext" in peers:
        require_fasttext()
        workdir.mkdir(parents=True, exist_ok=True)
        out["fasttext"] = train_fasttext(data.train, data.validation, everything, fasttext_grid or FASTTEXT_GRID,
                                         seed, workdir, log.info, classes=classes, character_words=character_words)
    return out


def score_peer(peer, dataset: SharedSet, path: Path, labels: Sequence[str]) -> ClassificationMetrics:
    """A peer on a report file, read as `sentilite evaluate` reads it for the model."""
    from sentilite.runtime.metrics import classification_metrics

    from .evaluate import read_for_model

    options = {"text_column": dataset.text_column, "label_column": dataset.label_column,
               "skip_bad_rows": dataset.skip_bad_rows}
    texts = read_for_model(path, labels, peer.name, **options)
    return classification_metrics(texts.labels, peer.probabilities(texts.texts), labels)


# -- one set ------------------------------------------------------------------------------------------------------
def run_set(dataset: SharedSet, data_root: Path, out_root: Path, *, rows: int | None = None,
            train_args: Sequence[str] = (), export_args: Sequence[str] = EXPORT_ARGS,
            peers: Sequence[str] = ("tfidf", "fasttext"), fasttext_grid=None, resume: bool = False) -> dict:
    """Split, train, export, evaluate and fit the peers for one set; its result (also OUT/<set>/result.json).

    ``resume``: a model trained (and exported) by an earlier run is kept, not trained again.
    """
    set_dir = out_root / dataset.name
    files = make_splits(dataset, data_root, set_dir / "data", rows)
    log.info("%s: %s (%s train, %s test rows)", dataset.name, files.note, f"{files.train_rows:,}",
             f"{files.test_rows:,}")
    model_dir = set_dir / "model"
    timing = set_dir / TRAIN_TIME_FILE
    if resume and timing.is_file() and (model_dir / "metrics.json").is_file():
        train_seconds = float(json.loads(timing.read_text(encoding="utf-8"))["train_seconds"])
        log.info("%s: train: kept %s (trained in %.0f s)", dataset.name, model_dir, train_seconds)
    else:
        _, train_seconds = _run(train_command(dataset, files, model_dir, train_args), f"{dataset.name}: train")
        atomic_write_json(timing, {"train_seconds": round(train_seconds, 1)})
    if resume and (model_dir / "manifest.json").is_file():
        log.info("%s: export: kept %s", dataset.name, model_dir / "manifest.json")
    else:
        # --skip-failing: a file that fails its check is a measurement too ("left out", and why), and the
        # set's other files are still scored
        _run([*_cli(), "export", str(model_dir), "--skip-failing", *export_args, *dataset.export_args],
             f"{dataset.name}: export")
    training = json.loads((model_dir / "metrics.json").read_text(encoding="utf-8"))
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    labels = tuple(config["model"].get("labels") or ("negative", "positive"))
    files_out = []
    left_out = int8_left_out(model_dir)
    for entry in int8_files(model_dir):
        scores = {}
        for report, path in files.reports:
            stdout, _ = _run(evaluate_command(dataset, model_dir / entry["file"], path),
                             f"{dataset.name}: evaluate {entry['file']} on {report}", capture=True)
            scores[report] = json.loads(stdout)["metrics"]
        files_out.append({"file": entry["file"], "format": entry["format"], "precision": entry["precision"],
                          "bytes": entry["bytes"], "metrics": scores})
    peer_results = {}
    for name, peer in fit_peers(model_dir, set_dir / "peers", peers, fasttext_grid).items():
        peer_results[name] = {"description": peer.description, "details": _json_ready(peer.details),
                              "metrics": {report: score_peer(peer, dataset, path, labels).to_dict()
                                          for report, path in files.reports}}
        log.info("%s: peer %s: test accuracy %.4f, macro-F1 %.4f", dataset.name, name,
                 peer_results[name]["metrics"]["test"]["accuracy"], peer_results[name]["metrics"]["test"]["macro_f1"])
    result = {
        "set": dataset.name, "title": dataset.title, "labels": list(labels), "seed": config["training"]["seed"],
        "split": files.note,
        "rows": {"train": files.train_rows, "test": files.test_rows}, "subset_rows": rows,
        "train_seconds": round(train_seconds, 1), "train_command": " ".join(train_command(
            dataset, files, model_dir, train_args)[3:]),
        "model": {"validation_accuracy": training.get("validation_accuracy"),
                  "test_accuracy": training.get("test_accuracy"), "data": training.get("data")},
        "files": files_out, "left_out": left_out, "peers": peer_results, "ablation": training.get("ablation"),
        "anchors": dataset.anchors,
    }
    atomic_write_json(set_dir / SET_RESULT_FILE, result)
    return result


def _json_ready(value):
    return json.loads(json.dumps(value, default=str))


# -- the table ----------------------------------------------------------------------------------------------------
def _pair(metrics: dict | None) -> str:
    return "-" if not metrics else f"{metrics['accuracy']:.4f} / {metrics['macro_f1']:.4f}"


def _ablation(result: dict) -> str:
    """The n-gram branch alone and the cell alone (test accuracy, with macro-F1 where training wrote it)."""
    ablation = result.get("ablation") or {}
    parts = []
    for key, name in (("ngrams_only", "n-grams"), ("cell_only", "cell")):
        part = ablation.get(key)
        if not part:
            continue
        accuracy = part.get("test_accuracy", part.get("accuracy"))
        f1 = part.get("test_macro_f1", part.get("macro_f1"))
        if accuracy is not None:
            parts.append(f"{name} {accuracy:.4f}" + (f" / {f1:.4f}" if f1 is not None else ""))
    return ", ".join(parts) or "-"


def table_rows(results: Sequence[dict]) -> list[str]:
    """One markdown row per set and report file: the int8 files' figures, the time, the peers, the ablation."""
    lines = ["| set | labels | scored on | rows (train / test) | int8 TFLite: accuracy / macro-F1 | bytes "
             "| int8 ONNX: accuracy / macro-F1 | bytes | training time | TF-IDF | fastText "
             "| ablation: one branch alone (test) |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for result in results:
        by_format = {f["format"]: f for f in result["files"]}
        reports = list(next(iter(by_format.values()))["metrics"]) if by_format else ["test"]
        for number, report in enumerate(reports):
            cells = []
            for fmt in ("tflite", "onnx"):
                entry = by_format.get(fmt)
                cells += [_pair(entry["metrics"].get(report)) if entry else _missing_file(result, fmt),
                          f"{entry['bytes']:,}" if entry else "-"]
            first = number == 0
            peers = result.get("peers", {})
            lines.append(
                f"| {result['title'] if first else ''} | {len(result['labels']) if first else ''} | {report} | "
                + (f"{result['rows']['train']:,} / {result['rows']['test']:,}" if first else "") + " | "
                + " | ".join(cells) + " | "
                + (f"{result['train_seconds'] / 60:.1f} min" if first else "") + " | "
                + _pair(peers.get("tfidf", {}).get("metrics", {}).get(report)) + " | "
                + _pair(peers.get("fasttext", {}).get("metrics", {}).get(report)) + " | "
                + (_ablation(result) if first and report == "test" else "") + " |")
    return lines


METRIC_NAMES = {"accuracy": "accuracy", "macro_f1": "macro-F1"}


def with_seed(result: dict, out_root: Path) -> dict:
    """A set's result with its training seed; one written before results recorded it gets the seed of the
    config.json beside it (None when that is gone)."""
    if "seed" in result:
        return result
    config = out_root / result["set"] / "model" / "config.json"
    seed = json.loads(config.read_text(encoding="utf-8"))["training"]["seed"] if config.is_file() else None
    return {**result, "seed": seed}


@dataclass(frozen=True)
class SeedRun:
    """An earlier run's datasets.json: its sets' results, and the sets that failed, with why."""

    sets: tuple[dict, ...]
    failed: dict[str, str]


def spread_section(results: Sequence[dict], seed_runs: Sequence[SeedRun]) -> list[str]:
    """The spread over training seeds of each target's figure, per 8-bit file: this run and ``seed_runs``
    (other runs: the same splits, another ``--seed``). A set that failed in a run shows "failed", and why below."""
    runs = [SeedRun(tuple(results), {}), *seed_runs]
    rows, notes = [], []
    seeds: list = [None] * len(runs)
    for dataset in SHARED_SETS:
        per_run = [next((r for r in run.sets if r["set"] == dataset.name), None) for run in runs]
        if per_run[0] is None:
            continue
        seeds = [r["seed"] if r else seed for r, seed in zip(per_run, seeds)]
        for number, run in enumerate(runs):
            seed = seeds[number] if seeds[number] is not None else "?"
            if dataset.name in run.failed:
                notes.append(f"- {dataset.title}, training seed {seed}: {run.failed[dataset.name]}")
            elif per_run[number] is not None:
                notes += left_out_notes(per_run[number], seed)
        for report, metric, floor in dataset.targets:
            for fmt, name in (("tflite", "int8 TFLite"), ("onnx", "int8 ONNX")):
                cells, values = [], []
                for r, run in zip(per_run, runs):
                    entry = next((f for f in r["files"] if f["format"] == fmt), None) if r else None
                    value = entry["metrics"].get(report, {}).get(metric) if entry else None
                    if value is not None:
                        values.append(value)
                    cells.append(f"{value:.4f}" if value is not None else
                                 "failed" if dataset.name in run.failed else _missing_file(r, fmt))
                known = np.array(values, np.float64)
                sd = f" ± {known.std(ddof=1):.4f}" if len(known) > 1 else ""
                rows.append(f"| {dataset.title} | {report} {METRIC_NAMES[metric]} >= {floor:g} | {name} | "
                            + " | ".join(cells) + f" | {f'{known.mean():.4f}{sd}' if len(known) else '-'} | "
                            f"{int((known >= floor).sum())} of {len(known)} |")
    lines = ["## Over training seeds", "",
             "The same splits with another training seed (`make datasets-seeds`: `--train-args '--seed N'`, the "
             "int8 files only, no peers; the splits keep their seed), each 8-bit file scored as above. Per target: "
             "the figure of each seed, the mean ± standard deviation (n - 1) of those measured, and how many of "
             "them reach it.", "",
             "| set | target | file | " + " | ".join(f"seed {s if s is not None else '?'}" for s in seeds)
             + " | mean ± sd | seeds at target |",
             "|---|---|---|" + "---:|" * len(runs) + "---:|---:|", *rows]
    if notes:
        lines += ["", "Files left out and runs that failed:", "", *notes]
    return lines


def render_doc(results: Sequence[dict], missing: Sequence[str] = (), failed: dict[str, str] | None = None,
               seed_runs: Sequence[SeedRun] = ()) -> str:
    """docs/datasets.md from the results (``missing``: sets not run yet; ``failed``: set -> error, of those;
    ``seed_runs``: other runs' results, for the spread over seeds)."""
    failed = failed or {}
    subset = sorted({r["subset_rows"] for r in results if r.get("subset_rows")})
    lines = [
        "# sentilite on data it was not built for",
        "",
        "Four public labeled sets (`../shared/data`, described in its README.md), read in place from their "
        "published files. For each, `make datasets` (`python -m sentilite.train.datasets`) trains the gru cell "
        "with `sentilite train --data ...` (sizes derived from the data), exports it with `sentilite export`, and "
        "scores each 8-bit file with `sentilite evaluate MODEL --data FILE`. The peers are fitted on the model's "
        "own splits (read back from its `config.json`): the TF-IDF reference of `sentilite baseline` (word "
        "unigrams and bigrams, logistic regression, multinomial for N labels), and fastText (supervised, its "
        "epochs, learning rate and word n-grams chosen on the model's validation texts, never on test, then "
        "fitted on training and validation). Each cell: accuracy / macro-F1.",
        "",
        "Splits: SST-2 trains on `train_full.tsv` (validation split off it) and is scored on `test-labeled.tsv` "
        "and on `dev.tsv`, where its published anchors are measured; SST-5 uses its train/dev/test files as "
        "given; airline: test = the tweets whose `tweet_id % 5 == 0`; zh-shopping: test = the rows whose 0-based "
        "index `% 5 == 0` (its one empty review is skipped and counted, `--skip-bad-rows`). Training time: the "
        "whole `sentilite train` command, every stage, on this 2-core machine. Ablation: the model's n-gram "
        "branch alone and its cell alone on the test texts, from the `ablation` of its metrics.json; the blend "
        "is the int8 columns.",
        "",
    ]
    if subset:
        lines += [f"**These figures come from a quick run on at most {subset[0]:,} rows of each file (`--rows`): "
                  "they check the chain, they are not the sets' numbers.**", ""]
    if results:
        lines += table_rows(results)
        lines += [f"| {shared_set(name).title} | " + (f"failed: {failed[name]}" if name in failed
                                                      else "not run yet (`make datasets`)") + " |"
                  for name in missing]
    else:
        lines.append("No figures yet: `make datasets` writes them here "
                     f"({', '.join(shared_set(name).title for name in missing)}).")
    left_out = [line for r in results for line in left_out_notes(r)]
    if left_out:
        lines += ["", "Files `sentilite export --skip-failing` left out (they failed their check against Keras):",
                  "", *left_out]
    with_options = [s for s in SHARED_SETS if s.export_args and s.name in {r["set"] for r in results}]
    for dataset in with_options:
        lines += ["", f"{dataset.title} is exported with `{' '.join(dataset.export_args)}`: {dataset.export_reason}."]
    if seed_runs:
        lines += ["", *spread_section(results, seed_runs)]
    lines += ["", "Published anchors (not measured here, for scale):", ""]
    lines += [f"- {s.title}: {s.anchors}" for s in SHARED_SETS]
    lines += ["", f"Every figure, per class and with the confusion matrices: `{RESULTS_FILE}` in the output folder "
              "(`artifacts/datasets/` by default).", "",
              "## The same on your own files", "",
              "    sentilite train --cell gru --data train.csv [--test-data test.csv] --out model",
              "    sentilite export model",
              "    sentilite evaluate model --data test.csv [--json] [--confusion-chart confusion.png]",
              "    sentilite baseline --model model --out baseline     # the TF-IDF reference on the model's splits",
              "",
              "`sentilite evaluate` needs no TensorFlow: it reads the file with the model's labels (a label the model "
              "lacks stops it, naming the label, its rows and its first line) and prints accuracy, macro-F1, "
              "precision, recall and F1 per label and the confusion matrix (rows: true label; columns: predicted).",
              ""]
    return "\n".join(lines)


def write_results(results: Sequence[dict], out_root: Path, doc: Path | None, missing: Sequence[str] = (),
                  failed: dict[str, str] | None = None, seed_runs: Sequence[SeedRun] = ()) -> Path:
    path = atomic_write_json(out_root / RESULTS_FILE, {"format_version": RESULTS_FORMAT_VERSION,
                                                       "sets": list(results), "failed": dict(failed or {})})
    if doc is not None:
        atomic_write_text(doc, render_doc(results, missing, failed, seed_runs))
    return path


def read_results(folder: Path) -> SeedRun:
    """An earlier run's datasets.json, checked."""
    path = folder / RESULTS_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        sets, failed = document["sets"], document.get("failed", {})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SharedDataError(f"{path}: not the results of a datasets run ({exc})") from None
    if not isinstance(sets, list) or not all(isinstance(r, dict) and "set" in r and "files" in r for r in sets):
        raise SharedDataError(f"{path}: not the results of a datasets run (no list of sets with their files)")
    if not isinstance(failed, dict) or not all(isinstance(v, str) for v in failed.values()):
        raise SharedDataError(f"{path}: not the results of a datasets run (its failures are not set: reason)")
    return SeedRun(tuple(with_seed(r, folder) for r in sets), dict(failed))


# -- the command --------------------------------------------------------------------------------------------------
def data_root(value: str | None) -> Path:
    return Path(value or os.environ.get(ENV_DATA_ROOT) or DEFAULT_DATA_ROOT).expanduser()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sentilite.train.datasets", description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", help=f"the shared data folder (default: ${ENV_DATA_ROOT}, else "
                                            f"{DEFAULT_DATA_ROOT})")
    parser.add_argument("--out", default="artifacts/datasets", help="output folder (default: %(default)s)")
    parser.add_argument("--doc", help="also write the table to this markdown file, e.g. docs/datasets.md")
    parser.add_argument("--sets", nargs="+", choices=SET_NAMES, default=list(SET_NAMES))
    parser.add_argument("--rows", type=int, help="a quick check: a spread of at most this many rows of each file")
    parser.add_argument("--peers", nargs="*", choices=("tfidf", "fasttext"), default=["tfidf", "fasttext"])
    parser.add_argument("--train-args", default="", help="more `sentilite train` options, e.g. '--max-epochs 1'")
    parser.add_argument("--export-args", default=" ".join(EXPORT_ARGS),
                        help="`sentilite export` options (default: none: every format and precision)")
    parser.add_argument("--resume", action="store_true",
                        help="keep what an earlier run finished: a set's result.json, else its trained or "
                             "exported model")
    parser.add_argument("--seed-runs", nargs="+", default=[], metavar="DIR",
                        help="output folders of runs with another --seed (e.g. --train-args '--seed 1'): their "
                             "figures go into the doc's spread table")
    args = parser.parse_args(argv)
    from sentilite.cli import configure_logging

    configure_logging()
    root, out_root = data_root(args.data_root), Path(args.out)
    if args.rows is not None and args.rows < 20:
        parser.error("--rows must be at least 20")
    try:  # before hours of training, not after
        seed_runs = [read_results(Path(folder)) for folder in args.seed_runs]
    except SentiliteError as exc:
        print(f"datasets: error: {exc}", file=sys.stderr)
        return 2
    results, failed = [], {}
    for number, name in enumerate(args.sets, start=1):
        dataset = shared_set(name)
        saved = out_root / name / SET_RESULT_FILE
        if args.resume and saved.is_file():
            log.info("%s (%d/%d): kept from %s", name, number, len(args.sets), saved)
            results.append(with_seed(json.loads(saved.read_text(encoding="utf-8")), out_root))
            continue
        log.info("%s (%d/%d): %s", name, number, len(args.sets), dataset.title)
        started = time.perf_counter()
        try:
            results.append(run_set(dataset, root, out_root, rows=args.rows, train_args=args.train_args.split(),
                                   export_args=args.export_args.split(), peers=args.peers, resume=args.resume))
        except SentiliteError as exc:  # one set's failure keeps the others' figures
            failed[name] = str(exc)
            print(f"datasets: error: {exc}", file=sys.stderr)
            continue
        log.info("%s (%d/%d): done in %.0f s", name, number, len(args.sets), time.perf_counter() - started)
        write_results(results, out_root, None, failed=failed)
    missing = [name for name in SET_NAMES if name not in {r["set"] for r in results}]
    path = write_results(results, out_root, Path(args.doc) if args.doc else None, missing, failed, seed_runs)
    print("\n".join(table_rows(results)))
    print(f"results: {path}" + (f", table: {args.doc}" if args.doc else ""))
    for name, error in failed.items():
        print(f"datasets: {name} failed: {error}", file=sys.stderr)
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
