"""Input files: which files a file, folder or glob names, their format, and reading them in chunks.

Formats: ``text`` (one text a line), ``jsonl``, ``csv`` (a header row) and
``parquet``; text, JSON Lines and CSV may be gzip-compressed (``.gz``).
Names starting with ``_`` or ``.`` are skipped in folders, as Spark and
Arrow skip them (``_SUCCESS``, ``.crc`` files, half-written temp files).

A chunk is ``part_rows`` consecutive rows of one file; for text and JSON
Lines a row is a line, blank ones included, so line numbers and chunk
boundaries never depend on the content. The same file always gives the same
chunks: that is what lets a restarted run skip the parts it already wrote.
"""
from __future__ import annotations

import csv
import glob
import gzip
import hashlib
import io
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import ScoreInputError

FORMATS = ("text", "jsonl", "csv", "parquet")
SUFFIX_FORMATS = {".txt": "text", ".text": "text", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
                  ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
# csv's default field limit is 128 KiB; a review or ticket can be longer. Still capped: a file
# with an unbalanced quote otherwise reads the rest of itself into one field.
MAX_CSV_FIELD = 64 << 20
FINGERPRINT_BYTES = 1 << 20


@dataclass(frozen=True)
class InputFiles:
    """The files to score, in the order their parts are numbered, and their one format."""

    files: tuple[Path, ...]
    format: str


@dataclass
class Chunk:
    """``count`` consecutive rows of one file, starting at row ``first`` (1-based)."""

    first: int
    count: int
    kind: str  # "lines" (payload: the raw lines) or "cells" (payload: (texts, ids))
    payload: object


def is_remote(spec: str) -> bool:
    """A URI such as s3a://bucket/x or hdfs:///x: only Spark reads those."""
    return "://" in spec and not spec.startswith("file://")


def exists_here(spec: str) -> bool:
    """Whether a file, folder or glob names something on this machine's file system."""
    spec = spec.removeprefix("file://")
    return Path(spec).exists() or (glob.has_magic(spec) and bool(glob.glob(spec, recursive=True)))


def format_of(path: str | os.PathLike) -> str | None:
    name = Path(str(path)).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return SUFFIX_FORMATS.get(Path(name).suffix)


def resolve_inputs(spec: str, input_format: str | None = None, exclude: Path | None = None) -> InputFiles:
    """The files named by a file, a folder (read recursively) or a glob, sorted, with their format.

    Files under ``exclude`` (the output folder) are never input: an output
    inside the input folder would otherwise be read by its own restart.
    """
    if spec.startswith("file://"):
        spec = spec[len("file://"):]
    path = Path(spec)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(p.relative_to(path)))
        if not files:
            raise ScoreInputError(f"{spec}: the folder holds no input files")
    elif glob.has_magic(spec):
        files = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
        if not files:
            raise ScoreInputError(f"{spec}: no file matches this pattern")
    else:
        raise ScoreInputError(f"{spec}: no such input file, folder or glob pattern")
    files = [p.resolve() for p in files]
    if exclude is not None:
        exclude = exclude.resolve()
        files = [p for p in files if exclude not in p.parents]
        if not files:
            raise ScoreInputError(f"{spec}: no input files outside the output folder {exclude}")
    if input_format is None:
        formats = {p: format_of(p) for p in files}
        unknown = [str(p) for p, f in formats.items() if f is None]
        if unknown:
            raise ScoreInputError(f"cannot tell the format of {unknown[0]}" + (f" and {len(unknown) - 1} more"
                                  if len(unknown) > 1 else "") +
                                  f" from its name; pass --input-format ({', '.join(FORMATS)})")
        found = sorted(set(formats.values()))
        if len(found) > 1:
            raise ScoreInputError(f"{spec}: the input mixes formats ({', '.join(found)}); score each format "
                                  f"separately or pass --input-format")
        input_format = found[0]
    elif input_format not in FORMATS:
        raise ScoreInputError(f"unknown input format {input_format!r}; choose one of {', '.join(FORMATS)}")
    if input_format == "parquet" and any(p.name.lower().endswith(".gz") for p in files):
        raise ScoreInputError("gzip-compressed Parquet files are not supported: Parquet compresses its own pages")
    return InputFiles(tuple(files), input_format)


def _hidden(relative: Path) -> bool:
    return any(part.startswith(("_", ".")) for part in relative.parts)


def fingerprint(path: Path) -> dict:
    """Size and a hash of the first and last MiB: cheap on terabytes, and it changes when the file does
    (an edit, an append, a truncation), not when it is merely copied or touched."""
    size = path.stat().st_size
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        digest.update(handle.read(FINGERPRINT_BYTES))
        if size > FINGERPRINT_BYTES:
            handle.seek(max(FINGERPRINT_BYTES, size - FINGERPRINT_BYTES))
            digest.update(handle.read(FINGERPRINT_BYTES))
    return {"path": str(path), "bytes": size, "head_tail_sha256": digest.hexdigest()}


def _open_text(path: Path, newline: str | None) -> io.TextIOBase:
    """Undecodable bytes become U+FFFD, as in `sentilite predict`; a bad byte never stops a job."""
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline=newline)
    return open(path, encoding="utf-8", errors="replace", newline=newline)


