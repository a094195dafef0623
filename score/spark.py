"""Scoring on Apache Spark: `sentilite score --engine spark` and `sentiment_udf` for your own Spark code.

The model file is checked on the driver, copied into a folder named by its
sha256 and name and shipped with ``SparkContext.addFile``; each Python worker loads
it once (a module-level cache that outlives tasks, as Spark reuses its
Python workers) and checks its sha256 first. Rows are parsed and scored by
the same functions as on one machine (``sentilite.score.records``), so a
float model gives the same answers, and the same ids, in both engines.

Resume on Spark: Spark retries failed tasks itself and commits a job's
output all at once; a killed driver's output is discarded and the job
redone by the same command. A finished job is never redone, and a restart
whose input, model or settings changed is refused, as on one machine.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sentilite.shared.errors import ModelFileError
from sentilite.shared.files import confined_path, parse_json, sha256_file

from .errors import ScoreInputError, ScoreOutputError
from .inputs import check_parquet_id_type, exists_here, fingerprint, format_of, is_remote, resolve_inputs
from .job import JOB_FILE, SUCCESS_FILE, SUMMARY_FILE, ModelSpec, Settings, check_restart, job_record, resolve_model
from .outputs import SHA_KEY, AnswerColumns, summary_counts
from .records import is_blank, rows_from_cells, rows_from_json_lines, rows_from_lines, score_rows

log = logging.getLogger("sentilite.score")
UDF_SCHEMA = "label string, p_positive double, error string"  # a binary sentiment model's; see udf_schema
SPARK_TEMP = "_temporary"  # what a killed Spark write leaves in its output folder
# Loaded models, one per model sha256 in each Python worker: Spark reuses a worker across tasks
# (spark.python.worker.reuse, on by default), so a model is read once per worker, not per task.
_WORKER_MODELS: dict = {}


@dataclass(frozen=True)
class ShippedModel:
    """A model shipped with the job: the SparkFiles name of its folder and the file to load from it."""

    folder: str
    entry: str  # "." for a package folder, else the model file's name
    spec: ModelSpec

    def load(self):
        """The model, in a Python worker: loaded on first use, checked against the driver's sha256."""
        model = _WORKER_MODELS.get(self.spec.sha256)
        if model is None:
            from pyspark import SparkFiles

            folder = Path(SparkFiles.get(self.folder))
            file = folder / Path(self.spec.file).name
            if sha256_file(file) != self.spec.sha256:
                raise ModelFileError(f"{file}: the shipped model's sha256 differs from the driver's "
                                     f"{self.spec.sha256}")
            model = self.spec.load(str(folder if self.entry == "." else file), num_threads=1)
            _WORKER_MODELS[self.spec.sha256] = model
        return model


def ship_model(spark, spec: ModelSpec) -> ShippedModel:
    """Copy the model file (with its package's manifest and tokenizer) to a folder named by what it holds
    and add it to the Spark job. The folder's path is the same on every call, as Spark refuses one name
    for two paths; a second call with the same model re-adds nothing. The name covers the file's sha256,
    its name and whether a package comes with it: the same bytes under another name, or alone where a
    package was shipped before, get a folder of their own."""
    shipped = f"{spec.sha256}\0{Path(spec.file).name}\0{'package' if spec.is_package else 'file'}"
    name = f"sentilite-model-{hashlib.sha256(shipped.encode()).hexdigest()[:16]}"
    staging = Path(tempfile.gettempdir()) / f"sentilite-spark-{os.getuid()}" / name
    if not staging.is_dir():
        staging.parent.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=staging.parent))
        if spec.is_package:
            from sentilite.runtime.model import MANIFEST_FILE, read_manifest

            package = Path(spec.path)
            tokenizer = read_manifest(package)["tokenizer"].get("file", "tokenizer.json")
            for file in (MANIFEST_FILE, tokenizer):
                shutil.copy2(confined_path(package, file, str(package), ModelFileError), building / file)
        shutil.copy2(spec.file, building / Path(spec.file).name)
        try:
            os.replace(building, staging)
        except OSError:  # another process staged it first
            shutil.rmtree(building, ignore_errors=True)
    spark.sparkContext.addFile(str(staging), recursive=True)
    return ShippedModel(name, "." if spec.is_package else Path(spec.file).name, spec)


def answer_fields(columns: AnswerColumns) -> str:
    """The answer's fields in Spark's DDL: the label, then its float columns (names quoted, as labels may be)."""
    return ", ".join(["label string"] + [f"`{name}` double" for name in columns.number_columns])


