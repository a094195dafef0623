"""The metadata every model file carries about itself (tokenizer, labels, input), read as hostile data.

Every field is checked when the file is loaded, so a bad file is refused by
``load()`` with a ModelFileError, not by an IndexError at predict time. The
embedded tokenizer is decompressed with a size cap, so a zlib bomb costs
bounded time and memory.
"""
from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass

from sentilite.shared.errors import ModelFileError, TokenizerFileError
from sentilite.shared.files import decompress_limited, parse_json, sha256_bytes

from .architecture import MAX_CLASSES, MAX_LABEL_CHARS, MIN_CLASSES
from .tokenizer import Tokenizer

KEY_PREFIX = "sentilite"
METADATA_VERSION = 1
TFLITE_METADATA_NAME = "sentilite"  # name of the TFLite metadata buffer holding the JSON of keys
# Far above what sentilite writes (a 20,000-word tokenizer is ~0.4 MB, its JSON keys < 1 KB).
MAX_TOKENIZER_BYTES = 16 << 20
MAX_FIELD_BYTES = 1 << 20
MAX_MAXLEN = 100_000
MAX_VOCAB = 10_000_000


@dataclass(frozen=True)
class DeclaredInput:
    """What the file says about its input: ids per row, vocabulary, whether shorter rows are allowed."""

    maxlen: int
    vocab_size: int
    variable_length: bool = False


def key(name: str) -> str:
    return f"{KEY_PREFIX}.{name}"


def has_metadata(meta: Mapping[str, str]) -> bool:
    return key("metadata_version") in meta


def check_version(meta: Mapping[str, str], source: str) -> None:
    version = meta.get(key("metadata_version"))
    if version is None:
        raise ModelFileError(f"{source}: carries no sentilite metadata (not exported by sentilite?)")
    if version != str(METADATA_VERSION):
        raise ModelFileError(f"{source}: unknown sentilite metadata version {version!r} "
                             f"(this sentilite reads {METADATA_VERSION}); upgrade sentilite")


def read_tokenizer(meta: Mapping[str, str], source: str) -> tuple[Tokenizer, str]:
    """The embedded tokenizer and the sha256 of its tokenizer.json bytes."""
    check_version(meta, source)
    try:
        blob, expected = meta[key("tokenizer.zlib_base64")], meta[key("tokenizer.sha256")]
    except KeyError as exc:
        raise ModelFileError(f"{source}: metadata lacks {exc}") from None
    if len(blob) > MAX_TOKENIZER_BYTES:
        raise ModelFileError(f"{source}: embedded tokenizer of {len(blob):,} bytes is over the limit")
    try:
        packed = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ModelFileError(f"{source}: embedded tokenizer is corrupt ({exc})") from None
    raw = decompress_limited(packed, f"{source}: embedded tokenizer", ModelFileError, MAX_TOKENIZER_BYTES)
    actual = sha256_bytes(raw)
    if actual != expected:
        raise ModelFileError(f"{source}: embedded tokenizer sha256 {actual} does not match the recorded {expected}")
    try:
        return Tokenizer.from_json(raw, source=f"{source} (embedded tokenizer)"), actual
    except TokenizerFileError as exc:
        raise ModelFileError(str(exc)) from None


def read_json_field(meta: Mapping[str, str], name: str, source: str, *, required: bool = True):
    raw = meta.get(key(name))
    if raw is None:
        if required:
            raise ModelFileError(f"{source}: metadata lacks {key(name)}")
        return None
    return parse_json(raw, f"{source}: metadata {key(name)}", ModelFileError, MAX_FIELD_BYTES)


def read_labels(meta: Mapping[str, str], source: str) -> tuple[str, ...]:
    """The file's ``sentilite.labels``, checked, and checked against the labels of its ``sentilite.model``.

    A model JSON without labels (every file of sentilite 0.3 and before) is
    a model of two labels, so its file must name two.
    """
    labels = check_labels(read_json_field(meta, "labels", source), f"{source}: metadata {key('labels')}")
    model = read_json_field(meta, "model", source, required=False)
    declared = model.get("labels") if isinstance(model, dict) else None
    if declared is None:
        if len(labels) != 2:
            raise ModelFileError(f"{source}: metadata {key('labels')} names {len(labels)} labels, but its "
                                 f"{key('model')} carries no labels: a model of two")
        return labels
    declared = check_labels(declared, f"{source}: metadata {key('model')}")
    if declared != labels:
        raise ModelFileError(f"{source}: metadata {key('labels')} {_short(list(labels))} differs from the labels "
                             f"of its {key('model')} {_short(list(declared))}")
    return labels


def check_labels(labels, source: str) -> tuple[str, ...]:
    """MIN_CLASSES..MAX_CLASSES distinct, non-empty, short strings, in the order of the model's outputs."""
    problem = label_problem(labels)
    if problem is not None:
        raise ModelFileError(f"{source}: labels must be {MIN_CLASSES} to {MAX_CLASSES} distinct non-empty strings "
                             f"of at most {MAX_LABEL_CHARS} characters ({problem}), got {_short(labels)}")
    return tuple(labels)


def label_problem(labels) -> str | None:
    """What is wrong with a JSON list of labels, in a few words; None when nothing is."""
    if not isinstance(labels, (list, tuple)):
        return f"not a list but {'null' if labels is None else type(labels).__name__}"
    if not MIN_CLASSES <= len(labels) <= MAX_CLASSES:
        return f"{len(labels)} label{'' if len(labels) == 1 else 's'}"
    seen = set()
    for index, label in enumerate(labels):
        if not isinstance(label, str):
            return f"label {index} is not a string"
        if not label:
            return f"label {index} is empty"
        if len(label) > MAX_LABEL_CHARS:
            return f"label {index} has {len(label):,} characters"
        if label in seen:
            return f"{_short(label)} appears twice"
        seen.add(label)
    return None


def read_declared_input(meta: Mapping[str, str], source: str) -> DeclaredInput | None:
    """The file's ``sentilite.input`` object, checked; None for files without sentilite metadata."""
    data = read_json_field(meta, "input", source, required=has_metadata(meta))
    if data is None:
        return None
    where = f"{source}: metadata {key('input')}"
    if not isinstance(data, dict):
        raise ModelFileError(f"{where}: expected a JSON object, got {_short(data)}")
    for name, high in (("maxlen", MAX_MAXLEN), ("vocab_size", MAX_VOCAB)):
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
            raise ModelFileError(f"{where}: {name} must be an integer in 1..{high:,}, got {_short(value)}")
    variable = data.get("variable_length", False)
    if not isinstance(variable, bool):
        raise ModelFileError(f"{where}: variable_length must be true or false, got {_short(variable)}")
    return DeclaredInput(data["maxlen"], data["vocab_size"], variable)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
