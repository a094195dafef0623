"""model.mediapipe.tflite: the int8 graph, its metadata and vocabulary, within the size limit an app allows."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from sentilite.runtime.architecture import BINARY_LABELS, ModelConfig
from sentilite.runtime.tokenizer import Tokenizer
from sentilite.shared.files import atomic_write_bytes

from ..errors import ConversionError
from .graph import convert_unrolled
from .int8_weights import store_weights_int8
from .metadata import LABEL_FILE, VOCAB_FILE, attach_metadata, metadata_flatbuffer
from .regex_tokenizer import DELIMITER_PATTERN, mobile_length
from .vocabulary import MobileVocabulary, build_vocabulary

log = logging.getLogger("sentilite.export")

# The limit for an 8-bit file that ships inside an app.
MAX_FILE_BYTES = 1 << 20
# Bytes kept free under MAX_FILE_BYTES for flatbuffer alignment and the zip's own records.
SIZE_MARGIN = 1024


def _row_bytes(model: ModelConfig, weights: dict[str, np.ndarray]) -> int:
    """Bytes of int8 weights one vocabulary id costs: its input-table row and its unigram weights (one a logit)."""
    table = weights.get("embedding")
    width = (table if table is not None else weights["kernel"]).shape[1]
    return int(width) + (model.outputs if model.ngram_buckets else 0)


def _description(ctx, length: int) -> str:
    """What the file does, for its metadata; a model of the default two labels is the IMDB sentiment model."""
    if tuple(ctx.labels) == BINARY_LABELS:
        what = "IMDB movie-review sentiment"
    else:
        what = f"Text classification into {len(ctx.labels)} labels"
    return f"{what}, {ctx.model.cell} cell (sentilite {ctx.name}). The model reads the last {ctx.maxlen} tokens of " \
           f"the first {length}."


def _zip_bytes(files: dict[str, bytes]) -> int:
    """Size of the stored zip: per file a local header (30) and a central record (46) with its name, then 22."""
    return sum(76 + 2 * len(name) + len(content) for name, content in files.items()) + 22


def build_file(ctx, *, max_bytes: int = MAX_FILE_BYTES) -> tuple[bytes, MobileVocabulary]:
    """model.mediapipe.tflite for ``ctx`` (an ExportContext): the graph, int8 weights, metadata and files.

    The graph is converted once with every id, to measure it; the
    vocabulary then takes what is left under ``max_bytes``, and the graph is
    converted again if some ids were left out.
    """
    tokenizer = Tokenizer.from_json(ctx.tokenizer_json)
    length, vocab_size = mobile_length(ctx.maxlen), ctx.vocab_size
    labels = "".join(f"{label}\n" for label in ctx.labels).encode("utf-8")
    row_bytes = _row_bytes(ctx.model, ctx.weights)
    whole = store_weights_int8(convert_unrolled(ctx.model, ctx.weights, ctx.maxlen, vocab_size, vocab_size, length))

    def metadata_for(vocab: MobileVocabulary | None) -> bytes:
        detail = "" if vocab is None else (
            f" Vocabulary: {len(vocab.lines):,} token id lines for {vocab.kept_ids:,} of {vocab.vocab_size:,} ids, "
            f"reaching {vocab.coverage:.2%} of the training reviews' words.")
        return metadata_flatbuffer(
            name=f"sentilite {ctx.name}", version=_sentilite_version(), input_name="ids", output_name="probabilities",
            delimiter=DELIMITER_PATTERN, labels_description=", ".join(ctx.labels),
            description=_description(ctx, length) + detail)

    # the description grows by at most ~120 characters once the vocabulary is known
    fixed = len(whole) - vocab_size * row_bytes + len(metadata_for(None)) + 160 + _zip_bytes(
        {VOCAB_FILE: b"", LABEL_FILE: labels}) + 64 + SIZE_MARGIN
    vocab = build_vocabulary(tokenizer, ctx.training_texts, max_bytes - fixed, row_bytes)
    graph = whole if vocab.kept_ids == vocab_size else store_weights_int8(
        convert_unrolled(ctx.model, ctx.weights, ctx.maxlen, vocab_size, vocab.kept_ids, length))
    data = attach_metadata(graph, metadata_for(vocab), {VOCAB_FILE: vocab.file_bytes(), LABEL_FILE: labels})
    if len(data) > max_bytes:
        raise ConversionError(f"model.mediapipe.tflite of the {ctx.model.cell} model is {len(data):,} bytes, over "
                              f"{max_bytes:,}")
    return data, vocab


def _sentilite_version() -> str:
    from sentilite import __version__

    return __version__


def export_mediapipe(ctx, precision: str, path: str | os.PathLike, *, metadata: dict | None = None) -> Path:
    """Write model.mediapipe.tflite. ``metadata`` (the sentilite keys) is not embedded: the runtime never
    loads this file, and its compressed tokenizer would take room the vocabulary needs."""
    data, vocab = build_file(ctx)
    log.info("model.mediapipe.tflite: %s bytes; vocabulary %s", f"{len(data):,}", vocab.to_dict())
    return atomic_write_bytes(path, data)

