"""A user's own labeled texts: read them from CSV, TSV, JSON Lines, Parquet, fastText lines or a folder per class.

Each file becomes a ``LabeledTexts``: the texts, one class index per text
and the class names. A file that cannot be used stops with a
``LabeledDataError`` naming the file, the line (or row, or file of a
folder) as an editor numbers it, and what is wrong; with
``skip_bad_rows=True`` an unusable row is skipped and counted instead.

Only the standard library and numpy are imported here (pyarrow when a
Parquet file is read): ``sentilite evaluate`` reads labeled files without
TensorFlow.
"""
from __future__ import annotations

import codecs
import contextlib
import csv
import dataclasses
import gzip
import io
import json
import os
import re
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sentilite.shared.errors import MissingExtraError
from sentilite.shared.extras import install_hint

from .errors import DatasetError

FORMATS = ("csv", "tsv", "jsonl", "parquet", "fasttext", "folder")
SUFFIX_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
                  ".parquet": "parquet", ".pq": "parquet", ".txt": "fasttext"}
FORMAT_ALIASES = {"txt": "fasttext", "json": "jsonl", "ndjson": "jsonl"}
# Tried in this order, case-insensitively, when no column is named.
TEXT_COLUMNS = ("text", "sentence", "review", "content", "comment", "body", "tweet")
LABEL_COLUMNS = ("label", "labels", "sentiment", "class", "airline_sentiment", "polarity", "target")
LABEL_PREFIX = "__label__"  # fastText's; dropped from every label, whatever the format
MIN_CLASSES = 2
MAX_CLASSES = 50
# One text. The longest review of IMDB is ~14 KB; a longer "text" is a file pasted into a cell.
MAX_TEXT_CHARS = 1 << 20
# All the data read from one file, after decompression. Training holds every text in memory and
# tokenizes it there; 2 GiB is ~15 times all 50,000 IMDB reviews, and a bigger file is better sampled
# first than read on the small machines sentilite is trained on.
MAX_INPUT_BYTES = 2 << 30
# One line, or one CSV field over several lines. Past this it is not a text but a missing line break
# or an unbalanced quote: reading stops there instead of holding the rest of the file as one line.
MAX_LINE_BYTES = 64 << 20
# Kept in the result besides the counts; a file with a million bad rows keeps its first few.
MAX_BAD_ROW_EXAMPLES = 20
SKIP_REASONS = ("missing_text", "empty_text", "too_long", "missing_label", "wrong_type", "ragged_row",
                "undecodable", "malformed_json", "no_label_prefix", "several_labels")

_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"
_PARQUET_MAGIC = b"PAR1"
_INTEGER = re.compile(r"[+-]?[0-9]+")
_FASTTEXT_LINE = re.compile(r"__label__([^ \t]*)[ \t]*(.*)", re.DOTALL)
_DECOMPRESSION_ERRORS = (OSError, EOFError, zlib.error, zipfile.BadZipFile)


class LabeledDataError(DatasetError):
    """A labeled file cannot be used: unreadable, of an unexpected layout, or with classes unfit to train on."""


class BadRowError(LabeledDataError):
    """One row is unusable; ``skip_bad_rows=True`` skips and counts such rows instead."""

    def __init__(self, message: str, bad_row: BadRow):
        super().__init__(message)
        self.bad_row = bad_row


class LabelSetError(LabeledDataError):
    """The classes do not fit: one class, more than MAX_CLASSES, or not those of ``labels=``."""


class SplitError(LabeledDataError):
    """A class has too few rows to appear on both sides of a split."""


@dataclass(frozen=True)
class BadRow:
    """A skipped row: where it is (``line 12``, ``row 12``, ``pos/12.txt``), why (one of SKIP_REASONS), what."""

    location: str
    reason: str
    problem: str

    def to_dict(self) -> dict:
        return {"location": self.location, "reason": self.reason, "problem": self.problem}


@dataclass(frozen=True, eq=False)
class LabeledTexts:
    """Texts with their classes: ``labels[i]`` indexes ``label_names``."""

    texts: tuple[str, ...]
    labels: np.ndarray  # int32, read-only
    label_names: tuple[str, ...]
    source: str
    data_format: str
    text_column: str | int | None = None  # as found in the file; None where the format has no columns
    label_column: str | int | None = None
    skipped_counts: dict[str, int] = dataclasses.field(default_factory=dict)  # reason -> rows skipped
    skipped_examples: tuple[BadRow, ...] = ()  # the first MAX_BAD_ROW_EXAMPLES of them

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def skipped_rows(self) -> int:
        return sum(self.skipped_counts.values())

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.label_names))
        return {name: int(n) for name, n in zip(self.label_names, counts)}

    def take(self, index) -> LabeledTexts:
        """The rows at ``index``, in that order; the classes and what reading skipped stay those of the file."""
        index = np.asarray(index, dtype=np.int64)
        return dataclasses.replace(self, texts=tuple(self.texts[i] for i in index),
                                   labels=_read_only(self.labels[index]))

    def split(self, fraction: float, seed: int, holdout: str = "holdout") -> tuple[LabeledTexts, LabeledTexts]:
        """(rest, holdout): a seeded, stratified ``fraction`` of each class held out (see stratified_split)."""
        rest, held = stratified_split(self.labels, fraction, seed, label_names=self.label_names,
                                      source=self.source, holdout=holdout)
        return self.take(rest), self.take(held)

    def summary(self) -> dict:
        """What was read, JSON-ready, for metrics.json."""
        return {"source": self.source, "data_format": self.data_format, "text_column": self.text_column,
                "label_column": self.label_column, "rows": len(self), "label_names": list(self.label_names),
                "class_counts": self.class_counts(), "skipped_rows": self.skipped_rows,
                "skipped_by_reason": dict(self.skipped_counts),
                "skipped_examples": [row.to_dict() for row in self.skipped_examples]}


