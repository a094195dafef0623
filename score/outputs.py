"""Output parts: one file per input chunk, written to a temp name and renamed into place when complete.

Columns, in every engine: ``id``, ``source`` (the input file), ``label``
(null for a row with an error), ``p_positive`` (P(positive), null likewise)
and ``error``. A one-machine Parquet part carries the model's sha256 in its
key-value metadata (``sentilite.model_sha256``) and in the ``label``
column's field metadata; Spark parts carry it in the ``label`` column's
metadata, which Spark keeps in the file footer. JSON Lines parts have no
metadata of their own: the output folder's ``_sentilite_job.json`` holds it.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sentilite import __version__
from sentilite.shared.files import atomic_write

OUTPUT_FORMATS = ("parquet", "jsonl")
COLUMNS = ("id", "source", "label", "p_positive", "error")
SHA_KEY = "sentilite.model_sha256"
SPARK_ROW_METADATA = "org.apache.spark.sql.parquet.row.metadata"


@dataclass(frozen=True)
class PartWriter:
    """How a part is written: where, in which format, with which id type and model metadata."""

    out: str
    format: str  # parquet | jsonl
    id_type: str  # int64 | string
    model_sha256: str
    model_file: str
    positive_label: str  # the model's second label: counted as positive in the summary

    @property
    def suffix(self) -> str:
        return ".parquet" if self.format == "parquet" else ".jsonl"

    def part_name(self, file_index: int, chunk_index: int) -> str:
        return f"part-{file_index:05d}-{chunk_index:05d}{self.suffix}"

    def write(self, name: str, ids: list, source: str, labels: list, positive: np.ndarray,
              errors: list) -> dict:
        """Write one part atomically; return its counts (rows, errors, positive)."""
        stats = {"rows": len(ids), "errors": sum(e is not None for e in errors),
                 "positive": sum(1 for label in labels if label == self.positive_label)}
        path = Path(self.out) / name
        if self.format == "parquet":
            atomic_write(path, lambda handle: self._write_parquet(handle, ids, source, labels, positive, errors, stats))
        else:
            atomic_write(path, lambda handle: handle.write(_jsonl(ids, source, labels, positive, errors)))
        return stats

    def _write_parquet(self, handle, ids, source, labels, positive, errors, stats) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table(
            [pa.array(ids, type=pa.int64() if self.id_type == "int64" else pa.string()),
             pa.array([source] * len(ids), type=pa.string()).dictionary_encode(),
             pa.array(labels, type=pa.string()),
             pa.array(positive, type=pa.float64(), mask=np.isnan(positive)),
             pa.array(errors, type=pa.string())],
            schema=self.schema(stats))
        pq.write_table(table, handle, compression="snappy")

    def schema(self, stats: dict | None = None):
        import pyarrow as pa

        meta = {SHA_KEY: self.model_sha256, "sentilite.model_file": self.model_file,
                "sentilite.version": __version__}
        if stats is not None:
            meta.update({f"sentilite.part_{k}": str(v) for k, v in stats.items()})
        return pa.schema([
            pa.field("id", pa.int64() if self.id_type == "int64" else pa.string()),
            pa.field("source", pa.dictionary(pa.int32(), pa.string())),
            pa.field("label", pa.string(), metadata={SHA_KEY: self.model_sha256}),
            pa.field("p_positive", pa.float64()),
            pa.field("error", pa.string()),
        ], metadata=meta)


def _jsonl(ids, source, labels, positive, errors) -> bytes:
    lines = []
    for i, row_id in enumerate(ids):
        p = positive[i]
        lines.append(json.dumps({"id": row_id, "source": source, "label": labels[i],
                                 "p_positive": None if np.isnan(p) else float(p), "error": errors[i]},
                                ensure_ascii=False))
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


def part_stats(path: Path, positive_label: str) -> dict:
    """Counts of a part written earlier (a resumed run's summary covers every part)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        meta = pq.read_metadata(path).metadata or {}
        try:
            return {k: int(meta[f"sentilite.part_{k}".encode()]) for k in ("rows", "errors", "positive")}
        except KeyError:
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
    return {"rows": len(labels), "errors": sum(e is not None for e in errors),
            "positive": sum(1 for label in labels if label == positive_label)}


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
