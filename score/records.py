"""What one input row becomes, the same in every engine.

The one-machine path and Spark both call these functions on the same raw
values (a line, a JSON object's fields, a column's cells), so a row gets the
same id, text check, error text and score whichever engine read it.
"""
from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# Missing, null, empty or only white space: the model has nothing to read (the runtime's own word for it).
from sentilite.runtime.metrics import predicted_classes
from sentilite.runtime.model import NO_TEXT
from sentilite.shared.errors import ModelFileError

# Error values a row can carry; its label and probabilities are then null.
NOT_TEXT = "not text: {}"  # a number, an object, ...: named the JSON way in every engine
# How many texts are tokenized and run at once: big enough to group rows of one length bucket,
# small enough that the padded ids (rows x maxlen int32) stay a few MB.
SCORE_GROUP = 2048


def value_kind(value) -> str:
    """The JSON name of a value's type; numpy and pandas scalars are named like Python ones."""
    if isinstance(value, (bool, np.bool_)):
        return "boolean"
    if isinstance(value, numbers.Number):
        return "number"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (Sequence, np.ndarray)):
        return "array"
    return type(value).__name__


def check_text(value) -> tuple[str | None, str | None]:
    """(text, None) for a text worth scoring, else (None, error)."""
    if value is None:
        return None, NO_TEXT
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, str):
        return (value, None) if value.strip() else (None, NO_TEXT)
    if isinstance(value, float) and math.isnan(value):  # a null cell of a numeric column, as pandas gives it
        return None, NO_TEXT
    return None, NOT_TEXT.format(value_kind(value))


def text_id(value) -> str | None:
    """An id from JSON or CSV, as a string: JSON numbers keep their JSON spelling, empty means none."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, float) and math.isnan(value):
        return None
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


@dataclass
class Rows:
    """Parsed rows ready to score: ids, texts (None where the row cannot be scored) and errors."""

    ids: list
    texts: list
    errors: list

    def __len__(self) -> int:
        return len(self.ids)


def rows_from_lines(lines: Sequence[str], positions: Sequence[int]) -> Rows:
    """Plain text: every line is a row and its line number is its id."""
    texts, errors = [], []
    for line in lines:
        text, error = check_text(line)
        texts.append(text)
        errors.append(error)
    return Rows(list(positions), texts, errors)


def is_blank(line: str) -> bool:
    """A blank line of a JSON Lines file is no row (a trailing newline, a spacer between records)."""
    return not line or line.isspace()


def rows_from_json_lines(lines: Sequence[str], positions: Sequence[int], text_column: str,
                         id_column: str | None) -> Rows:
    """JSON Lines: one object a line; blank lines are not rows, a broken line is a row with an error."""
    ids, texts, errors = [], [], []
    for line, position in zip(lines, positions):
        if is_blank(line):
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            where = f", column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
            msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            record, error = None, f"line {position}: not valid JSON ({msg}{where})"
        except RecursionError:
            record, error = None, f"line {position}: not valid JSON (nested too deeply)"
        else:
            error = None if isinstance(record, dict) else f"line {position}: not a JSON object"
        if error is not None:
            ids.append(None if id_column else position)
            texts.append(None)
            errors.append(error)
            continue
        ids.append(text_id(record.get(id_column)) if id_column else position)
        text, error = check_text(record.get(text_column))
        texts.append(text)
        errors.append(error)
    return Rows(ids, texts, errors)


def rows_from_cells(texts: Sequence, ids: Sequence) -> Rows:
    """CSV or Parquet cells: the text cell of each row and its id (given, or its row number)."""
    checked = [check_text(value) for value in texts]
    return Rows(list(ids), [t for t, _ in checked], [e for _, e in checked])


@dataclass(frozen=True)
class Answers:
    """The model's answer for each row of a chunk; a row with an error has no label and NaN probabilities."""

    labels: list  # the chosen label's name per row, None where the row has an error
    probabilities: np.ndarray  # (rows, N) float64, in the model's label order

    @property
    def scores(self) -> np.ndarray:
        """The probability of each row's chosen label (NaN for a row with an error)."""
        scores = np.full(len(self.probabilities), np.nan)
        answered = ~np.isnan(self.probabilities[:, 0])
        scores[answered] = self.probabilities[answered].max(axis=1)  # the chosen label is a most probable one
        return scores


def score_rows(model, rows: Rows) -> Answers:
    """Each row's label and probabilities, from ``model.predict_proba`` ((n, N) in ``model.labels`` order)."""
    n = len(rows)
    classes = len(model.labels)
    probabilities = np.full((n, classes), np.nan, dtype=np.float64)
    labels: list = [None] * n
    valid = [i for i, text in enumerate(rows.texts) if text is not None]
    for start in range(0, len(valid), SCORE_GROUP):
        group = valid[start: start + SCORE_GROUP]
        answer = np.asarray(model.predict_proba([rows.texts[i] for i in group]))
        if answer.shape != (len(group), classes):  # the runtime checks a file's outputs against its labels
            raise ModelFileError(f"{getattr(model, 'info', {}).get('file', 'the model')}: answered probabilities "
                                 f"of shape {answer.shape} for {len(group)} texts and {classes} labels")
        probabilities[group] = answer
        for i, index in zip(group, predicted_classes(answer).tolist()):
            labels[i] = model.labels[index]
    return Answers(labels, probabilities)