def udf_schema(columns: AnswerColumns) -> str:
    """The struct ``sentiment_udf`` returns: UDF_SCHEMA for a binary sentiment model."""
    if columns.sentiment:
        return UDF_SCHEMA
    return f"{answer_fields(columns)}, error string"


def answer_frame(columns: AnswerColumns, answers, errors: list) -> dict:
    """The answer columns of a pandas batch: nullable strings and floats, as Spark's Arrow reader takes them."""
    frame = {"label": pd.array(answers.labels, dtype="string")}
    for name, values in zip(columns.number_columns, columns.numbers(answers)):
        frame[name] = pd.array([None if v != v else v for v in values.tolist()], dtype="Float64")
    frame["error"] = pd.array(errors, dtype="string")
    return frame


def sentiment_udf(model_path: str, *, format: str | None = None, precision: str | None = None,
                  backend: str | None = None, spark=None):
    """A pandas UDF that adds the model's answer inside your own Spark code.

    ``df.withColumn("sentiment", sentiment_udf("/models/gru")("review"))``
    gives a struct column ``sentiment``: ``label``, ``p_positive`` and
    ``error`` for a binary sentiment model; ``label``, ``score`` (the
    probability of that label), one ``p_<label>`` per label and ``error``
    for any other (``outputs.AnswerColumns``). The answer is null, and error
    says why, for a row whose text is missing or not text. ``model_path`` is
    read on the driver.
    """
    from pyspark.sql import SparkSession
    from pyspark.sql.functions import pandas_udf

    spark = spark or SparkSession.getActiveSession()
    if spark is None:
        raise ScoreInputError("sentiment_udf needs a running SparkSession; create one first")
    spec, _ = resolve_model(model_path, format, precision, backend)
    shipped = ship_model(spark, spec)
    columns = spec.columns

    @pandas_udf(udf_schema(columns))
    def sentiment(texts: pd.Series) -> pd.DataFrame:
        rows = rows_from_cells(texts.tolist(), [None] * len(texts))
        answers = score_rows(shipped.load(), rows)
        if columns.sentiment:  # as sentiment_udf has always answered
            return pd.DataFrame({"label": answers.labels, "p_positive": columns.numbers(answers)[0],
                                 "error": rows.errors})
        return pd.DataFrame(answer_frame(columns, answers, rows.errors))

    return sentiment


# -- the `--engine spark` job --------------------------------------------------------------
def spark_session(master: str | None = None, quiet: bool = False):
    """(session, created here): the active session if there is one (spark-submit, a notebook, a test)."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    if "PYSPARK_PYTHON" not in os.environ and "PYSPARK_GATEWAY_PORT" not in os.environ:
        # Started from plain `python`: local Python workers must run this interpreter, which has sentilite.
        os.environ["PYSPARK_PYTHON"] = sys.executable
    builder = SparkSession.builder.appName("sentilite-score")
    if master:
        builder = builder.master(master)
    builder = builder.config("spark.ui.showConsoleProgress", "false" if quiet else "true")
    session = builder.getOrCreate()
    if quiet:
        session.sparkContext.setLogLevel("ERROR")
    return session, True


def local_name(uri: str) -> str:
    """The ``source`` of a row: a local file's path as the local engine names it, any other URI as is."""
    if uri.startswith("file:"):
        return urllib.parse.unquote(urllib.parse.urlparse(uri).path)
    return uri


class HadoopFolder:
    """The output folder through Hadoop's FileSystem, so local paths, HDFS and object stores all work."""

    def __init__(self, spark, uri: str):
        jvm = spark.sparkContext._jvm
        self._jvm = jvm
        self.path = jvm.org.apache.hadoop.fs.Path(uri)
        self.fs = self.path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())

    def names(self) -> list[str]:
        if not self.fs.exists(self.path):
            return []
        if not self.fs.getFileStatus(self.path).isDirectory():
            raise ScoreOutputError(f"{self.path}: exists and is not a folder; --out names a folder of parts")
        return [status.getPath().getName() for status in self.fs.listStatus(self.path)]

    def read_text(self, name: str) -> str:
        stream = self.fs.open(self._jvm.org.apache.hadoop.fs.Path(self.path, name))
        try:
            return self._jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
        finally:
            stream.close()

    def write_text(self, name: str, text: str) -> None:
        stream = self.fs.create(self._jvm.org.apache.hadoop.fs.Path(self.path, name), True)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()

    def delete(self) -> None:
        if self.fs.exists(self.path):
            self.fs.delete(self.path, True)