def format_of(path: str | os.PathLike) -> str | None:
    """The format a file's name says (``.gz`` looked through); None when it does not say, as for a ``.zip``."""
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return SUFFIX_FORMATS.get(Path(name).suffix)


def column_spec(value: str) -> str | int:
    """A --text-column/--label-column value: digits are a 0-based index, anything else a column name."""
    value = value.strip()
    return int(value) if value.isascii() and value.isdigit() else value


def read_labeled(
    path: str | os.PathLike,
    *,
    data_format: str | None = None,
    text_column: str | int | None = None,
    label_column: str | int | None = None,
    has_header: bool | None = None,
    labels: Sequence[str | int] | None = None,
    require_all_labels: bool = True,
    encoding: str = "utf-8",
    skip_bad_rows: bool = False,
    max_text_chars: int = MAX_TEXT_CHARS,
    max_input_bytes: int = MAX_INPUT_BYTES,
    labels_source: str = "labels=",
) -> LabeledTexts:
    """Read a labeled file: the format from its name (``data_format`` overrides), a folder per class for a folder.

    Columns are names, or 0-based indices; CSV and TSV have a header unless
    ``has_header=False``, which is assumed when every column given is an
    index. Without names, the first of TEXT_COLUMNS and LABEL_COLUMNS found
    is used. A ``.gz`` or a ``.zip`` holding one file of a text format is
    read through.

    The classes are ``labels`` in that order; the data must have no other
    class, and every one of them unless ``require_all_labels=False`` (for
    evaluating on a file that lacks a rare class). Of a folder only the
    sub-folders ``labels`` names are read. Without ``labels``, the classes
    are the data's, in numeric order when all are integers, else sorted.
    ``labels_source`` says in an error where ``labels`` came from
    (``--labels``, or the training file a test file must match).
    """
    path = Path(path).expanduser()
    if data_format is not None:
        data_format = FORMAT_ALIASES.get(data_format.lower(), data_format.lower())
        if data_format not in FORMATS:
            raise LabeledDataError(f"unknown data format {data_format!r}; choose one of {', '.join(FORMATS)}")
    for role, column in (("text", text_column), ("label", label_column)):
        if column is not None and (isinstance(column, bool) or not isinstance(column, (str, int))):
            raise LabeledDataError(f"--{role}-column must be a column name or a 0-based index, got {column!r}")
    wanted = _label_list(labels) if labels is not None else None
    if not path.exists():
        raise LabeledDataError(f"{path}: no such file or folder")
    options = _Options(text_column, label_column, has_header, encoding, skip_bad_rows, max_text_chars,
                       max_input_bytes, labels_source)
    if path.is_dir():
        if data_format not in (None, "folder"):
            raise LabeledDataError(f"{path}: is a folder, not a {data_format} file")
        rows = _Rows(str(path), "folder", options)
        _read_folder(path, rows, wanted, require_all_labels)
    else:
        if data_format == "folder":
            raise LabeledDataError(f"{path}: is a file; data_format='folder' reads a folder with one "
                                   f"sub-folder per class")
        if not path.is_file():  # a pipe or a device would block the read or never end
            raise LabeledDataError(f"{path}: not a regular file")
        rows = _read_file(path, data_format, options)
    return rows.result(wanted, require_all_labels)


