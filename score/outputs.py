"""Output parts: one file per input chunk, written to a temp name and renamed into place when complete.

Columns, in every engine: ``id``, ``source`` (the input file), the answer
columns of ``AnswerColumns`` (null for a row with an error) and ``error``.
A binary sentiment model (labels negative, positive) answers ``label`` and
``p_positive``; any other model ``label``, ``score`` (the probability of
that label) and one ``p_<label>`` column per label, in label order.

A one-machine Parquet part carries the model's sha256 in its key-value
metadata (``sentilite.model_sha256``) and in the ``label`` column's field
metadata; Spark parts carry it in the ``label`` column's metadata, which
Spark keeps in the file footer. JSON Lines parts have no metadata of their
own: the output folder's ``_sentilite_job.json`` holds it.
"""
from __future__ import annotations

import json
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sentilite import __version__
from sentilite.runtime.architecture import BINARY_LABELS
from sentilite.shared.files import atomic_write

from .errors import LabelColumnError
from .records import Answers

OUTPUT_FORMATS = ("parquet", "jsonl")
COLUMNS = ("id", "source", "label", "p_positive", "error")  # a binary sentiment model's
SHA_KEY = "sentilite.model_sha256"
SPARK_ROW_METADATA = "org.apache.spark.sql.parquet.row.metadata"
PROBABILITY_PREFIX = "p_"


def probability_column(label: str) -> str:
    """``p_`` and the label made safe for a column name in Parquet, Spark, pandas and SQL.

    The label is NFKC-normalized and lower-cased (Spark matches column names
    without regard to case), and each run of characters other than letters,
    marks, digits and ``_`` becomes one ``_``, trimmed at both ends:
    ``"Very Negative"`` -> ``p_very_negative``, ``"4 stars"`` -> ``p_4_stars``,
    ``"正面"`` -> ``p_正面``. A label with no letter or digit at all is spelled
    by its code points: ``":)"`` -> ``p_u003a_u0029``.
    """
    kept = "".join(c if c == "_" or unicodedata.category(c)[0] in "LMN" else " "
                   for c in unicodedata.normalize("NFKC", label).lower())
    safe = "_".join(kept.split())
    if not safe.strip("_"):
        safe = "_".join(f"u{ord(c):04x}" for c in label)
    return PROBABILITY_PREFIX + safe.strip("_")


@dataclass(frozen=True)
class AnswerColumns:
    """Which columns hold a row's answer, from the model's labels.

    A binary sentiment model keeps the columns sentilite has always written
    (``label``, ``p_positive``), byte for byte. Every other model, a
    two-label one with other names (``("0", "1")``, ``("ham", "spam")``)
    included, gets ``label``, ``score`` and one ``p_<label>`` per label:
    ``p_positive`` would misname P(labels[1]) there.
    """

    labels: tuple[str, ...]
    probability_columns: tuple[str, ...]  # ("p_positive",) for a binary sentiment model, else one per label

    @classmethod
    def for_labels(cls, labels, model_file: str) -> AnswerColumns:
        """The columns for these labels; two labels that get one column name are refused, naming both."""
        labels = tuple(labels)
        if labels == BINARY_LABELS:
            return cls(labels, ("p_positive",))
        seen: dict[str, str] = {}
        for label in labels:
            column = probability_column(label)
            if column in seen:
                raise LabelColumnError(f"{model_file}: labels {seen[column]!r} and {label!r} both become the "
                                       f"output column {column!r}; train the model with labels that differ in "
                                       f"more than case and punctuation")
            seen[column] = label
        return cls(labels, tuple(seen))

    @property
    def sentiment(self) -> bool:
        """A binary sentiment model: labels negative, positive; the summary counts positive and negative rows."""
        return self.labels == BINARY_LABELS

    @property
    def number_columns(self) -> tuple[str, ...]:
        """The answer's float columns, in output order: ``score`` (not for sentiment) and the probabilities."""
        return self.probability_columns if self.sentiment else ("score",) + self.probability_columns

    @property
    def names(self) -> tuple[str, ...]:
        """Every output column, in order."""
        return ("id", "source", "label") + self.number_columns + ("error",)

    def numbers(self, answers: Answers) -> list[np.ndarray]:
        """The float64 values of ``number_columns`` (NaN for a row with an error), one array per column."""
        probabilities = answers.probabilities
        if self.sentiment:
            return [np.ascontiguousarray(probabilities[:, 1])]
        return [answers.scores] + [np.ascontiguousarray(probabilities[:, i]) for i in range(len(self.labels))]

    def counts(self, labels: list, errors: list) -> PartCounts:
        """How many rows a part has, how many errors, and how many got each label."""
        index = {label: i for i, label in enumerate(self.labels)}
        per_label = [0] * len(self.labels)
        for label in labels:
            if label is not None:
                per_label[index[label]] += 1
        return PartCounts(len(labels), sum(e is not None for e in errors), tuple(per_label))


@dataclass(frozen=True)
class PartCounts:
    """A part's rows, rows with an error, and rows per label (label order): its share of the summary."""

    rows: int
    errors: int
    label_counts: tuple[int, ...]

    def metadata(self, columns: AnswerColumns) -> dict[str, str]:
        """The Parquet key-value entries a resumed run reads back (a sentiment model's as they have always been)."""
        meta = {"sentilite.part_rows": str(self.rows), "sentilite.part_errors": str(self.errors)}
        if columns.sentiment:
            meta["sentilite.part_positive"] = str(self.label_counts[1])
        else:
            meta["sentilite.part_label_counts"] = json.dumps(list(self.label_counts))
        return meta


