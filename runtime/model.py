"""`load()`: a package folder, one model file or a bundled model -> a model that classifies raw text."""
from __future__ import annotations

import itertools
import numbers
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from sentilite import LABELS
from sentilite.shared.errors import BackendUnavailableError, ConfigError, ModelFileError, TokenizerFileError
from sentilite.shared.files import confined_path, parse_json, read_file_limited, sha256_bytes

from .backends import Backend, FORMAT_BACKENDS, available_backends, create_backend
from .embedded import TFLITE_METADATA_NAME, check_labels, has_metadata, key, read_tokenizer
from .flatbuffer import read_tflite_metadata
from .tokenizer import OOV_ID, PAD_ID, Tokenizer, TokenizerConfig, as_text

MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1
SUFFIX_FORMAT = {".onnx": "onnx", ".tflite": "tflite", ".npz": "numpy"}
PRECISIONS = ("fp32", "fp16", "dynamic-int8", "int8")
MAX_MANIFEST_BYTES = 16 << 20
MAX_TOKENIZER_BYTES = 64 << 20
MAX_MODEL_BYTES = 2 << 30  # read into memory whole: refuse a file that cannot be a sentilite model
# What a Prediction's warning says when its answer reads nothing of the text: the same words as
# `sentilite score`'s error for a row with no text (score.records.NO_TEXT).
NO_TEXT = "no text"  # empty or only white space
NO_KNOWN_WORDS = "no known words"  # words, but none in the model's vocabulary (emoji, another language)
# TFLite metadata of the file MediaPipe's TextClassifier reads (model.mediapipe.tflite), in place of sentilite's.
MEDIAPIPE_METADATA_NAME = "TFLITE_METADATA"


class Prediction(NamedTuple):
    """One text's answer, and whether the answer read anything of the text.

    A text with no word the model knows still gets a label and a score, which
    say nothing about it, so ``warning`` says so: NO_TEXT (empty or white
    space only), NO_KNOWN_WORDS (no word of the vocabulary among those the
    model reads), or None for a text the model read. ``probabilities`` are
    predict_proba's row for the text: every label's, in the model's order.
    """

    label: str
    score: float  # the probability of ``label``: 0.5 to 1 for two labels, at least 1/N for N
    known_words: int  # words of the text the model read that are in its vocabulary
    warning: str | None
    probabilities: tuple[float, ...] = ()  # of every label, in the order of the model's labels


def to_probabilities(outputs: np.ndarray, classes: int) -> np.ndarray:
    """A model's raw answer as float32 (n, N) probabilities in label order.

    A file of two labels answers P(labels[1]) per row, (n,) (or (n, 1)):
    its rows become [1 - p, p], with 1 - p computed in float32; a file of N
    labels answers (n, N) already. For export validation and evaluation,
    which hold raw answers of both kinds.
    """
    outputs = np.asarray(outputs)
    if classes == 2 and (outputs.ndim == 1 or (outputs.ndim == 2 and outputs.shape[1] == 1)):
        positive = outputs.reshape(-1).astype(np.float32, copy=False)
        out = np.empty((len(positive), 2), dtype=np.float32)
        out[:, 0] = 1.0 - positive
        out[:, 1] = positive
        return out
    if outputs.ndim != 2 or outputs.shape[1] != classes:
        raise ValueError(f"expected the answers of a model of {classes} labels, "
                         f"{'(n,) or ' if classes == 2 else ''}(n, {classes}), got shape {outputs.shape}")
    return outputs.astype(np.float32, copy=False)