def stratified_split(labels, fraction: float, seed: int, *, label_names: Sequence[str] | None = None,
                     source: str | None = None, holdout: str = "holdout") -> tuple[np.ndarray, np.ndarray]:
    """Seeded indices (rest, holdout), each in file order, with ``fraction`` of every class held out.

    A class too small to leave a row on each side is refused rather than
    missing from one side, where it would train or score nothing.
    ``holdout`` names the held-out split in that error ("test", or "test
    split (no --test-data given)").
    """
    if not 0.0 < fraction < 1.0:
        raise SplitError(f"the holdout fraction must be between 0 and 1, got {fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    rest, held_out = [], []
    for label in np.unique(labels):
        index = np.flatnonzero(labels == label)
        held = int(np.floor(len(index) * fraction + 0.5))
        if len(index) < 2 or held == 0 or held == len(index):
            name = label_names[label] if label_names is not None else int(label)
            side = holdout.split()[0] if held == 0 else "training"
            split = holdout if "split" in holdout else f"{holdout} split"
            raise SplitError(f"{source + ': ' if source else ''}class {name!r} has {_rows(len(index))}: too few "
                             f"for a {fraction:g} {split}, "
                             f"which would leave none on the {side} side; it needs at least "
                             f"{_rows_to_split(fraction)} rows (add rows, or merge or drop the class)")
        index = index[rng.permutation(len(index))]
        held_out.append(index[:held])
        rest.append(index[held:])
    if not rest:
        raise SplitError(f"{source + ': ' if source else ''}nothing to split: no rows")
    return np.sort(np.concatenate(rest)), np.sort(np.concatenate(held_out))


def _rows_to_split(fraction: float) -> int:
    rows = 2
    while not 1 <= np.floor(rows * fraction + 0.5) <= rows - 1:
        rows += 1
    return rows


def _rows(count: int) -> str:
    return f"{count:,} row{'s' if count != 1 else ''}"


def _read_only(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array, dtype=np.int32)
    array.setflags(write=False)
    return array


def _show(value, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 4] + "...'"


def _columns_list(names: Sequence[str]) -> str:
    shown = ", ".join(repr(name) for name in names[:30])
    return (shown + f" and {len(names) - 30} more" if len(names) > 30 else shown) or "none"


def _label_name(raw: str) -> str:
    name = raw.strip().lstrip("\ufeff").strip()
    if name.startswith(LABEL_PREFIX):
        name = name[len(LABEL_PREFIX):].strip()
    return name


def _label_list(labels) -> tuple[str, ...]:
    if isinstance(labels, (str, bytes)):
        raise LabelSetError(f"labels= must be a list of class names, got the string {labels!r}")
    names = []
    for label in labels:
        if isinstance(label, bool) or not isinstance(label, (str, int)):
            raise LabelSetError(f"labels= holds {label!r}: a class name is a string or an integer")
        name = _label_name(str(label))
        if not name:
            raise LabelSetError(f"labels= holds an empty class name ({label!r})")
        if name in names:
            raise LabelSetError(f"labels= names the class {name!r} twice")
        names.append(name)
    if not MIN_CLASSES <= len(names) <= MAX_CLASSES:
        raise LabelSetError(f"labels= names {len(names)} classes; a classifier needs {MIN_CLASSES} to {MAX_CLASSES}")
    return tuple(names)


@dataclass(frozen=True)
class _Options:
    text_column: str | int | None
    label_column: str | int | None
    has_header: bool | None
    encoding: str
    skip_bad_rows: bool
    max_text_chars: int
    max_input_bytes: int
    labels_source: str = "labels="


class _Rows:
    """Collects the good rows of one file, and skips (or stops at) the bad ones."""

    def __init__(self, where: str, data_format: str, options: _Options, unit: str = "line"):
        self.where = where
        self.data_format = data_format
        self.options = options
        self.unit = unit  # how a location number is shown: "line 12", "row 12"
        self.text_column: str | int | None = None
        self.label_column: str | int | None = None
        self.header = False
        self.texts: list[str] = []
        self.codes: list[int] = []  # into self.names, in the order classes were met
        self.names: dict[str, int] = {}
        self.first_seen: dict[str, str] = {}
        self.skipped_counts: dict[str, int] = {}
        self.skipped_examples: list[BadRow] = []
        self._codes_of_raw: dict[str, int] = {}

    def location(self, at: int | str) -> str:
        return f"{self.unit} {at}" if isinstance(at, int) else at

    def bad(self, at: int | str, reason: str, problem: str) -> None:
        row = BadRow(self.location(at), reason, problem)
        if not self.options.skip_bad_rows:
            raise BadRowError(f"{self.where}: {row.location}: {problem} (--skip-bad-rows, skip_bad_rows=True, skips "
                              f"such rows and counts them)", row)
        self.skipped_counts[reason] = self.skipped_counts.get(reason, 0) + 1
        if len(self.skipped_examples) < MAX_BAD_ROW_EXAMPLES:
            self.skipped_examples.append(row)

    def add(self, at: int | str, text, label) -> None:
        if text is None:
            return self.bad(at, "missing_text", "no text")
        if not isinstance(text, str):
            return self.bad(at, "wrong_type", f"the text is {_show(text)}, not a string")
        if text.startswith("\ufeff"):
            text = text.lstrip("\ufeff")
        if not text or text.isspace():
            return self.bad(at, "empty_text", "the text is empty" if not text else "the text is only whitespace")
        if len(text) > self.options.max_text_chars:
            return self.bad(at, "too_long", f"the text is {len(text):,} characters, over the cap of "
                                            f"{self.options.max_text_chars:,} for one text")
        code = self._codes_of_raw.get(label) if type(label) is str else None
        if code is None:
            code = self._code(at, label)
            if code is None:
                return None
        self.texts.append(text)
        self.codes.append(code)
        return None

    def _code(self, at: int | str, label) -> int | None:
        if label is None or label != label:  # NaN: pandas' missing value
            return self.bad(at, "missing_label", "no label")
        if isinstance(label, str):
            name = _label_name(label)
        elif isinstance(label, bool):
            name = "true" if label else "false"
        elif isinstance(label, int):
            name = str(label)
        elif isinstance(label, float) and label.is_integer():
            name = str(int(label))  # pandas writes an integer column with gaps as floats
        else:
            what = "a number that is not a whole number" if isinstance(label, float) else "not a string or integer"
            return self.bad(at, "wrong_type", f"the label {_show(label)} is {what}: a label names a class")
        if not name:
            return self.bad(at, "missing_label", "the label is empty")
        code = self.names.get(name)
        if code is None:
            if len(self.names) == MAX_CLASSES:
                raise LabelSetError(
                    f"{self.where}: more than {MAX_CLASSES} distinct labels (one more, {_show(name)}, on "
                    f"{self.location(at)}); this often means the text column was taken as the "
                    f"label: choose the columns with --text-column and --label-column")
            code = self.names[name] = len(self.names)
            self.first_seen[name] = self.location(at)
        if isinstance(label, str):
            self._codes_of_raw[label] = code
        return code

    def column(self, given: str | int | None, role: str, names: Sequence[str] | None, count: int) -> int:
        """The index of the text or label column among ``count`` columns (``names`` None: no header)."""
        flag = f"--{role}-column"
        if given is None:
            if names is None:
                raise LabeledDataError(f"{self.where}: without a header the {role} column must be given as a 0-based "
                                       f"index ({flag} N, {role}_column=N)")
            candidates = TEXT_COLUMNS if role == "text" else LABEL_COLUMNS
            lowered = [name.lower() for name in names]
            for candidate in candidates:
                if candidate in names:
                    return self._unique(names.index(candidate), names, role, names)
                if candidate in lowered:
                    return self._unique(lowered.index(candidate), lowered, role, names)
            raise LabeledDataError(f"{self.where}: no {role} column: none of {', '.join(candidates)} is among its "
                                   f"columns ({_columns_list(names)}){self._separator_hint(names)}; choose one with "
                                   f"{flag} NAME ({role}_column=), or a 0-based index for a file without a header")
        if isinstance(given, int):
            if not 0 <= given < count:
                raise LabeledDataError(f"{self.where}: {flag} {given} is out of range: the "
                                       f"{'header' if names is not None else 'first row'} has {count} column"
                                       f"{'s' if count != 1 else ''} (indices from 0)")
            return given
        if names is None:
            raise LabeledDataError(f"{self.where}: without a header a column is a 0-based index, not a name "
                                   f"({flag} {given!r})")
        if given in names:
            return self._unique(names.index(given), names, role, names)
        folded = [i for i, name in enumerate(names) if name.lower() == given.lower()]
        if len(folded) == 1:
            return folded[0]
        digits = " (a 0-based index is given as an integer)" if given.isdigit() else ""
        raise LabeledDataError(f"{self.where}: no column {given!r} for the {role} ({flag}); its columns are "
                               f"{_columns_list(names)}{self._separator_hint(names)}{digits}")

    def _unique(self, index: int, matched: Sequence[str], role: str, names: Sequence[str]) -> int:
        """``index``, unless the name it was found by (``matched``: the names, maybe lower-cased) repeats."""
        again = [i for i, name in enumerate(matched) if name == matched[index]]
        if len(again) > 1:
            raise LabeledDataError(f"{self.where}: the {role} column {names[index]!r} appears {len(again)} times "
                                   f"(columns {', '.join(map(str, again))}); give its 0-based index with "
                                   f"--{role}-column")
        return index

    def _separator_hint(self, names: Sequence[str]) -> str:
        if len(names) != 1 or self.data_format not in ("csv", "tsv"):
            return ""
        for separator, word in ((";", "semicolons"), ("\t", "tabs"), (",", "commas"), ("|", "bars")):
            if separator in names[0]:
                fix = {"\t": "name it .tsv or pass data_format='tsv'", ",": "name it .csv or pass data_format='csv'"}
                return (f" (one column: the file looks separated by {word}; "
                        f"{fix.get(separator, 'save it as CSV with commas')})")
        return ""

    def columns(self, names: Sequence[str] | None, count: int) -> tuple[int, int]:
        text_at = self.column(self.options.text_column, "text", names, count)
        label_at = self.column(self.options.label_column, "label", names, count)
        if text_at == label_at:
            raise LabeledDataError(f"{self.where}: the text and the label are the same column ({text_at}); choose "
                                   f"them with --text-column and --label-column")
        self.text_column = names[text_at] if names is not None else text_at
        self.label_column = names[label_at] if names is not None else label_at
        return text_at, label_at

    def result(self, wanted: tuple[str, ...] | None, require_all_labels: bool) -> LabeledTexts:
        skipped = sum(self.skipped_counts.values())
        if not self.texts:
            if skipped:
                reasons = ", ".join(f"{reason} {n:,}" for reason, n in sorted(self.skipped_counts.items()))
                raise LabeledDataError(f"{self.where}: no usable rows: all {skipped:,} were skipped ({reasons})")
            raise LabeledDataError(f"{self.where}: " + ("has a header but no rows" if self.header else "is empty"))
        codes = np.asarray(self.codes, dtype=np.int32)
        found = list(self.names)
        counts = np.bincount(codes, minlength=len(found))
        if wanted is not None:
            unexpected = [name for name in found if name not in wanted]
            missing = [name for name in wanted if name not in self.names]
            if unexpected or (missing and require_all_labels):
                parts = []
                if unexpected:
                    parts.append("unexpected " + ", ".join(
                        f"{_show(name)} ({_rows(counts[self.names[name]])}, first on {self.first_seen[name]})"
                        for name in unexpected[:10]) + (f" and {len(unexpected) - 10} more" if len(unexpected) > 10
                                                        else ""))
                if missing and require_all_labels:
                    parts.append("missing " + ", ".join(map(repr, missing)) + " (no row has "
                                 + ("it)" if len(missing) == 1 else "them)"))
                raise LabelSetError(f"{self.where}: its labels do not match {self.options.labels_source} "
                                    f"({', '.join(map(repr, wanted))}): {'; '.join(parts)}")
            order = wanted
        else:
            if len(found) < MIN_CLASSES:
                raise LabelSetError(f"{self.where}: every row ({len(codes):,}) has the label {found[0]!r}: "
                                    f"training needs at least {MIN_CLASSES} classes")
            if all(_INTEGER.fullmatch(name) for name in found):
                order = tuple(sorted(found, key=lambda name: (int(name), name)))
            else:
                order = tuple(sorted(found))
        table = np.array([order.index(name) for name in found], dtype=np.int32)
        return LabeledTexts(texts=tuple(self.texts), labels=_read_only(table[codes]), label_names=tuple(order),
                            source=self.where, data_format=self.data_format, text_column=self.text_column,
                            label_column=self.label_column, skipped_counts=dict(sorted(self.skipped_counts.items())),
                            skipped_examples=tuple(self.skipped_examples))


# -- files --------------------------------------------------------------------------------------------------
def _read_file(path: Path, data_format: str | None, options: _Options) -> _Rows:
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise LabeledDataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    zipped = magic == _ZIP_MAGIC or path.name.lower().endswith(".zip")
    gzipped = magic[:2] == _GZIP_MAGIC or path.name.lower().endswith(".gz")
    if magic == _PARQUET_MAGIC and data_format in (None, "parquet"):
        data_format = "parquet"
    elif not zipped:
        data_format = data_format or format_of(path)
        if data_format is None:
            raise LabeledDataError(f"{path}: cannot tell the format from the name; pass data_format= "
                                   f"(--data-format): one of {', '.join(FORMATS[:-1])}")
    if data_format == "parquet":
        if zipped or gzipped:
            raise LabeledDataError(f"{path}: a compressed Parquet file: Parquet compresses its own pages; "
                                   f"give the .parquet file itself")
        return _read_parquet(path, options)
    if magic == _PARQUET_MAGIC:
        raise LabeledDataError(f"{path}: is a Parquet file, not {data_format}: name it .parquet or pass "
                               f"data_format='parquet'")
    with contextlib.ExitStack() as stack:
        where = str(path)
        lines = None
        try:
            stream = stack.enter_context(open(path, "rb"))
            if zipped:
                stream, member, member_gzipped = _zip_member(path, stack)
                where = f"{path} ({member})"
                data_format = data_format or format_of(member)
                if data_format is None:
                    raise LabeledDataError(f"{where}: cannot tell the format of the file inside from its name; "
                                           f"pass data_format= (--data-format)")
                if data_format == "parquet":
                    raise LabeledDataError(f"{where}: a Parquet file inside a zip; unzip it and give the .parquet")
                if member_gzipped:
                    stream = stack.enter_context(gzip.GzipFile(fileobj=stream))
            elif gzipped:
                stream = stack.enter_context(gzip.GzipFile(fileobj=stream))
            rows = _Rows(where, data_format, options)
            capped = io.BufferedReader(_CappedReader(stream, options.max_input_bytes, where), 1 << 20)
            lines = _Lines(capped, options.encoding, where, fatal_long_lines=data_format == "csv")
            if data_format == "csv":
                _read_csv(lines, rows)
            elif data_format == "tsv":
                _read_tsv(lines, rows)
            elif data_format == "jsonl":
                _read_jsonl(lines, rows)
            else:
                _read_fasttext(lines, rows)
        except _DECOMPRESSION_ERRORS as exc:
            near = f" near line {lines.number + 1}" if lines is not None else ""
            raise LabeledDataError(f"{where}: corrupt, truncated or unreadable{near} ({exc})") from None
        except RuntimeError as exc:  # zipfile: an encrypted member, or NotImplementedError for a compression method
            raise LabeledDataError(f"{where}: cannot be read ({exc})") from None
    return rows


def _zip_member(path: Path, stack: contextlib.ExitStack):
    """The one data file of a zip: (its stream, its name, whether it is itself gzipped)."""
    try:
        archive = stack.enter_context(zipfile.ZipFile(path))
    except zipfile.BadZipFile as exc:
        raise LabeledDataError(f"{path}: not a readable zip file ({exc})") from None
    names = [info for info in archive.infolist() if not info.is_dir() and not any(
        part.startswith((".", "__MACOSX")) for part in info.filename.split("/"))]
    if any(info.filename == "xl/workbook.xml" for info in names):
        raise LabeledDataError(f"{path}: is an Excel workbook; save the sheet as CSV (UTF-8) and give that")
    if len(names) != 1:
        listed = ", ".join(info.filename for info in names[:10]) + (f" and {len(names) - 10} more"
                                                                   if len(names) > 10 else "")
        raise LabeledDataError(f"{path}: a zip must hold exactly one data file; this one holds {len(names)}"
                               f"{': ' + listed if names else ''}")
    member = names[0]
    return stack.enter_context(archive.open(member)), member.filename, member.filename.lower().endswith(".gz")


class _CappedReader(io.RawIOBase):
    """Counts the bytes read through it and stops the read past ``cap`` (a 10 GB file, a gzip bomb)."""

    def __init__(self, inner, cap: int, where: str):
        self._inner = inner
        self._cap = cap
        self._where = where
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._inner.readinto(buffer)
        self.count += n
        if self.count > self._cap:
            raise LabeledDataError(f"{self._where}: over {self._cap:,} bytes of data (max_input_bytes): training "
                                   f"holds every text in memory; sample the file first, or raise the cap")
        return n


class _Lines:
    """A byte stream's decoded lines, numbered from 1, each with its line break.

    Bad bytes or an over-long line do not stop the iteration: they are
    noted in ``problems`` for the reader to skip that row. Encodings in
    which a line break is not the byte 0x0A (UTF-16, UTF-32) are decoded
    as a stream, where bad bytes stop the file.
    """

    def __init__(self, binary: io.BufferedReader, encoding: str, where: str, fatal_long_lines: bool):
        try:
            codec = codecs.lookup(encoding)
        except LookupError:
            raise LabeledDataError(f"unknown encoding {encoding!r} (--encoding)") from None
        self._binary = binary
        self._encoding = encoding
        self._where = where
        self._fatal_long_lines = fatal_long_lines
        self._utf8 = codec.name in ("utf-8", "utf-8-sig")
        line_bytes = codec.name == "utf-8-sig" or "\n\t,".encode(encoding) == b"\n\t,"
        self._text = None if line_bytes else io.TextIOWrapper(
            binary, encoding=encoding, errors="strict", newline="\n")
        self.number = 0
        self.problems: list[tuple[int, str, str]] = []  # (line, reason, problem)

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self._text is not None:
            return self._next_decoded()
        raw = self._binary.readline(MAX_LINE_BYTES)
        if not raw:
            raise StopIteration
        self.number += 1
        if self.number == 1 and self._utf8 and raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise LabeledDataError(f"{self._where}: starts with a UTF-16 byte-order mark: pass --encoding utf-16 "
                                   f"(encoding='utf-16')")
        if len(raw) == MAX_LINE_BYTES and not raw.endswith(b"\n"):
            return self._too_long(self._binary.readline, b"\n")
        try:
            line = raw.decode(self._encoding)
        except UnicodeDecodeError as exc:
            shown = raw[exc.start:min(exc.end, exc.start + 4)].hex(" ")
            self.problems.append((self.number, "undecodable", (
                f"bytes that are not valid {self._encoding} ({shown} at byte {exc.start + 1} of the line); the file "
                f"was read as {self._encoding}: --encoding (encoding=) reads another, e.g. cp1252 or gb18030")))
            line = raw.decode(self._encoding, errors="replace")
        if self.number == 1 and line.startswith("\ufeff"):
            line = line[1:]
        return line

    def _next_decoded(self) -> str:
        try:
            line = self._text.readline(MAX_LINE_BYTES)
            if not line:
                raise StopIteration
            self.number += 1
            if len(line) == MAX_LINE_BYTES and not line.endswith("\n"):
                return self._too_long(self._text.readline, "\n")
        except UnicodeDecodeError as exc:
            raise LabeledDataError(f"{self._where}: near line {self.number + 1}: bytes that are not valid "
                                   f"{self._encoding} ({exc.reason}); --encoding (encoding=) reads another") from None
        return line.lstrip("\ufeff") if self.number == 1 else line

    def _too_long(self, readline, newline) -> str:
        problem = f"the line is over {MAX_LINE_BYTES:,} bytes (a missing line break?)"
        if self._fatal_long_lines:
            raise LabeledDataError(f"{self._where}: line {self.number}: {problem}")
        while True:  # skip to the next line break, holding one piece at a time
            more = readline(MAX_LINE_BYTES)
            if not more or more.endswith(newline):
                break
        self.problems.append((self.number, "too_long", problem))
        return "\n"


def _chomp(line: str) -> str:
    if line.endswith("\n"):
        line = line[:-1]
    return line[:-1] if line.endswith("\r") else line


def _header_names(fields: list[str]) -> list[str]:
    return [name.strip().lstrip("\ufeff").strip() for name in fields]


def _header_wanted(rows: _Rows) -> bool:
    """Whether a CSV or TSV has a header: yes, unless told or unless every column given is an index."""
    options = rows.options
    given = [c for c in (options.text_column, options.label_column) if c is not None]
    header = options.has_header if options.has_header is not None else not (
        given and all(isinstance(c, int) for c in given))
    if not header and any(isinstance(c, str) for c in given):
        raise LabeledDataError(f"{rows.where}: without a header (has_header=False) the columns are 0-based "
                               f"indices, not names")
    return header


def _read_delimited(records: Iterator[tuple[int, list[str] | None, tuple[str, str] | None]], rows: _Rows,
                    ragged_hint: str) -> None:
    """Rows from (first line, fields, problem) records: a record with a problem is a bad row, or a bad header."""
    header = _header_wanted(rows)
    count = None
    text_at = label_at = 0
    for at, fields, problem in records:
        if problem is not None:
            if count is None and header:
                raise LabeledDataError(f"{rows.where}: line {at}: the header is unreadable: {problem[1]}")
            rows.bad(at, *problem)
            continue
        if count is None:
            count = len(fields)
            if header:
                rows.header = True
                text_at, label_at = rows.columns(_header_names(fields), count)
                continue
            text_at, label_at = rows.columns(None, count)
        if len(fields) != count:
            rows.bad(at, "ragged_row", f"{len(fields)} field{'s' if len(fields) != 1 else ''} where the "
                                       f"{'header' if header else 'first row'} has {count}{ragged_hint}")
            continue
        rows.add(at, fields[text_at], fields[label_at])


def _read_csv(lines: _Lines, rows: _Rows) -> None:
    previous_limit = csv.field_size_limit()
    csv.field_size_limit(max(MAX_LINE_BYTES, rows.options.max_text_chars + 1))
    try:
        _read_delimited(_csv_records(lines, rows.where), rows, "")
    finally:
        csv.field_size_limit(previous_limit)


def _csv_records(lines: _Lines, where: str) -> Iterator[tuple[int, list[str] | None, tuple[str, str] | None]]:
    reader = csv.reader(lines, strict=True)
    last = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            start, end = last + 1, reader.line_num
            span = f"line {start}" if start >= end else f"lines {start}-{end}"
            if "new-line character" in str(exc):
                problem = "a carriage return (\\r) ends lines: the file has old Mac line ends; convert them to \\n"
            elif "field limit" in str(exc):
                problem = (f"a field runs past {csv.field_size_limit():,} characters: an unbalanced quote (\") "
                           f"makes the rest of the file one field")
            elif start < end:
                problem = f"malformed CSV ({exc}): an unbalanced quote (\") runs the record on over several lines"
            else:
                problem = f"malformed CSV ({exc}); a quote inside a quoted field is written twice (\"\")"
            raise LabeledDataError(f"{where}: {span}: {problem}") from None
        start, last = last + 1, reader.line_num
        if lines.problems:
            yield start, None, _first_problem(lines)
        elif record:
            yield start, record, None


def _first_problem(lines: _Lines) -> tuple[str, str]:
    """(reason, problem): the first of the lines read since the last row; a row is skipped once, whatever it has."""
    _, reason, problem = lines.problems[0]
    lines.problems.clear()
    return reason, problem


def _read_tsv(lines: _Lines, rows: _Rows) -> None:
    _read_delimited(_tsv_records(lines), rows, " (TSV has no quoting: a tab inside a text splits it)")


def _tsv_records(lines: _Lines) -> Iterator[tuple[int, list[str] | None, tuple[str, str] | None]]:
    for line in lines:
        if lines.problems:
            yield lines.number, None, _first_problem(lines)
            continue
        line = _chomp(line)
        if line:
            yield lines.number, line.split("\t"), None


def _read_jsonl(lines: _Lines, rows: _Rows) -> None:
    if rows.options.has_header:
        raise LabeledDataError(f"{rows.where}: JSON Lines has no header; drop has_header")
    keys = None
    for line in lines:
        at = lines.number
        if lines.problems:
            rows.bad(at, *_first_problem(lines))
            continue
        if not line.strip():
            continue
        value, problem = _parse_json(line)
        if problem is not None:
            rows.bad(at, "malformed_json", problem)
            continue
        if not isinstance(value, dict):
            kind = {list: "an array", str: "a string"}.get(type(value), "a number or constant")
            hint = (": JSON Lines holds one object a line (a file that is one JSON array converts with "
                    "`jq -c '.[]'`)") if isinstance(value, list) else ": JSON Lines holds one object a line"
            rows.bad(at, "malformed_json", f"{kind}, not an object{hint}")
            continue
        if keys is None:
            for role, column in (("text", rows.options.text_column), ("label", rows.options.label_column)):
                if isinstance(column, int):
                    raise LabeledDataError(f"{rows.where}: JSON Lines rows are objects: give the {role} field by "
                                           f"name (--{role}-column NAME), not by index")
            names = list(value)
            text_at, label_at = rows.columns(names, len(names))
            keys = (names[text_at], names[label_at])
        text_key, label_key = keys
        if text_key not in value:
            rows.bad(at, "missing_text", f"no {text_key!r} field (its fields: {_columns_list(list(value))})")
            continue
        if label_key not in value:
            rows.bad(at, "missing_label", f"no {label_key!r} field (its fields: {_columns_list(list(value))})")
            continue
        rows.add(at, value[text_key], value[label_key])


def _parse_json(line: str) -> tuple[object, str | None]:
    """(value, None), or (None, what is wrong): the bad row is reported outside the handler, free of its traceback."""
    try:
        return json.loads(line), None
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg} at column {exc.colno})"
    except (ValueError, RecursionError) as exc:  # an integer of 5,000 digits, arrays nested 10,000 deep
        return None, f"not valid JSON ({exc or 'nested too deeply'})"