def summary_counts(columns: AnswerColumns, rows: int, errors: int, label_counts) -> dict:
    """The counts of a run's summary: a sentiment model's positive and negative rows, else rows per label."""
    counts = {"rows": rows, "scored": rows - errors, "errors": errors}
    if columns.sentiment:
        positive = int(label_counts[1])
        return {**counts, "positive": positive, "negative": rows - errors - positive}
    return {**counts, "label_counts": {label: int(n) for label, n in zip(columns.labels, label_counts)}}


@dataclass(frozen=True)
class PartWriter:
    """How a part is written: where, in which format, with which id type, answer columns and model metadata."""

    out: str
    format: str  # parquet | jsonl
    id_type: str  # int64 | string
    model_sha256: str
    model_file: str
    columns: AnswerColumns

    @property
    def suffix(self) -> str:
        return ".parquet" if self.format == "parquet" else ".jsonl"

    def part_name(self, file_index: int, chunk_index: int) -> str:
        return f"part-{file_index:05d}-{chunk_index:05d}{self.suffix}"

    def write(self, name: str, ids: list, source: str, answers: Answers, errors: list) -> PartCounts:
        """Write one part atomically; return its counts."""
        counts = self.columns.counts(answers.labels, errors)
        numbers = self.columns.numbers(answers)
        path = Path(self.out) / name
        if self.format == "parquet":
            atomic_write(path, lambda handle: self._write_parquet(handle, ids, source, answers.labels, numbers,
                                                                  errors, counts))
        else:
            atomic_write(path, lambda handle: handle.write(
                _jsonl(self.columns, ids, source, answers.labels, numbers, errors)))
        return counts

    def _write_parquet(self, handle, ids, source, labels, numbers, errors, counts: PartCounts) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table(
            [pa.array(ids, type=pa.int64() if self.id_type == "int64" else pa.string()),
             pa.array([source] * len(ids), type=pa.string()).dictionary_encode(),
             pa.array(labels, type=pa.string()),
             *[pa.array(values, type=pa.float64(), mask=np.isnan(values)) for values in numbers],
             pa.array(errors, type=pa.string())],
            schema=self.schema(counts))
        pq.write_table(table, handle, compression="snappy")

    def schema(self, counts: PartCounts | None = None):
        import pyarrow as pa

        meta = {SHA_KEY: self.model_sha256, "sentilite.model_file": self.model_file,
                "sentilite.version": __version__}
        if counts is not None:
            meta.update(counts.metadata(self.columns))
        return pa.schema([
            pa.field("id", pa.int64() if self.id_type == "int64" else pa.string()),
            pa.field("source", pa.dictionary(pa.int32(), pa.string())),
            pa.field("label", pa.string(), metadata={SHA_KEY: self.model_sha256}),
            *[pa.field(name, pa.float64()) for name in self.columns.number_columns],
            pa.field("error", pa.string()),
        ], metadata=meta)


def _jsonl(columns: AnswerColumns, ids, source, labels, numbers, errors) -> bytes:
    names = columns.number_columns
    lines = []
    for i, row_id in enumerate(ids):
        row = {"id": row_id, "source": source, "label": labels[i]}
        for name, values in zip(names, numbers):
            row[name] = None if np.isnan(values[i]) else float(values[i])
        row["error"] = errors[i]
        lines.append(json.dumps(row, ensure_ascii=False))
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


def part_counts(path: Path, columns: AnswerColumns) -> PartCounts:
    """Counts of a part written earlier (a resumed run's summary covers every part)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        meta = pq.read_metadata(path).metadata or {}
        try:
            rows, errors = (int(meta[f"sentilite.part_{k}".encode()]) for k in ("rows", "errors"))
            if columns.sentiment:
                positive = int(meta[b"sentilite.part_positive"])
                return PartCounts(rows, errors, (rows - errors - positive, positive))
            label_counts = tuple(int(n) for n in json.loads(meta[b"sentilite.part_label_counts"]))
            if len(label_counts) == len(columns.labels):
                return PartCounts(rows, errors, label_counts)
        except (KeyError, ValueError, TypeError):
            pass
        table = pq.read_table(path, columns=["label", "error"])
        labels, errors = table.column("label").to_pylist(), table.column("error").to_pylist()
    else:
        labels, errors = [], []
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                labels.append(row["label"])
                errors.append(row["error"])
    return columns.counts(labels, errors)


def model_sha256_of(path: str | os.PathLike) -> str | None:
    """The model sha256 a Parquet part was scored with, whichever engine wrote it."""
    import pyarrow.parquet as pq

    meta = pq.read_metadata(path).metadata or {}
    if SHA_KEY.encode() in meta:
        return meta[SHA_KEY.encode()].decode()
    spark = meta.get(SPARK_ROW_METADATA.encode())
    if spark:
        for field in json.loads(spark).get("fields", []):
            if SHA_KEY in (field.get("metadata") or {}):
                return field["metadata"][SHA_KEY]
    return None
