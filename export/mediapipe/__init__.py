"""model.mediapipe.tflite: a file MediaPipe's TextClassifier and the TFLite Task Library's NLClassifier run as it is.

Those clients tokenize the text themselves, from TFLite Support metadata in
the file (a RegexTokenizer, a ``token id`` vocabulary, a label file), and
feed the model one int32 row ``[1, L]``: the tokens' ids from the front,
``<PAD>`` after them, the first L tokens kept. What differs from the
sentilite files, and why:

- One subgraph, no WHILE: MediaPipe refuses any file with more than one
  ("Classification tflite models are assumed to have a single subgraph").
  The cell is unrolled over its window (``model.steps(maxlen)`` steps, from
  the zero state, padding steps included: the same arithmetic as Keras).
- The clients pad at the end; the model was trained on rows padded at the
  front and reads the last ``window`` ids. Real ids are never 0 (``<PAD>``
  is 0, ``<UNKNOWN>`` is 1, the sentilite ``<oov>``), so the graph counts
  them and gathers the last ``maxlen`` of them into a front-padded row:
  the very row the sentilite tokenizer would have made.
- The delimiter pattern reproduces the sentilite word rule (letters and
  digits, apostrophes only inside a word, ``<br />`` a separator), so
  every client token is a sentilite word before lower-casing. The clients
  never lower-case, so the vocabulary lists casing variants ("the",
  "The", "THE") under one id. Vocabulary lines cost bytes in a file held to
  1 MiB, so they are chosen by how often they occur in training reviews;
  the rarest ids may be left out (they read as ``<UNKNOWN>``, as any word
  outside the vocabulary does), which also drops their weight rows.
- Weights are int8 (symmetric; per output channel for matrices) and turned
  back into float32 by DEQUANTIZE (the two lookup tables after their GATHER),
  so every operator computes in float32 as the Keras model does: the only
  loss is the rounding of the weights.
- The output is float32 ``[1, N]``, one score per label in the label
  file's order: for two labels P(negative), P(positive) from the one
  logit's sigmoid, for more the softmax. MediaPipe refuses int8 outputs.
- The associated files are zipped uncompressed: MediaPipe's reader refuses
  anything else ("Expected uncompressed zip archive.",
  mediapipe/tasks/cc/metadata/utils/zip_utils.cc).

The package, one module a concern:

    regex_tokenizer  what the clients' RegexTokenizer makes of a text (DELIMITER_PATTERN, the row of ids)
    vocabulary       vocab.txt: the token id lines that fit the size limit
    graph            the forward pass unrolled over the client's row, converted to float32
    int8_weights     the converted file's weights stored as int8, its tensor names dropped
    metadata         the TFLite Support metadata and the zip of associated files
    file             the whole file within MAX_FILE_BYTES (export_mediapipe)
    reader           the file read back: associated files, vocabulary, the manifest's description
    client           the real clients in their venv, and the emulation of them
    client_venv      a script run by path: creates the clients' venv and runs them inside it
    validation       the check export_package runs on the file (validate_mediapipe)

Some models get no file (``unsupported_reason``): the RegexTokenizer splits
a text at the matches of its delimiter pattern and keeps only what lies
between them (mediapipe/tasks/cc/text/tokenizers/regex_tokenizer.cc wraps
the pattern in one group and ends each token where that group starts), so
a token is never shorter than the run of characters between two
delimiters. Making each Han, Hiragana or Katakana character a token would
need a delimiter of width zero between two of them: RE2 has no lookaround,
its ``\b`` knows ASCII word characters only, and an empty match would not
move the tokenizer on. A model whose tokenizer makes such characters words
of their own (``TokenizerConfig.character_words``) cannot be fed the ids it
was trained on.
"""
from __future__ import annotations

from sentilite.runtime.recurrence import dictionary_groups


def unsupported_reason(run_config) -> str | None:
    """Why the model gets no model.mediapipe.tflite, in one line; None when it gets one.

    Read before anything is converted, so the export leaves the file out
    and says why instead of failing.
    """
    from .file import MAX_FILE_BYTES

    character_words = getattr(run_config.tokenizer, "character_words", "none")
    if character_words != "none":
        return (f"the tokenizer makes single characters words (character_words={character_words!r}); MediaPipe's "
                f"RegexTokenizer splits text only at delimiters, never between two letters")
    model = run_config.model
    if model.ngram_buckets:
        # What the file must hold whatever its vocabulary: the n-gram buckets' int8 weights, one per label
        # logit, and a dictionary's uint8 fingerprints and int16 displacements.
        fixed = model.ngram_buckets * model.outputs
        if model.ngram_dictionary:
            fixed += model.ngram_buckets + 2 * dictionary_groups(model.ngram_buckets)
        if fixed >= MAX_FILE_BYTES:
            return (f"its n-gram table alone ({model.ngram_buckets:,} buckets x {model.outputs} logits) is "
                    f"{fixed:,} bytes at 8 bits, over the file's {MAX_FILE_BYTES:,}")
    return None