def _input_paths(input: str, input_format: str | None, out: str) -> tuple[list[str], str, list[dict]]:
    """(paths for Spark, format, fingerprints).

    Input on this machine is resolved as the local engine resolves it, and
    handed to Spark as file: URIs. Anything else (a URI, or a path on the
    cluster's default file system) goes to Spark as given.
    """
    if is_remote(input) or not exists_here(input):
        fmt = input_format or format_of(input.rstrip("/*"))
        if fmt is None:
            raise ScoreInputError(f"{input}: cannot tell the format from the name; pass --input-format")
        return [input], fmt, [{"path": input}]
    exclude = None if is_remote(out) else Path(out.removeprefix("file://"))
    inputs = resolve_inputs(input, input_format, exclude=exclude)
    # "file:" + the plain path, not Path.as_uri(): Hadoop's Path escapes the string itself.
    return [f"file:{p}" for p in inputs.files], inputs.format, [fingerprint(p) for p in inputs.files]


def read_input(spark, paths: list[str], fmt: str, text_column: str, id_column: str | None):
    """The input as a DataFrame of the text, the id (if named) and where each row comes from."""
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F

    try:
        return _read_input(spark, F, paths, fmt, text_column, id_column)
    except AnalysisException as exc:  # e.g. [PATH_NOT_FOUND]
        raise ScoreInputError(f"Spark cannot read {', '.join(paths[:3])}: {str(exc).splitlines()[0]}") from None


def _read_input(spark, F, paths, fmt, text_column, id_column):
    if fmt in ("text", "jsonl"):
        if fmt == "text" and id_column:
            raise ScoreInputError("plain text input has no columns: its ids are line numbers; drop --id-column")
        df = spark.read.text(paths)
        return df.select(F.col("value").alias("_value"), F.col("_metadata.file_path").alias("_path"),
                         F.col("_metadata.file_block_start").alias("_block"))
    if fmt == "csv":
        # RFC 4180 quoting ("" inside quotes), as Python's csv module reads it; records may span lines.
        df = spark.read.options(header=True, multiLine=True, escape='"', encoding="UTF-8").csv(paths)
    elif fmt == "parquet":
        df = spark.read.parquet(*paths)
    else:
        raise ScoreInputError(f"unknown input format {fmt!r}")
    for role, column in (("--text-column", text_column), ("--id-column", id_column)):
        if column and column not in df.columns:
            raise ScoreInputError(f"{paths[0]}: no column {column!r} for {role}; its columns are "
                                  f"{', '.join(map(repr, df.columns[:20]))}")
    if fmt == "parquet" and id_column:
        check_parquet_id_type(df.schema[id_column].dataType.simpleString(), id_column, paths[0])
    columns = [F.col(f"`{text_column}`").alias("_value"), F.col("_metadata.file_path").alias("_path")]
    if fmt == "parquet":
        columns.append(F.col("_metadata.row_index").alias("_row"))
    else:
        columns.append(F.col("_metadata.file_block_start").alias("_block"))
    if id_column:
        columns.append(F.col(f"`{id_column}`").alias("_id"))
    return df.select(*columns)


def split_offsets(df) -> dict:
    """Rows before each file split, so a row's line (or record) number is offset + its place in the split.

    Spark reads a split within one task, in order; its rows' places come
    from counting in the task, the offsets from this one small aggregation.
    """
    counts: dict[str, list] = {}
    for row in df.groupBy("_path", "_block").count().collect():
        counts.setdefault(row["_path"], []).append((row["_block"], row["count"]))
    offsets = {}
    for path, blocks in counts.items():
        before = 0
        for block, count in sorted(blocks):
            offsets[(path, block)] = before
            before += count
    return offsets


def score_partitions(shipped: ShippedModel, fmt: str, text_column: str, id_column: str | None, id_type: str,
                     offsets: dict):
    """The mapInPandas function: raw rows of one partition in, scored rows out."""
    columns = shipped.spec.columns

    def score_partition(batches):
        model = shipped.load()
        seen: dict = {}
        for batch in batches:
            paths = batch["_path"].tolist()
            values = batch["_value"].tolist()
            if fmt == "parquet":
                positions = (batch["_row"] + 1).tolist()
            else:
                positions = []
                for key in zip(paths, batch["_block"].tolist()):
                    seen[key] = seen.get(key, 0) + 1
                    positions.append(offsets[key] + seen[key])
            if fmt == "text":
                rows = rows_from_lines(values, positions)
            elif fmt == "jsonl":
                kept = [i for i, line in enumerate(values) if not is_blank(line)]
                paths = [paths[i] for i in kept]
                rows = rows_from_json_lines([values[i] for i in kept], [positions[i] for i in kept], text_column,
                                            id_column)
            else:
                ids = batch["_id"].tolist() if id_column else positions
                if id_column and fmt == "csv":
                    ids = [v or None for v in ids]
                rows = rows_from_cells(values, ids)
            yield pd.DataFrame({
                "id": pd.array(rows.ids, dtype="Int64" if id_type == "int64" else "string"),
                "source": [local_name(p) for p in paths],
                **answer_frame(columns, score_rows(model, rows), rows.errors),
            })

    return score_partition