def _read_fasttext(lines: _Lines, rows: _Rows) -> None:
    options = rows.options
    if options.text_column is not None or options.label_column is not None or options.has_header:
        raise LabeledDataError(f"{rows.where}: fastText lines (__label__X text) have no columns or header; drop "
                               f"--text-column, --label-column and has_header")
    for line in lines:
        at = lines.number
        if lines.problems:
            rows.bad(at, *_first_problem(lines))
            continue
        line = _chomp(line)
        if not line or line.isspace():
            continue
        match = _FASTTEXT_LINE.match(line)
        if match is None:
            rows.bad(at, "no_label_prefix", f"does not start with {LABEL_PREFIX} (fastText's label prefix): each "
                                            f"line is {LABEL_PREFIX}<label>, a tab or space, then the text")
            continue
        label, text = match.groups()
        if text.startswith(LABEL_PREFIX):
            rows.bad(at, "several_labels", "carries more than one label: a text has one class here")
            continue
        rows.add(at, text, label)


# -- Parquet --------------------------------------------------------------------------------------------------
def _import_pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingExtraError("reading Parquet needs pyarrow, which is not installed here: "
                                f"{install_hint('score')} (or pip install pyarrow)") from None
    return pa, pq


def _read_parquet(path: Path, options: _Options) -> _Rows:
    pa, pq = _import_pyarrow()
    rows = _Rows(str(path), "parquet", options, unit="row")
    try:
        parquet = pq.ParquetFile(path)
    except (pa.lib.ArrowException, OSError) as exc:
        raise LabeledDataError(f"{path}: not a readable Parquet file ({exc})") from None
    with parquet:
        schema = parquet.schema_arrow
        names = list(schema.names)
        text_at, label_at = rows.columns(names, len(names))
        rows.header = True
        _check_parquet_type(rows, names[text_at], schema.field(text_at).type, "text", pa)
        _check_parquet_type(rows, names[label_at], schema.field(label_at).type, "label", pa)
        metadata = parquet.metadata
        data_bytes = sum(metadata.row_group(group).column(column).total_uncompressed_size
                         for group in range(metadata.num_row_groups) for column in range(metadata.num_columns)
                         if metadata.row_group(group).column(column).path_in_schema in (names[text_at],
                                                                                         names[label_at]))
        if data_bytes > options.max_input_bytes:
            raise LabeledDataError(f"{path}: its text and label columns hold {data_bytes:,} bytes, over "
                                   f"{options.max_input_bytes:,} (max_input_bytes): training holds every text "
                                   f"in memory; sample the file first, or raise the cap")
        row = chars = 0
        try:
            for batch in parquet.iter_batches(batch_size=65536, columns=[names[text_at], names[label_at]]):
                texts, labels = batch.column(0).to_pylist(), batch.column(1).to_pylist()
                chars += sum(len(text) for text in texts if isinstance(text, str))
                if chars > options.max_input_bytes:  # a dictionary-encoded column is small in the metadata
                    raise LabeledDataError(f"{path}: its texts hold over {options.max_input_bytes:,} characters "
                                           f"(max_input_bytes): training holds every text in memory; sample the "
                                           f"file first, or raise the cap")
                for text, label in zip(texts, labels):
                    row += 1
                    rows.add(row, text, label)
        except (pa.lib.ArrowException, OSError) as exc:
            raise LabeledDataError(f"{path}: corrupt or unreadable Parquet data after row {row} ({exc})") from None
    return rows