def check_columns(path: Path, fmt: str, text_column: str, id_column: str | None) -> None:
    """Refuse, before any work, a file that lacks a named column or has an id column of another type."""
    if fmt == "text":
        if id_column:
            raise ScoreInputError("plain text input has no columns: its ids are line numbers; drop --id-column")
        return
    if fmt == "csv":
        with _open_text(path, newline="") as handle:
            header = next(csv.reader(handle), None)
        columns = header or []
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            schema = pq.read_schema(path)
        except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... for a damaged file
            raise ScoreInputError(f"{path}: not a readable Parquet file ({exc})") from None
        columns = schema.names
        if id_column and id_column in columns:
            check_parquet_id_type(str(schema.field(id_column).type), id_column, path)
    else:
        return  # JSON Lines: a row without the field gets an error, the others are scored
    for role, column in (("--text-column", text_column), ("--id-column", id_column)):
        if column and column not in columns:
            raise ScoreInputError(f"{path}: no column {column!r} for {role}; its columns are "
                                  f"{', '.join(map(repr, columns[:20])) or 'none'}")


def check_parquet_id_type(type_name: str, column: str, where) -> None:
    if not (type_name.startswith(("int", "uint")) or type_name in ("string", "large_string", "bigint",
                                                                     "long", "integer", "smallint", "tinyint")):
        raise ScoreInputError(f"{where}: id column {column!r} is of type {type_name}; "
                              f"use an integer or string column as --id-column")


def parquet_id_is_integer(path: Path, id_column: str) -> bool:
    import pyarrow.parquet as pq

    return not str(pq.read_schema(path).field(id_column).type).startswith(("string", "large_string"))


def read_chunks(path: Path, fmt: str, part_rows: int, text_column: str,
                id_column: str | None) -> Iterator[Chunk]:
    """The file's rows, ``part_rows`` at a time; memory holds one chunk, whatever the file's size."""
    if fmt in ("text", "jsonl"):
        yield from _line_chunks(path, part_rows)
    elif fmt == "csv":
        yield from _csv_chunks(path, part_rows, text_column, id_column)
    elif fmt == "parquet":
        yield from _parquet_chunks(path, part_rows, text_column, id_column)
    else:
        raise ScoreInputError(f"unknown input format {fmt!r}")


def _line_chunks(path: Path, part_rows: int) -> Iterator[Chunk]:
    # Universal newlines (\n, \r\n, \r), as Spark's text reader splits lines.
    first = 1
    with _open_text(path, newline=None) as handle:
        while True:
            lines = [line[:-1] if line.endswith("\n") else line for line in _take(handle, part_rows)]
            if not lines:
                return
            yield Chunk(first, len(lines), "lines", lines)
            first += len(lines)


def _take(iterator, n: int) -> list:
    out = []
    for item in iterator:
        out.append(item)
        if len(out) == n:
            break
    return out


def _csv_chunks(path: Path, part_rows: int, text_column: str, id_column: str | None) -> Iterator[Chunk]:
    csv.field_size_limit(min(MAX_CSV_FIELD, sys.maxsize))
    with _open_text(path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None) or []
        if text_column not in header or (id_column and id_column not in header):
            raise ScoreInputError(f"{path}: no column {text_column!r} or {id_column!r} in its header")
        text_at = header.index(text_column)
        id_at = header.index(id_column) if id_column else None
        try:
            first = 1
            while True:
                records = _take(reader, part_rows)
                if not records:
                    return
                texts = [r[text_at] if text_at < len(r) else None for r in records]
                if id_at is None:
                    ids = list(range(first, first + len(records)))
                else:
                    ids = [(r[id_at] or None) if id_at < len(r) else None for r in records]
                yield Chunk(first, len(records), "cells", (texts, ids))
                first += len(records)
        except csv.Error as exc:
            raise ScoreInputError(f"{path}: malformed CSV near line {reader.line_num} ({exc})") from None


def _parquet_chunks(path: Path, part_rows: int, text_column: str, id_column: str | None) -> Iterator[Chunk]:
    import pyarrow.parquet as pq

    columns = [text_column] + ([id_column] if id_column and id_column != text_column else [])
    texts: list = []
    ids: list = []
    first = 1
    with pq.ParquetFile(path) as parquet:
        for batch in parquet.iter_batches(batch_size=min(part_rows, 65536), columns=columns):
            texts.extend(batch.column(text_column).to_pylist())
            if id_column:
                ids.extend(batch.column(id_column).to_pylist())
            while len(texts) >= part_rows:
                yield _cells(first, texts[:part_rows], ids[:part_rows] if id_column else None)
                del texts[:part_rows], ids[:part_rows]
                first += part_rows
    if texts:
        yield _cells(first, texts, ids if id_column else None)


def _cells(first: int, texts: list, ids: list | None) -> Chunk:
    if ids is None:
        ids = list(range(first, first + len(texts)))
    return Chunk(first, len(texts), "cells", (texts, ids))


def count_rows(path: Path, fmt: str) -> int:
    """Rows in a file, for the progress bar's ETA: lines, CSV records or Parquet rows."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.read_metadata(path).num_rows
    if fmt == "csv":
        csv.field_size_limit(min(MAX_CSV_FIELD, sys.maxsize))
        with _open_text(path, newline="") as handle:
            try:
                return max(0, sum(1 for _ in csv.reader(handle)) - 1)
            except csv.Error:
                return 0  # reading it for real reports where it breaks
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    lines, last = 0, b"\n"
    with opener(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")