def check_batch_size(batch_size) -> int:
    """A batch size of at least 1; 0 or less would make the engines spin forever or abort."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer of at least 1, got {batch_size!r}")
    return int(batch_size)


@dataclass
class SentimentModel:
    """Raw text in, a label of the model's out. Safe to share between threads.

    ``labels`` are the file's, in the order of its outputs: a model of two
    labels answers P(labels[1]) (one output), one of N > 2 a probability per
    label.
    """

    backend: Backend
    tokenizer: Tokenizer
    labels: tuple[str, ...] = LABELS
    batch_size: int = 64
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.batch_size = check_batch_size(self.batch_size)
        self.labels = tuple(self.labels)
        outputs = getattr(self.backend, "outputs", 1)  # a stand-in for a Backend may not say: one output
        if outputs != (1 if len(self.labels) == 2 else len(self.labels)):
            raise ConfigError(f"{len(self.labels)} labels for a file of "
                              f"{'one output (two labels)' if outputs == 1 else f'{outputs} labels'}")

    def predict_ids(self, ids: np.ndarray) -> np.ndarray:
        """The raw answers for padded ids (n, maxlen), in batches: as ``Backend.run`` gives them.

        float32 (n,) P(labels[1]) for a model of two labels, (n, N)
        probabilities in label order for N > 2; ``to_probabilities`` makes
        (n, N) of either.
        """
        ids = np.asarray(ids, dtype=np.int32)
        if ids.ndim != 2 or ids.shape[1] != self.tokenizer.config.maxlen:
            raise ValueError(f"ids must have shape (n, {self.tokenizer.config.maxlen}), got {ids.shape}")
        return run_batches(self.backend, ids, self.batch_size)

    def predict_proba(self, texts: Iterable) -> np.ndarray:
        """float32 (n, N): the probability of each label, in label order, in input order.

        Two labels: P(negative), P(positive) (the labels' order), 1 - p and p.
        """
        outputs = self._outputs(texts)
        if outputs.ndim == 1 and len(outputs) == 1:  # one text, two labels, the usual call on a device:
            p = float(outputs[0])  # Python floats, cheaper than numpy's scalars
            # 1 - p in float64 rounded to float32 is exactly float32's 1 - p: one operation, 53 >= 2 x 24 + 2 bits
            return np.array([[1.0 - p, p]], dtype=np.float32)
        return to_probabilities(outputs, len(self.labels))

    def predict(self, texts: Iterable) -> list[str]:
        """The label of each text: p >= 0.5 picks labels[1] for two labels, the most probable one for N."""
        outputs = self._outputs(texts)
        if outputs.ndim == 1:
            return [self.labels[int(p >= 0.5)] for p in outputs]
        return [self.labels[k] for k in np.argmax(outputs, axis=1).tolist()]

    def iter_predict(self, texts: Iterable) -> Iterator[tuple[str, float]]:
        """(label, score of that label) per text, streaming: holds one batch at a time."""
        for prediction in self.iter_predictions(texts):
            yield prediction.label, prediction.score

    def iter_predictions(self, texts: Iterable) -> Iterator[Prediction]:
        """A Prediction per text, streaming: holds one batch at a time.

        The labels and scores are iter_predict's; each also says how many
        known words the model read, and warns (NO_TEXT, NO_KNOWN_WORDS) when
        the answer read nothing of the text.
        """
        batch_size = check_batch_size(self.batch_size)
        batch: list[str] = []
        for index, text in enumerate(texts):
            batch.append(as_text(text, index))
            if len(batch) == batch_size:
                yield from self._predictions(batch)
                batch = []
        if batch:
            yield from self._predictions(batch)

    def predictions(self, texts: Iterable) -> list[Prediction]:
        """iter_predictions as a list."""
        if isinstance(texts, (str, bytes)):
            raise TypeError("expected a list of texts, got a single text; wrap it in a list")
        return list(self.iter_predictions(texts))

    def _predictions(self, batch: list[str]) -> Iterator[Prediction]:
        ids = self.tokenizer.encode_batch(batch)
        known = np.count_nonzero(ids > OOV_ID, axis=1).tolist()  # ids 0 and 1 are padding and out-of-vocabulary
        outputs = self.predict_ids(ids)
        for text, p, words in zip(batch, outputs, known):
            warning = None if words else NO_TEXT if not text.strip() else NO_KNOWN_WORDS
            if outputs.ndim == 1:
                positive = bool(p >= 0.5)
                negative = float(1.0 - p)  # float32's 1 - p, as predict_proba gives it
                yield Prediction(self.labels[int(positive)], float(p) if positive else negative, words, warning,
                                 (negative, float(p)))
            else:
                probabilities = tuple(p.tolist())
                top = int(p.argmax())
                yield Prediction(self.labels[top], probabilities[top], words, warning, probabilities)

    def encode_one(self, text) -> np.ndarray:
        """The (1, width) int32 row this model's file reads for one text.

        One text is the usual call on a device. A variable-length file gets
        the cut row straight away rather than a padded maxlen row that
        run_batches would cut again (the row is the same, made once); any
        other file gets the padded row.
        """
        text = as_text(text, 0)
        if self.backend.variable_length and self.tokenizer.config.padding == "pre":
            return cut_row(self.tokenizer.encode(text), self.tokenizer.config)
        return self.tokenizer.encode_batch([text])

    def _outputs(self, texts) -> np.ndarray:
        """The raw answers for texts, as ``predict_ids`` gives them; one text from its cut row."""
        if isinstance(texts, (str, bytes)):
            raise TypeError("expected a list of texts, got a single text; wrap it in a list")
        if isinstance(texts, (list, tuple)) and len(texts) == 1:
            return self.backend.run(self.encode_one(texts[0]))
        return self.predict_ids(self.tokenizer.encode_batch(texts))


# Rows are cut to their length rounded up to a multiple of this. A row's answer
# then depends on its own length alone, never on the other texts in its batch
# (8-bit files quantize the padding row, so the same row cut at two widths can
# differ in the last digits); it costs 7.5 extra steps a review on average.
LENGTH_BUCKET = 16


def cut_widths(ids: np.ndarray) -> np.ndarray:
    """How many trailing columns of each padded row a variable-length file is given."""
    width = ids.shape[1]
    nonzero = ids != PAD_ID
    lengths = np.where(nonzero.any(axis=1), width - nonzero.argmax(axis=1), 0)
    return _bucket_width(lengths, width)


def _bucket_width(lengths, maxlen: int):
    """A length (or an array of them) rounded up to a multiple of LENGTH_BUCKET, at least one bucket, at most maxlen."""
    if isinstance(lengths, int):  # one text: Python's min/max, cheaper than numpy's ufuncs on a scalar
        return min(maxlen, max(1, -(-lengths // LENGTH_BUCKET)) * LENGTH_BUCKET)
    return np.minimum(maxlen, np.maximum(1, -(-lengths // LENGTH_BUCKET)) * LENGTH_BUCKET)


def cut_row(ids: Sequence[int], config: TokenizerConfig) -> np.ndarray:
    """One text's unpadded ids as the (1, width) row ``run_batches`` gives a variable-length file.

    Equal to ``pad_ids`` to maxlen, then the cut of ``cut_widths``, without the maxlen row.
    """
    maxlen = config.maxlen
    ids = ids[-maxlen:] if config.truncating == "pre" else ids[:maxlen]
    n = len(ids)
    width = _bucket_width(n, maxlen)
    row = np.zeros((1, width), dtype=np.int32)  # PAD_ID is 0, and np.zeros is cheaper than np.full
    if n:
        row[0, width - n:] = ids
    return row


def run_batches(backend: Backend, ids: np.ndarray, batch_size: int, cut: bool = True) -> np.ndarray:
    """``backend.run`` for padded ids (n, maxlen), batch by batch, in input order: (n,) or (n, N).

    On a variable-length backend each row is cut to its length, rounded up
    to a multiple of LENGTH_BUCKET, and rows of the same width share batches.
    The file starts a cut row from the state the left-out padding would have
    reached, so the answer is the same; one IMDB review then costs its own
    length, not maxlen. ``cut=False`` feeds whole rows (the benchmark times the engine alone so).
    """
    check_batch_size(batch_size)
    n = len(ids)
    outputs = getattr(backend, "outputs", 1)  # a stand-in for a Backend may not say: one output
    out = np.empty(n if outputs == 1 else (n, outputs), dtype=np.float32)
    if not (cut and backend.variable_length):
        for start in range(0, n, batch_size):
            out[start: start + batch_size] = backend.run(ids[start: start + batch_size])
        return out
    width = ids.shape[1]
    steps = cut_widths(ids)
    order = np.argsort(steps, kind="stable")
    sorted_steps = steps[order]
    start = 0
    while start < n:
        kept = int(sorted_steps[start])
        end = min(start + batch_size, int(np.searchsorted(sorted_steps, kept, side="right")))
        rows = order[start:end]
        out[rows] = backend.run(ids[rows, width - kept:])
        start = end
    return out


# -- loading -----------------------------------------------------------------------------
def _left_out_note(manifest: dict, format: str | None, precision: str | None) -> str:
    """Why export left out the files asked for, from the manifest's "skipped" (read as untrusted: strings only)."""
    skipped = manifest.get("skipped")
    notes = []
    for entry in skipped if isinstance(skipped, list) else ():
        if (not isinstance(entry, dict) or entry.get("client")
                or not all(isinstance(entry.get(k), str) for k in ("file", "reason"))):
            continue  # another client's file, or not an entry export writes
        if (format is None or entry.get("format") == format) and (precision is None or entry.get("precision")
                                                                  in (precision, None)):
            notes.append(f"{entry['file'][:80]} was left out at export: {entry['reason'][:300]}")
    return "".join(f"; {note}" for note in notes[:5])


def load(path: str | os.PathLike | None = None, format: str | None = None, precision: str | None = None,
         backend: str | None = None, batch_size: int = 64, num_threads: int | None = None) -> SentimentModel:
    """Load a package folder (manifest.json), a single .onnx / .tflite / .npz file, or a bundled model.

    With no path, or the name of a bundled model (``"imdb-gru"``) that is
    not also a file or folder here, the model shipped inside sentilite
    answers. In a package, ``format``, ``precision`` and ``backend`` narrow
    the choice of file; what they leave open is chosen by DEFAULT_ORDER,
    and ``info["file"]`` says which file it was. Everything is checked
    before any inference: sha256 of every file against the manifest, the
    embedded tokenizer against tokenizer.json, and the model's input length
    and vocabulary against the tokenizer.
    """
    batch_size = check_batch_size(batch_size)
    path, bundled_name = resolve_model_path(path)
    if path.is_dir():
        model = _load_package(path, format, precision, backend, batch_size, num_threads)
    else:
        model = _load_file(path, format, backend, batch_size, num_threads)
    if bundled_name is not None:
        model.info["bundled"] = bundled_name
    return model


def resolve_model_path(path: str | os.PathLike | None) -> tuple[Path, str | None]:
    """The file or folder ``path`` names, and the bundled model's name when it names one.

    A file or folder of that name wins over a bundled model, so a path that
    works today keeps working.
    """
    bundled = _bundled_models()
    if path is None:
        if bundled is None:
            raise ModelFileError("no model given, and this install holds no bundled model: pass a package folder "
                                 "or a .onnx / .tflite / .npz file")
        return bundled.path(), bundled.DEFAULT_MODEL
    if isinstance(path, str) and bundled is not None and path in bundled.NAMES and not Path(path).exists():
        return bundled.path(path), path
    return Path(path), None


def _bundled_models():
    """sentilite.runtime.bundled, or None where this install has no bundled models."""
    try:
        from . import bundled
    except ImportError:
        return None
    return bundled


def _load_file(path: Path, format, backend, batch_size, num_threads) -> SentimentModel:
    if not path.exists():
        bundled = _bundled_models()
        names = f" (bundled models: {', '.join(bundled.NAMES)})" if bundled is not None and bundled.NAMES else ""
        raise ModelFileError(f"{path}: no such model file or package folder{names}")
    fmt = SUFFIX_FORMAT.get(path.suffix.lower())
    if fmt is None:
        raise ModelFileError(f"{path}: unknown model file type {path.suffix!r}; expected .onnx, .tflite or .npz")
    if format is not None and format != fmt:
        raise ModelFileError(f"{path}: is a {fmt} file, not {format}")
    content = _read(path)
    if fmt == "tflite" and is_mediapipe_file(content):
        raise ModelFileError(mediapipe_file_message(path))
    engine = create_backend(fmt, content, str(path), backend, num_threads)
    tokenizer, _ = read_tokenizer(engine.metadata, str(path))
    labels = engine.labels  # read and checked with the file's metadata; a file has metadata once its tokenizer is read
    _check_consistent(engine, tokenizer, str(path))
    info = {"file": str(path), "format": fmt, "backend": engine.name,
            "cell": engine.metadata.get(key("cell")), "precision": engine.metadata.get(key("precision"))}
    return SentimentModel(engine, tokenizer, labels, batch_size, info)


def is_mediapipe_file(content: bytes) -> bool:
    """A .tflite made for MediaPipe's TextClassifier: MediaPipe's metadata, none of sentilite's.

    It reads the ids of its own vocab.txt, after MediaPipe's tokenizer, so
    sentilite's runtime must not feed it sentilite's ids.
    """
    try:
        names = read_tflite_metadata(content)
    except ValueError:  # not readable as a TFLite file at all: the backend says what is wrong
        return False
    return MEDIAPIPE_METADATA_NAME in names and TFLITE_METADATA_NAME not in names


def mediapipe_file_message(path: Path) -> str:
    return (f"{path}: a MediaPipe TextClassifier file, made for MediaPipe's clients (Android, iOS, web), not for "
            f"sentilite's runtime: it carries MediaPipe's {MEDIAPIPE_METADATA_NAME} and no sentilite metadata, and "
            f"reads MediaPipe's own token ids; {mediapipe_alternative(path)}")


def mediapipe_alternative(path: Path) -> str:
    """Which file sentilite runs in place of a MediaPipe file: its package's model.int8.tflite, or the package."""
    folder, sibling = path.parent, path.parent / "model.int8.tflite"
    if (folder / MANIFEST_FILE).is_file():
        return f"use the package folder {folder}, or {sibling} (the same model for sentilite)"
    if sibling.is_file():
        return f"use {sibling} (the same model for sentilite)"
    return "use the package's model.int8.tflite (the same model for sentilite), or the package folder"


def read_manifest(folder: Path) -> dict:
    """manifest.json, checked: its JSON is capped and every entry it has is of the right kind."""
    path = folder / MANIFEST_FILE
    source = str(path)
    if not path.exists():
        raise ModelFileError(_not_a_package(folder))
    raw = _read(path, missing=f"{folder}: not a sentilite package (no {MANIFEST_FILE})", limit=MAX_MANIFEST_BYTES)
    manifest = parse_json(raw, source, ModelFileError, MAX_MANIFEST_BYTES)
    if not isinstance(manifest, dict):
        raise ModelFileError(f"{source}: expected a JSON object")
    if manifest.get("format_version") != MANIFEST_VERSION:
        raise ModelFileError(f"{source}: unknown manifest format_version {manifest.get('format_version')!r}")
    for name in ("tokenizer", "artifacts", "labels"):
        if name not in manifest:
            raise ModelFileError(f"{source}: missing {name!r}")
    manifest["labels"] = list(check_labels(manifest["labels"], f"{source}: labels"))
    tok = manifest["tokenizer"]
    if not isinstance(tok, dict) or not isinstance(tok.get("sha256"), str):
        raise ModelFileError(f"{source}: 'tokenizer' must be an object with a sha256")
    confined_path(folder, tok.get("file", "tokenizer.json"), f"{source}: tokenizer", ModelFileError)
    artifacts = manifest["artifacts"]
    if not isinstance(artifacts, list) or not artifacts:
        raise ModelFileError(f"{source}: 'artifacts' must be a non-empty list")
    for index, artifact in enumerate(artifacts):
        where = f"{source}: artifacts[{index}]"
        if not isinstance(artifact, dict):
            raise ModelFileError(f"{where} is not an object")
        confined_path(folder, artifact.get("file"), where, ModelFileError)
        if not isinstance(artifact.get("format"), str) or artifact["format"] not in FORMAT_BACKENDS:
            raise ModelFileError(f"{where}: unknown format {artifact.get('format')!r}")
        if artifact.get("precision") not in PRECISIONS:
            raise ModelFileError(f"{where}: unknown precision {str(artifact.get('precision'))[:40]!r}")
        if not isinstance(artifact.get("bytes"), int) or not isinstance(artifact.get("sha256"), str):
            raise ModelFileError(f"{where}: needs its size in bytes and its sha256")
    return manifest


def _not_a_package(folder: Path) -> str:
    """The error for a folder with no manifest, naming the model files it holds, which load one by one."""
    message = f"{folder}: not a sentilite package (no {MANIFEST_FILE})"
    try:
        with os.scandir(folder) as entries:
            names = [e.name for e in itertools.islice(entries, 10_000)
                     if Path(e.name).suffix.lower() in SUFFIX_FORMAT and e.is_file()]
    except OSError:
        return message
    if not names:
        return message
    names.sort(key=lambda name: ("mediapipe" in name, name))  # MediaPipe's file is not for this runtime
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return f"{message}; it holds {shown}: load a file itself, e.g. {folder / names[0]}"


# The order a package's files are chosen in where load() leaves the choice open, fastest first for one text at
# a time on a CPU: ONNX fp32, dynamic-int8 and fp16 answer a review in about 0.2 ms, TFLite files in 0.15 to
# 0.5 ms, static int8 ONNX several times slower (its Scan runs 5 to 15 small kernels a step), and numpy, which
# needs no engine, slower still. Within a format the exact fp32 file leads. A file whose engine is not installed
# here comes after every file whose engine is.
DEFAULT_ORDER = (("onnx", "fp32"), ("onnx", "dynamic-int8"), ("onnx", "fp16"), ("tflite", "fp32"),
                 ("tflite", "dynamic-int8"), ("tflite", "fp16"), ("tflite", "int8"), ("onnx", "int8"),
                 ("numpy", "fp32"))


def choose_artifact(manifest: dict, folder: Path, format: str | None, precision: str | None,
                    backend: str | None) -> dict:
    # Files made for another client (MediaPipe's TextClassifier) read other ids: never picked here.
    artifacts = [a for a in manifest["artifacts"] if not a.get("client")]
    if format is not None:
        artifacts = [a for a in artifacts if a.get("format") == format]
    if precision is not None:
        artifacts = [a for a in artifacts if a.get("precision") == precision]
    if backend is not None:
        artifacts = [a for a in artifacts if backend in FORMAT_BACKENDS.get(a.get("format"), ())]
    if not artifacts:
        have = sorted(f"{a.get('format')}/{a.get('precision')}" for a in manifest["artifacts"])
        raise ModelFileError(
            f"{folder}: no file with format={format} precision={precision} backend={backend}; it holds {have}"
            + _left_out_note(manifest, format, precision)
        )
    formats = {fmt: rank for rank, fmt in enumerate(FORMAT_BACKENDS)}
    installed = {fmt: bool(backend or available_backends(fmt)) for fmt in formats}

    def rank(a):
        choice = (a.get("format"), a.get("precision"))
        known = DEFAULT_ORDER.index(choice) if choice in DEFAULT_ORDER else len(DEFAULT_ORDER)
        return (not installed.get(a.get("format"), False), known, formats.get(a.get("format"), 9),
                PRECISIONS.index(a["precision"]) if a.get("precision") in PRECISIONS else 9)

    return sorted(artifacts, key=rank)[0]


def eight_bit_choice(manifest: dict) -> tuple[str, str] | None:
    """(format, precision) that answers a request for an 8-bit file of a package fastest here, or None.

    model.int8.tflite where an engine for it is installed; else
    dynamic-int8 ONNX, whose weights are 8-bit too: static int8 ONNX runs
    several times slower on a CPU. None when the package has neither (the
    static int8 file, if any, is then the one to use).
    """
    held = {(a.get("format"), a.get("precision")) for a in manifest["artifacts"] if not a.get("client")}
    for fmt, precision in (("tflite", "int8"), ("onnx", "dynamic-int8")):
        if (fmt, precision) in held and available_backends(fmt):
            return fmt, precision
    return None


def _load_package(folder: Path, format, precision, backend, batch_size, num_threads) -> SentimentModel:
    manifest = read_manifest(folder)
    tok_entry = manifest["tokenizer"]
    tok_path = confined_path(folder, tok_entry.get("file", "tokenizer.json"), str(folder / MANIFEST_FILE),
                             ModelFileError)
    tok_bytes = _read(tok_path, limit=MAX_TOKENIZER_BYTES)
    if sha256_bytes(tok_bytes) != tok_entry.get("sha256"):
        raise ModelFileError(f"{tok_path}: sha256 does not match {folder / MANIFEST_FILE}")
    try:
        tokenizer = Tokenizer.from_json(tok_bytes, source=str(tok_path))
    except TokenizerFileError as exc:
        raise ModelFileError(str(exc)) from None
    artifact = choose_artifact(manifest, folder, format, precision, backend)
    file = confined_path(folder, artifact["file"], str(folder / MANIFEST_FILE), ModelFileError)
    content = _read(file)
    if len(content) != artifact.get("bytes") or sha256_bytes(content) != artifact.get("sha256"):
        raise ModelFileError(
            f"{file}: size or sha256 does not match {folder / MANIFEST_FILE} (damaged or replaced file)"
        )
    engine = create_backend(artifact["format"], content, str(file), backend, num_threads)
    if has_metadata(engine.metadata):
        _, embedded_sha = read_tokenizer(engine.metadata, str(file))
        if embedded_sha != tok_entry.get("sha256"):
            raise ModelFileError(f"{file}: its embedded tokenizer differs from {tok_path}")
    _check_consistent(engine, tokenizer, str(file))
    labels = tuple(manifest["labels"])
    _check_package_labels(engine, labels, str(file), str(folder / MANIFEST_FILE))
    info = {"file": str(file), "format": artifact["format"], "precision": artifact["precision"],
            "backend": engine.name, "cell": manifest.get("cell"), "package": str(folder)}
    return SentimentModel(engine, tokenizer, labels, batch_size, info)


def _check_package_labels(engine: Backend, labels: tuple[str, ...], source: str, manifest_source: str) -> None:
    """The manifest's labels are the file's: the same names where the file carries them, else two."""
    if engine.labels is not None:
        if engine.labels != labels:
            raise ModelFileError(f"{source}: its labels {list(engine.labels)!r:.120} differ from the labels of "
                                 f"{manifest_source} {list(labels)!r:.120}")
    elif len(labels) != 2:
        raise ModelFileError(f"{manifest_source}: {len(labels)} labels for {source}, a file of one output "
                             f"(two labels) without sentilite metadata")


def _check_consistent(engine: Backend, tokenizer: Tokenizer, source: str) -> None:
    maxlen = tokenizer.config.maxlen
    shape = getattr(engine, "input_shape", None) or [None, None]
    if isinstance(shape[1], int) and shape[1] > 0 and shape[1] != maxlen:
        raise ModelFileError(f"{source}: the model reads {shape[1]} ids per text but the tokenizer pads to {maxlen}")
    declared = engine.declared
    if declared is not None:
        if declared.maxlen != maxlen:
            raise ModelFileError(f"{source}: the model reads {declared.maxlen} ids per text but the tokenizer "
                                 f"pads to {maxlen}")
        if declared.vocab_size != tokenizer.config.vocab_size:
            raise ModelFileError(f"{source}: the model has {declared.vocab_size} ids but the tokenizer has "
                                 f"{tokenizer.config.vocab_size}")


def _read(path: Path, missing: str | None = None, limit: int = MAX_MODEL_BYTES) -> bytes:
    return read_file_limited(path, limit, ModelFileError, missing=missing)


__all__ = ["NO_KNOWN_WORDS", "NO_TEXT", "Prediction", "SentimentModel", "load", "read_manifest",
           "to_probabilities", "BackendUnavailableError"]