def _check_parquet_type(rows: _Rows, column: str, arrow_type, role: str, pa) -> None:
    value_type = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
    strings = pa.types.is_string(value_type) or pa.types.is_large_string(value_type) or (
        hasattr(pa.types, "is_string_view") and pa.types.is_string_view(value_type))
    if role == "text" and not strings:
        raise LabeledDataError(f"{rows.where}: the text column {column!r} holds {arrow_type}, not strings; choose "
                               f"the text column with --text-column")
    if role == "label" and not (strings or pa.types.is_integer(value_type) or pa.types.is_boolean(value_type)
                                or pa.types.is_floating(value_type)):
        raise LabeledDataError(f"{rows.where}: the label column {column!r} holds {arrow_type}; a label is a string "
                               f"or an integer: choose the label column with --label-column")


# -- a folder per class ------------------------------------------------------------------------------------------
def _read_folder(folder: Path, rows: _Rows, wanted: tuple[str, ...] | None, require_all_labels: bool = True) -> None:
    options = rows.options
    if options.text_column is not None or options.label_column is not None or options.has_header:
        raise LabeledDataError(f"{folder}: a folder of .txt files has no columns or header; drop --text-column, "
                               f"--label-column and has_header")
    try:
        codecs.lookup(options.encoding)
    except LookupError:
        raise LabeledDataError(f"unknown encoding {options.encoding!r} (--encoding)") from None
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX")))
    classes = {p.name: _text_files(p) for p in subfolders}
    classes = {name: files for name, files in classes.items() if files}
    if wanted is not None:
        missing = [name for name in wanted if name not in classes]
        if missing and require_all_labels:
            raise LabelSetError(f"{folder}: no sub-folder with .txt files for {', '.join(map(repr, missing))} "
                                f"({options.labels_source}); its sub-folders with .txt files: "
                                f"{_columns_list(list(classes))}")
        classes = {name: classes[name] for name in wanted if name in classes}
    if not classes:
        found = _columns_list([p.name for p in subfolders])
        raise LabeledDataError(f"{folder}: no label sub-folders: expected one sub-folder per class (e.g. neg/ and "
                               f"pos/) holding one .txt file per text; its sub-folders: {found}")
    if len(classes) > MAX_CLASSES:
        raise LabelSetError(f"{folder}: {len(classes)} sub-folders with .txt files; a classifier has at most "
                            f"{MAX_CLASSES} classes (labels= picks the sub-folders to read)")
    sizes = {file: file.stat().st_size for files in classes.values() for file in files}
    total = sum(sizes.values())
    if total > options.max_input_bytes:
        raise LabeledDataError(f"{folder}: its .txt files hold {total:,} bytes, over {options.max_input_bytes:,} "
                               f"(max_input_bytes): training holds every text in memory; sample them first")
    most_bytes = 4 * options.max_text_chars  # the longest encoding of a character that counts
    for name, files in classes.items():
        for file in files:
            at = file.relative_to(folder).as_posix()
            if sizes[file] > most_bytes:
                rows.bad(at, "too_long", f"the file is {sizes[file]:,} bytes, over the cap of "
                                         f"{options.max_text_chars:,} characters for one text")
                continue
            try:
                raw = file.read_bytes()
            except OSError as exc:
                raise LabeledDataError(f"{folder}: {at}: cannot be read ({exc.strerror or exc})") from None
            try:
                text, bad_byte = raw.decode(options.encoding), None
            except UnicodeDecodeError as exc:
                text, bad_byte = None, exc.start + 1
            if bad_byte is not None:
                rows.bad(at, "undecodable", f"bytes that are not valid {options.encoding} (at byte {bad_byte}); "
                                            f"--encoding (encoding=) reads another, e.g. cp1252 or gb18030")
                continue
            rows.add(at, text, name)


def _text_files(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if p.suffix.lower() == ".txt" and not p.name.startswith(".") and p.is_file()]
    return sorted(files, key=lambda p: [int(part) if i % 2 else part
                                        for i, part in enumerate(re.split(r"([0-9]+)", p.name))])