def run_spark(input: str, spec: ModelSpec, out: str, *, text_column: str, id_column: str | None,
              input_format: str | None, master: str | None, quiet: bool, spark=None) -> dict:
    from pyspark.sql import functions as F

    started = time.perf_counter()
    paths, fmt, inputs = _input_paths(input, input_format, out)
    settings = Settings("spark", fmt, text_column, id_column, "parquet", 0)
    record = job_record(settings, inputs, spec)
    session, created = (spark, False) if spark is not None else spark_session(master, quiet)
    startup = time.perf_counter() - started
    try:
        folder = HadoopFolder(session, out)
        names = folder.names()
        if JOB_FILE in names:
            old = parse_json(folder.read_text(JOB_FILE), f"{out}/{JOB_FILE}", ScoreOutputError)
            check_restart(out, old, record)
            if SUCCESS_FILE in names and SUMMARY_FILE in names:
                log.info("%s: already complete, nothing to do", out)
                summary = parse_json(folder.read_text(SUMMARY_FILE), f"{out}/{SUMMARY_FILE}", ScoreOutputError)
                summary["already_complete"] = True
                return summary
        else:
            foreign = [n for n in names if not n.startswith(".") and n != SPARK_TEMP]
            if foreign:
                raise ScoreOutputError(f"{out}: the folder is not empty and holds no {JOB_FILE} "
                                       f"(e.g. {foreign[0]}); choose a new or empty --out folder")
        # A killed run's output is discarded whole: Spark cannot tell its committed parts from the rest.
        folder.delete()
        folder.write_text(JOB_FILE, json.dumps(record, indent=2) + "\n")
        shipped = ship_model(session, spec)
        df = read_input(session, paths, fmt, text_column, id_column)
        if fmt == "parquet" and id_column:
            from pyspark.sql.types import IntegralType

            id_type = "int64" if isinstance(df.schema["_id"].dataType, IntegralType) else "string"
        else:
            id_type = "string" if id_column else "int64"
        counting_started = time.perf_counter()
        offsets = split_offsets(df) if fmt != "parquet" else {}
        counting = time.perf_counter() - counting_started
        columns = spec.columns
        schema = (f"id {'bigint' if id_type == 'int64' else 'string'}, source string, {answer_fields(columns)}, "
                  f"error string")
        scored = df.mapInPandas(score_partitions(shipped, fmt, text_column, id_column, id_type, offsets), schema)
        scored = scored.withColumn("label", F.col("label").alias("label", metadata={SHA_KEY: spec.sha256}))
        log.info("scoring %s with %s (sha256 %s) on Spark %s", input, Path(spec.file).name, spec.sha256[:12],
                 session.sparkContext.master)
        scoring_started = time.perf_counter()
        scored.write.mode("append").parquet(out)
        scoring = time.perf_counter() - scoring_started
        written = session.read.parquet(out)
        counts = written.agg(F.count(F.lit(1)).alias("rows"), F.count("error").alias("errors"),
                             *[F.sum((F.col("label") == label).cast("long")).alias(f"label_{i}")
                               for i, label in enumerate(spec.labels)]).first()
        rows, errors = counts["rows"], counts["errors"]
        label_counts = [counts[f"label_{i}"] or 0 for i in range(len(spec.labels))]
        seconds = time.perf_counter() - started
        summary = {
            "out": out, "engine": "spark", "master": session.sparkContext.master, "format": "parquet",
            **summary_counts(columns, rows, errors, label_counts),
            "parts": sum(1 for n in folder.names() if n.startswith("part-")),
            "seconds": round(seconds, 3), "seconds_startup": round(startup, 3),
            "seconds_counting_lines": round(counting, 3), "seconds_scoring": round(scoring, 3),
            "rows_per_s": round(rows / seconds, 1) if seconds > 0 else None,
            "model": spec.describe(),
        }
        folder.write_text(SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
        return summary
    finally:
        if created:
            session.stop()
