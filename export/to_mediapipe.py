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
- The output is float32 ``[1, 2]``: P(negative), P(positive). MediaPipe
  refuses int8 outputs.
- The associated files are zipped uncompressed: MediaPipe's reader refuses
  anything else ("Expected uncompressed zip archive.",
  mediapipe/tasks/cc/metadata/utils/zip_utils.cc).
"""
from __future__ import annotations

import io
import json
import logging
import os
import re
import tempfile
import time
import zipfile
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sentilite.runtime.architecture import ModelConfig
from sentilite.runtime.tokenizer import OOV_ID, PAD_ID, Tokenizer, normalize_text
from sentilite.shared.files import atomic_write_bytes, sha256_bytes

from .child import run_child
from .errors import ConversionError, ExportValidationError
from .tflite_graph import operator_code_index
from .to_tflite import ngram_rows_tf
from .weights import ngram_dictionary

log = logging.getLogger("sentilite.export")

# The limit for an 8-bit file that ships inside an app.
MAX_FILE_BYTES = 1 << 20
VOCAB_FILE, LABEL_FILE = "vocab.txt", "labels.txt"
# The oldest metadata parser that reads a RegexTokenizer with vocabulary and labels (what
# tflite-support's writer computes for this content).
MIN_PARSER_VERSION = "1.2.1"
METADATA_NAME = "TFLITE_METADATA"
# The client keeps the first L tokens of a text (and pads to L); the graph then reads the last
# maxlen of them, as the sentilite tokenizer does. L costs the graph nothing but a longer count,
# so it is set far above any review: the longest of the 50,000 IMDB reviews has 2,473 words.
MIN_MOBILE_LENGTH = 8192
# Bytes kept free under MAX_FILE_BYTES for flatbuffer alignment and the zip's own records.
SIZE_MARGIN = 1024
# Constants with at least this many elements are stored as int8; biases and small vectors stay float.
MIN_QUANTIZED_ELEMENTS = 64

# Characters the sentilite tokenizer turns into an ASCII apostrophe (runtime.tokenizer._APOSTROPHES).
_APOSTROPHES = "'\u2019\u2018\u02bc\uff07`"
# The clients' RegexTokenizer splits on this RE2 pattern (delimiters are searched for, tokens
# are what lies between them). It makes the sentilite word rule ``[^\W_]+(?:'[^\W_]+)*`` out of
# delimiters: an HTML line break (with any apostrophes before it), any character that is not a
# letter, digit or apostrophe, and apostrophes that are not alone between two word characters
# (two or more, before a delimiter, at the end, or at the start of what is left: ``^`` matches
# where the previous delimiter ended, RE2::FindAndConsume searches the rest of the text).
DELIMITER_PATTERN = (
    "(?:[{a}]*(?i:<\\s*br\\s*/?\\s*>)|[^\\pL\\pN{a}]|[{a}][{a}]+|[{a}]+[^\\pL\\pN{a}]|^[{a}]+|[{a}]+$)+"
).format(a=_APOSTROPHES)
# The same tokens in Python (re has no \pL): the sentilite word rule, with every apostrophe.
_CLIENT_WORD = re.compile(r"[^\W_]+(?:[" + _APOSTROPHES + r"][^\W_]+)*")
_HTML_BREAK = re.compile(r"<\s*br\s*/?\s*>", re.IGNORECASE)


def client_tokens(text: str) -> list[str]:
    """The tokens MediaPipe's RegexTokenizer makes of ``text`` with DELIMITER_PATTERN (the tests hold them equal)."""
    return _CLIENT_WORD.findall(_HTML_BREAK.sub(" ", text))


def mobile_length(maxlen: int) -> int:
    """L of the client's int32 [1, L] row."""
    return max(MIN_MOBILE_LENGTH, maxlen)


# -- vocabulary ------------------------------------------------------------------------
@dataclass(frozen=True)
class MobileVocabulary:
    """The ``token id`` lines of vocab.txt and how much of the training text they reach.

    ``kept_ids``: ids 0..kept_ids-1 have weight rows in the file (the sentilite
    vocabulary is ordered by frequency, so the left-out ids are its rarest words).
    ``coverage``: share of the training reviews' in-vocabulary words that the
    client maps to the id the sentilite tokenizer gives them.
    """

    lines: tuple[tuple[str, int], ...]
    kept_ids: int
    vocab_size: int
    coverage: float

    def file_bytes(self) -> bytes:
        return "".join(f"{token} {i}\n" for token, i in self.lines).encode("utf-8")

    def to_dict(self) -> dict:
        return {"lines": len(self.lines), "kept_ids": self.kept_ids, "of_ids": self.vocab_size,
                "training_token_coverage": round(self.coverage, 6)}


SPECIAL_LINES = (("<PAD>", PAD_ID), ("<UNKNOWN>", OOV_ID))


def _line_bytes(token: str, i: int) -> int:
    return len(token.encode("utf-8")) + len(str(i)) + 2


def build_vocabulary(tokenizer: Tokenizer, training_texts: Sequence[str], budget: int,
                     row_bytes: int) -> MobileVocabulary:
    """The vocabulary lines and kept ids that reach the most training words within ``budget`` bytes.

    Candidates are every surface form a training review shows for a
    vocabulary word (e.g. "The", "THE", "don’t"), plus its lower-case,
    Capitalized and UPPER forms. Each kept id costs ``row_bytes`` of weights
    and each line its bytes. For each number of kept ids on a grid, lines are
    taken by how often their form occurs, while they fit; the number that
    reaches the most training words wins.
    """
    ids = tokenizer._ids  # word -> id, the tokenizer's own table
    config = tokenizer.config
    vocab_size = len(tokenizer.vocabulary)
    counts: Counter = Counter()
    for text in training_texts:
        counts.update(client_tokens(text))
    forms: dict[str, tuple[int, int]] = {}  # surface form -> (count, id)
    for form, count in counts.items():
        i = ids.get(normalize_text(form, config))
        if i is not None and i > OOV_ID:
            forms[form] = (count, i)
    for i in range(OOV_ID + 1, vocab_size):
        word = tokenizer.vocabulary[i]
        for form in (word, word.capitalize(), word.upper()):
            forms.setdefault(form, (0, i))
    ranked = sorted(((count, i, form, _line_bytes(form, i)) for form, (count, i) in forms.items()),
                    key=lambda c: (-c[0], c[1], c[2]))
    total = sum(c[0] for c in ranked) or 1
    special = sum(_line_bytes(t, i) for t, i in SPECIAL_LINES)
    best = None
    for kept_ids in sorted({vocab_size} | set(range(OOV_ID + 1, vocab_size, max(1, vocab_size // 100)))):
        room = budget - special - kept_ids * row_bytes
        if room < 0:
            continue
        chosen, reached = [], 0
        for count, i, form, cost in ranked:
            if i < kept_ids and cost <= room:
                room -= cost
                reached += count
                chosen.append((form, i))
        if best is None or reached > best[0]:
            best = (reached, kept_ids, chosen)
    if best is None:
        raise ConversionError(f"no room for a vocabulary: {budget:,} bytes left for {row_bytes}-byte weight rows")
    reached, kept_ids, chosen = best
    lines = SPECIAL_LINES + tuple(sorted(chosen, key=lambda line: (line[1], line[0])))
    return MobileVocabulary(lines, kept_ids, vocab_size, reached / total)


# -- graph -----------------------------------------------------------------------------
def build_function(model: ModelConfig, weights: dict[str, np.ndarray], maxlen: int, vocab_size: int,
                   kept_ids: int, length: int):
    """The forward pass as a tf.function over the client's int32 [1, length] row; returns float32 [1, 2].

    Only ids < kept_ids can occur (the vocabulary file has no others), so the
    weight rows of the others are left out; the bigram rows keep their hash,
    which is computed from the original ids.
    """
    import tensorflow as tf

    if model.cell not in ("rnn", "lstm", "gru"):
        raise ConversionError(f"no MediaPipe graph for cell {model.cell!r}")
    steps = model.steps(maxlen)
    w = {k: np.asarray(v, np.float32) for k, v in weights.items()}
    kernel, recurrent, bias = w["kernel"], w["recurrent_kernel"], w["bias"]
    units = recurrent.shape[0]
    input_bias = bias[0] if model.cell == "gru" else bias
    if w.get("embedding") is not None:
        table, projection = w["embedding"][:kept_ids], kernel
    else:  # one-hot input: the kernel is the table
        table, projection = kernel[:kept_ids], None
    const = lambda a: tf.constant(np.ascontiguousarray(a, np.float32))  # noqa: E731

    def project(columns, extra_bias=0.0):
        """Each step's input for some gate columns: a list of (1, len(columns)), biases included."""
        b = const(input_bias[columns] + extra_bias)
        if projection is None:
            return lambda x: tf.unstack(tf.gather(x, columns, axis=1)[:, None, :] + b, axis=0)
        k = const(projection[:, columns])
        return lambda x: tf.unstack((tf.matmul(x, k) + b)[:, None, :], axis=0)

    u = units
    dense_kernel, dense_bias = const(w["dense_kernel"]), const(w["dense_bias"])
    ngram = _ngram_logit(w["ngram_weights"], vocab_size, kept_ids, model.ngram_buckets,
                         ngram_dictionary(model, w)) if model.ngram_buckets else None
    if model.cell == "gru":  # Keras gate order z, r, h; reset_after: (2, 3u) biases
        zr, c = np.arange(2 * u), np.arange(2 * u, 3 * u)
        # The recurrent bias of z and r adds to the input's: one ADD a step less.
        x_parts = (project(zr, bias[1][zr]), project(c))
        r_zr = const(recurrent[:, zr])
        r_c, rb_c = const(recurrent[:, c]), const(bias[1][c])

        def step(x, state):
            x_zr, x_c = x
            h = state[0]
            z, r = tf.split(tf.sigmoid(x_zr + tf.matmul(h, r_zr)), 2, axis=-1)
            candidate = tf.tanh(x_c + r * (tf.matmul(h, r_c) + rb_c))
            return (candidate + z * (h - candidate),)
    elif model.cell == "lstm":  # Keras gate order i, f, c, o; sigmoid gates first: i, f, o | c
        order = np.concatenate([np.arange(0, 2 * u), np.arange(3 * u, 4 * u), np.arange(2 * u, 3 * u)])
        x_parts = (project(order),)
        r_all = const(recurrent[:, order])

        def step(x, state):
            h, cell_state = state
            gates, g = tf.split(x[0] + tf.matmul(h, r_all), [3 * u, u], axis=-1)
            i, f, o = tf.split(tf.sigmoid(gates), 3, axis=-1)
            cell_state = f * cell_state + i * tf.tanh(g)
            return (o * tf.tanh(cell_state), cell_state)
    else:
        x_parts = (project(np.arange(u)),)
        r_all = const(recurrent)

        def step(x, state):
            return (tf.tanh(x[0] + tf.matmul(state[0], r_all)),)

    state_count = 2 if model.cell == "lstm" else 1
    table_const = const(table)
    positions = tf.constant(np.arange(maxlen, dtype=np.int32) - maxlen)

    @tf.function(input_signature=[tf.TensorSpec([1, length], tf.int32, name="ids")])
    def classify(ids):
        client_row = ids[0]
        count = tf.reduce_sum(tf.cast(tf.not_equal(client_row, PAD_ID), tf.int32))
        # The last maxlen real ids, front-padded: the row the sentilite tokenizer makes.
        # Index i of the last maxlen positions, taken modulo L, lands on padding before the first real id.
        row = tf.gather(client_row, tf.math.floormod(positions + count, length))
        window = row[maxlen - steps:]
        embedded = tf.gather(table_const, window)  # (steps, features)
        per_step = [part(embedded) for part in x_parts]
        state = tuple(tf.zeros([1, units], tf.float32) for _ in range(state_count))
        for t in range(steps):
            state = step(tuple(p[t] for p in per_step), state)
        logit = tf.matmul(state[0], dense_kernel) + dense_bias
        if ngram is not None:
            logit = logit + ngram(row[None, :])
        positive = tf.sigmoid(logit)
        return tf.concat([1.0 - positive, positive], axis=-1, name="probabilities")

    return classify


def _ngram_logit(weights: np.ndarray, vocab_size: int, kept_ids: int, buckets: int, dictionary):
    """recurrence.ngram_logit over a front-padded [1, maxlen] row, with the unigram rows of kept ids only."""
    import tensorflow as tf

    table = np.concatenate([weights[:kept_ids], weights[vocab_size:]]).astype(np.float32).reshape(-1)
    table[PAD_ID] = 0.0
    table = tf.constant(table)

    def ngram(ids):
        rows, count = ngram_rows_tf(ids, vocab_size, buckets, dictionary, kept_ids)
        total = tf.reduce_sum(tf.gather(table, rows), axis=1, keepdims=True)
        return total / tf.sqrt(tf.maximum(tf.cast(count, tf.float32), 1.0))[:, None]

    return ngram


def convert(model: ModelConfig, weights: dict[str, np.ndarray], maxlen: int, vocab_size: int, kept_ids: int,
            length: int) -> bytes:
    """The float32 file from the converter, before weights are made int8."""
    import tensorflow as tf

    fn = build_function(model, weights, maxlen, vocab_size, kept_ids, length)
    holder = tf.Module()
    holder.fn = fn
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], holder)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex, no custom ops
    try:
        return bytes(converter.convert())
    except Exception as exc:  # the converter raises many types; name the model in one
        raise ConversionError(f"MediaPipe TFLite conversion of the {model.cell} model failed: {exc}") from exc


# -- int8 weights ----------------------------------------------------------------------
def _symmetric_int8(values: np.ndarray, axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(int8 values, float scales): one scale per index of ``axis`` (None: one for the whole tensor)."""
    if axis is None:
        peak = np.abs(values).max(keepdims=True).reshape(1)
    else:
        other = tuple(a for a in range(values.ndim) if a != axis)
        peak = np.abs(values).max(axis=other)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    shape = [1] * values.ndim
    if axis is not None:
        shape[axis] = -1
    q = np.clip(np.round(values / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale


def quantize_weights(model_bytes: bytes) -> bytes:
    """Store every matrix and lookup table as int8 and dequantize it inside the graph; drop tensor names.

    A table read by GATHER is gathered as int8 and only the rows read are
    dequantized (one scale per column, or one for a vector); any other matrix
    is dequantized once, as a constant, before the operators that read it
    (one scale per output channel: FULLY_CONNECTED weights are [out, in]).
    Tensor names (the converter's long scope paths, a third of an unrolled
    graph) are dropped but for the input ("ids") and output ("probabilities"); the empty
    buffers the converter gives each activation are merged into buffer 0.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
    if len(model.subgraphs) != 1:
        raise ConversionError(f"the MediaPipe graph has {len(model.subgraphs)} subgraphs; MediaPipe needs one")
    graph = model.subgraphs[0]
    op = schema.BuiltinOperator

    def opcode_index(builtin: int) -> int:
        return operator_code_index(model, builtin, version=2)

    def builtin_of(operator) -> int:
        code = model.operatorCodes[operator.opcodeIndex]
        return max(code.builtinCode, code.deprecatedBuiltinCode)

    def quantization(scale: np.ndarray, axis: int | None):
        params = schema.QuantizationParametersT()
        params.scale = [float(s) for s in scale]
        params.zeroPoint = [0] * len(scale)
        params.quantizedDimension = 0 if axis is None else axis
        return params

    def new_tensor(shape, tensor_type, params=None) -> int:
        tensor = schema.TensorT()
        tensor.shape, tensor.type, tensor.buffer = list(shape), tensor_type, 0
        tensor.quantization = params
        graph.tensors.append(tensor)
        return len(graph.tensors) - 1

    def dequantize_op(source: int, target: int):
        operator = schema.OperatorT()
        operator.opcodeIndex = opcode_index(op.DEQUANTIZE)
        operator.inputs, operator.outputs = [source], [target]
        operator.builtinOptionsType = schema.BuiltinOptions.DequantizeOptions
        operator.builtinOptions = schema.DequantizeOptionsT()
        return operator

    readers = defaultdict(list)  # tensor -> [(operator, input position)]
    for operator in graph.operators:
        for position, t in enumerate(operator.inputs):
            if t >= 0:
                readers[t].append((operator, position))
    front = []  # DEQUANTIZE of constants, placed before every other operator
    for index in range(len(graph.tensors)):
        tensor = graph.tensors[index]
        data = model.buffers[tensor.buffer].data if tensor.buffer > 0 else None
        if tensor.type != schema.TensorType.FLOAT32 or data is None or len(data) == 0:
            continue
        values = np.frombuffer(bytes(data), np.float32).reshape(list(tensor.shape))
        users = readers[index]
        lookup = bool(users) and all(builtin_of(o) == op.GATHER and p == 0 for o, p in users)
        if not lookup and (values.ndim != 2 or values.size < MIN_QUANTIZED_ELEMENTS):
            continue
        axis = (values.ndim - 1 if values.ndim > 1 else None) if lookup else 0
        q, scale = _symmetric_int8(values, axis)
        tensor.type, tensor.quantization = schema.TensorType.INT8, quantization(scale, axis)
        model.buffers[tensor.buffer].data = q.tobytes()
        if lookup:  # GATHER int8 rows, then DEQUANTIZE them into the tensor the GATHER wrote before
            for gather, _ in users:
                out = gather.outputs[0]
                shape = list(graph.tensors[out].shape)
                out_axis = None if axis is None else len(shape) - 1
                rows = new_tensor(shape, schema.TensorType.INT8, quantization(scale, out_axis))
                gather.outputs = [rows]
                graph.operators.insert(graph.operators.index(gather) + 1, dequantize_op(rows, out))
        else:
            dequantized = new_tensor(tensor.shape, schema.TensorType.FLOAT32)
            for reader, position in users:
                inputs = list(reader.inputs)
                inputs[position] = dequantized
                reader.inputs = inputs
            front.append(dequantize_op(index, dequantized))
    graph.operators[:0] = front
    _drop_names_and_empty_buffers(model, graph)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _drop_names_and_empty_buffers(model, graph) -> None:
    names = {graph.inputs[0]: b"ids", graph.outputs[0]: b"probabilities"}
    for index, tensor in enumerate(graph.tensors):
        tensor.name = names.get(index)
        params = tensor.quantization
        if params is not None and (params.scale is None or len(params.scale) == 0):
            tensor.quantization = None  # an empty table the converter writes for every float tensor
        if tensor.shapeSignature is not None and list(tensor.shapeSignature) == list(tensor.shape):
            tensor.shapeSignature = None
    used = sorted({t.buffer for t in graph.tensors if t.buffer > 0 and model.buffers[t.buffer].data is not None
                   and len(model.buffers[t.buffer].data)} | {m.buffer for m in (model.metadata or [])})
    new_index = {old: new for new, old in enumerate([0] + used)}
    for tensor in graph.tensors:
        tensor.buffer = new_index.get(tensor.buffer, 0)
    for entry in model.metadata or []:
        entry.buffer = new_index[entry.buffer]
    model.buffers = [model.buffers[old] for old in [0] + used]
    graph.name = None


# -- TFLite Support metadata -------------------------------------------------------------
# Field slots and enum values of tensorflow/lite/schema/metadata_schema.fbs (the copy in
# mediapipe/tasks/metadata/metadata_schema.fbs): a union takes two slots, its type and its value.
_VOCABULARY, _TENSOR_AXIS_LABELS = 5, 2  # AssociatedFileType
_FEATURE_PROPERTIES = 1  # ContentProperties
_REGEX_TOKENIZER_OPTIONS = 6  # ProcessUnitOptions


def metadata_flatbuffer(*, name: str, description: str, version: str, input_name: str, output_name: str,
                        delimiter: str, labels_description: str) -> bytes:
    """A ModelMetadata ("M001") for a text classifier: a RegexTokenizer and vocab.txt in, labels.txt out.

    Written with the flatbuffers package from the published schema, so the
    export does not need tflite-support (whose writer pins protobuf 3.20.3) or
    mediapipe (whose writer in 1.2.3 fails on a module missing from the
    wheel); the tests read it back with tflite-support's MetadataDisplayer.
    """
    import flatbuffers

    b = flatbuffers.Builder(1024)

    def table(fields):
        """fields: (slot, kind, value) with kind 'offset', 'int8' or 'uint8'; strings made beforehand."""
        b.StartObject(max(slot for slot, _, _ in fields) + 1)
        for slot, kind, value in fields:
            if kind == "offset":
                b.PrependUOffsetTRelativeSlot(slot, value, 0)
            elif kind == "int8":
                b.PrependInt8Slot(slot, value, 0)
            else:
                b.PrependUint8Slot(slot, value, 0)
        return b.EndObject()

    def vector(offsets):
        b.StartVector(4, len(offsets), 4)
        for offset in reversed(offsets):
            b.PrependUOffsetTRelative(offset)
        return b.EndVector()

    def associated_file(file_name, text, file_type):
        n, d = b.CreateString(file_name), b.CreateString(text)
        return table([(0, "offset", n), (1, "offset", d), (2, "int8", file_type)])

    def feature_content():
        b.StartObject(0)
        properties = b.EndObject()
        return table([(0, "uint8", _FEATURE_PROPERTIES), (1, "offset", properties)])

    vocab = associated_file(VOCAB_FILE, "Token id pairs; several casings of a word share its id.", _VOCABULARY)
    pattern = b.CreateString(delimiter)
    tokenizer = table([(0, "offset", pattern), (1, "offset", vector([vocab]))])
    process_unit = table([(0, "uint8", _REGEX_TOKENIZER_OPTIONS), (1, "offset", tokenizer)])
    in_name, in_text = b.CreateString(input_name), b.CreateString(
        "Token ids of the text: the tokens from the front, <PAD> after them.")
    input_meta = table([(0, "offset", in_name), (1, "offset", in_text), (3, "offset", feature_content()),
                        (4, "offset", vector([process_unit]))])
    labels = associated_file(LABEL_FILE, labels_description, _TENSOR_AXIS_LABELS)
    out_name, out_text = b.CreateString(output_name), b.CreateString("Probability of each label.")
    output_meta = table([(0, "offset", out_name), (1, "offset", out_text), (3, "offset", feature_content()),
                         (6, "offset", vector([labels]))])
    subgraph = table([(2, "offset", vector([input_meta])), (3, "offset", vector([output_meta]))])
    model_name, model_text = b.CreateString(name), b.CreateString(description)
    model_version, parser = b.CreateString(version), b.CreateString(MIN_PARSER_VERSION)
    author = b.CreateString("sentilite")
    root = table([(0, "offset", model_name), (1, "offset", model_text), (2, "offset", model_version),
                  (3, "offset", vector([subgraph])), (4, "offset", author), (7, "offset", parser)])
    b.Finish(root, file_identifier=b"M001")
    return bytes(b.Output())


def attach_metadata(model_bytes: bytes, metadata: bytes, files: dict[str, bytes]) -> bytes:
    """The model with its TFLITE_METADATA buffer, then the associated files as an uncompressed zip after it.

    As tflite-support's MetadataPopulator does, the zip follows the
    flatbuffer and its offsets count from the start of the file. Entries
    get a fixed date so the same model gives the same bytes.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
    buffer = schema.BufferT()
    buffer.data = bytearray(metadata)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name not in (METADATA_NAME, METADATA_NAME.encode())]
    model.metadata.append(entry)
    out = io.BytesIO(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
    out.seek(0, io.SEEK_END)  # mode "w" at the end keeps what is before and counts offsets from byte 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for file_name, content in files.items():
            info = zipfile.ZipInfo(file_name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            archive.writestr(info, content)
    return out.getvalue()


# -- the file --------------------------------------------------------------------------
def _row_bytes(model: ModelConfig, weights: dict[str, np.ndarray]) -> int:
    """Bytes of int8 weights one vocabulary id costs: its input-table row and its unigram weight."""
    table = weights.get("embedding")
    width = (table if table is not None else weights["kernel"]).shape[1]
    return int(width) + (1 if model.ngram_buckets else 0)


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
    whole = quantize_weights(convert(ctx.model, ctx.weights, ctx.maxlen, vocab_size, vocab_size, length))

    def metadata_for(vocab: MobileVocabulary | None) -> bytes:
        detail = "" if vocab is None else (
            f" Vocabulary: {len(vocab.lines):,} token id lines for {vocab.kept_ids:,} of {vocab.vocab_size:,} ids, "
            f"reaching {vocab.coverage:.2%} of the training reviews' words.")
        return metadata_flatbuffer(
            name=f"sentilite {ctx.name}", version=_sentilite_version(), input_name="ids", output_name="probabilities",
            delimiter=DELIMITER_PATTERN, labels_description="negative, positive",
            description=(f"IMDB movie-review sentiment, {ctx.model.cell} cell (sentilite {ctx.name}). The model "
                         f"reads the last {ctx.maxlen} tokens of the first {length}.{detail}"))

    # the description grows by at most ~120 characters once the vocabulary is known
    fixed = len(whole) - vocab_size * row_bytes + len(metadata_for(None)) + 160 + _zip_bytes(
        {VOCAB_FILE: b"", LABEL_FILE: labels}) + 64 + SIZE_MARGIN
    vocab = build_vocabulary(tokenizer, ctx.training_texts, max_bytes - fixed, row_bytes)
    graph = whole if vocab.kept_ids == vocab_size else quantize_weights(
        convert(ctx.model, ctx.weights, ctx.maxlen, vocab_size, vocab.kept_ids, length))
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


# -- reading it back -------------------------------------------------------------------
@dataclass(frozen=True)
class MediapipeFile:
    """The parts of a model.mediapipe.tflite the checks need, read without the clients."""

    content: bytes
    flatbuffer_bytes: int
    files: dict[str, bytes]
    compressed: list[str]

    @classmethod
    def read(cls, path: str | os.PathLike) -> "MediapipeFile":
        content = Path(path).read_bytes()
        try:
            archive = zipfile.ZipFile(io.BytesIO(content))
            infos = archive.infolist()
            files = {i.filename: archive.read(i) for i in infos}
        except zipfile.BadZipFile as exc:
            raise ExportValidationError(f"{path}: no associated files ({exc})") from None
        start = min(i.header_offset for i in infos) if infos else len(content)
        return cls(content, start, files, [i.filename for i in infos if i.compress_type != zipfile.ZIP_STORED])

    def vocabulary(self) -> dict[str, int]:
        lines = self.files[VOCAB_FILE].decode("utf-8").splitlines()
        return {token: int(i) for token, i in (line.split(" ") for line in lines if line)}


def _model_object(content: bytes):
    from tensorflow.lite.tools import flatbuffer_utils

    return flatbuffer_utils.convert_bytearray_to_object(bytearray(content))


def describe_mediapipe(path: str | os.PathLike) -> dict:
    """Operators, shapes, and where the bytes go, for the manifest."""
    from tensorflow.lite.python import schema_py_generated as schema

    from .to_tflite import describe_tflite

    file = MediapipeFile.read(path)
    model = _model_object(file.content)
    graph = model.subgraphs[0]
    types = {v: k for k, v in schema.TensorType.__dict__.items() if not k.startswith("_")}
    metadata_buffers = {m.buffer for m in model.metadata or []}
    weight_types = Counter()
    for t in graph.tensors:
        if t.buffer > 0 and model.buffers[t.buffer].data is not None:
            weight_types[types[t.type]] += len(model.buffers[t.buffer].data)
    weights = sum(weight_types.values())
    metadata = sum(len(model.buffers[b].data) for b in metadata_buffers if model.buffers[b].data is not None)
    vocab = file.vocabulary()
    tensor = lambda i: graph.tensors[i]  # noqa: E731
    out = describe_tflite(path)
    del out["float_tensors"]  # every activation is float32 here ("activations" in the manifest)
    out.update({
        "subgraphs": len(model.subgraphs),
        "operators": len(graph.operators),
        "inputs": [{"name": (tensor(i).name or b"").decode(), "dtype": types[tensor(i).type].lower(),
                    "shape": [int(d) for d in tensor(i).shape]} for i in graph.inputs],
        "outputs": [{"name": (tensor(i).name or b"").decode(), "dtype": types[tensor(i).type].lower(),
                     "shape": [int(d) for d in tensor(i).shape]} for i in graph.outputs],
        "associated_files": {name: {"bytes": len(content), "stored": name not in file.compressed}
                             for name, content in file.files.items()},
        "vocabulary": {"lines": len(vocab), "kept_ids": max(vocab.values()) + 1},
        "tokenizer": {"type": "RegexTokenizer", "delim_regex_pattern": DELIMITER_PATTERN},
        "size": {"weights": weights, "weights_by_type": dict(weight_types),
                 "graph": file.flatbuffer_bytes - weights - metadata, "metadata": metadata,
                 "zip": len(file.content) - file.flatbuffer_bytes, "total": len(file.content)},
    })
    return out


# -- running it as the clients do ------------------------------------------------------
def client_rows(texts: Sequence[str], vocabulary: dict[str, int], length: int) -> np.ndarray:
    """The int32 rows MediaPipe's RegexPreprocessorCalculator feeds the model (our vocabulary has no <START>)."""
    unknown, pad = vocabulary["<UNKNOWN>"], vocabulary["<PAD>"]
    rows = np.full((len(texts), length), pad, dtype=np.int32)
    for r, text in enumerate(texts):
        ids = [vocabulary.get(token, unknown) for token in client_tokens(text)[:length]]
        rows[r, : len(ids)] = ids
    return rows


def emulate_client(path: str | os.PathLike, texts: Sequence[str]) -> np.ndarray:
    """P(positive) as the clients give it: their tokenizer reproduced here (client_tokens), the file run by
    ai-edge-litert one text a call. The tests hold it equal to MediaPipe's own answers."""
    from ai_edge_litert.interpreter import Interpreter

    file = MediapipeFile.read(path)
    interpreter = Interpreter(model_content=file.content, num_threads=1)
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]["index"]
    vocabulary, length = file.vocabulary(), int(source["shape"][1])
    out = np.empty(len(texts), np.float32)
    for start in range(0, len(texts), 1024):
        for r, row in enumerate(client_rows(texts[start: start + 1024], vocabulary, length), start):
            interpreter.set_tensor(source["index"], row[None, :])
            interpreter.invoke()
            out[r] = interpreter.get_tensor(target)[0, 1]
    return out


CLIENT_SCRIPT = Path(__file__).with_name("mediapipe_client.py")
# The client venv: $SENTILITE_MEDIAPIPE_VENV, else .venv-mediapipe in the repository (`make mediapipe-client`).
VENV_ENV = "SENTILITE_MEDIAPIPE_VENV"
DEFAULT_VENV = ".venv-mediapipe"
CLIENT_TIMEOUT_S = 3600


def find_client() -> tuple[Path, dict] | None:
    """(the client venv's Python, its setup stamp), or None when there is none; a named venv must be complete."""
    from .mediapipe_client import read_stamp, venv_python

    named = os.environ.get(VENV_ENV)
    folders = [Path(named)] if named else [Path(__file__).resolve().parents[1] / DEFAULT_VENV,
                                           Path.cwd() / DEFAULT_VENV]
    for folder in folders:
        stamp = read_stamp(folder)
        if stamp and venv_python(folder).exists():
            return venv_python(folder), stamp
    if named:
        raise ExportValidationError(f"{VENV_ENV}={named} is not a finished client venv; create it with "
                                    f"`python {CLIENT_SCRIPT} setup {named}` (or `make mediapipe-client`)")
    return None


def run_client(models: Sequence[str | os.PathLike], texts: Sequence[str], python: str | os.PathLike,
               engines: Sequence[str] = ("mediapipe",), timeout: float = CLIENT_TIMEOUT_S) -> dict:
    """Run the real clients in their venv on every text, one subprocess for all models:
    {"positive": {engine: {model: [P(positive)]}}, "texts_per_second": {engine: n}}."""
    with tempfile.TemporaryDirectory(prefix="sentilite-mediapipe-") as tmp:
        texts_file, out_file = Path(tmp) / "texts.json", Path(tmp) / "out.json"
        texts_file.write_text(json.dumps(list(texts), ensure_ascii=False), encoding="utf-8")
        cmd = [os.fspath(python), os.fspath(CLIENT_SCRIPT), "classify", "--texts", str(texts_file),
               "--out", str(out_file), *map(os.fspath, models), "--engines", *engines]
        run_child(cmd, what=f"the MediaPipe client on {len(texts):,} texts and {', '.join(map(os.fspath, models))}",
                  output=out_file, timeout=timeout, error=ExportValidationError,
                  env={"GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "3"})
        out = json.loads(out_file.read_text(encoding="utf-8"))
    out["positive"] = {engine: {model: np.asarray(v, np.float32) for model, v in by_model.items()}
                       for engine, by_model in out["positive"].items()}
    return out


# -- validation (export_package calls this instead of validate_artifact) ---------------------
RUNTIME_REFERENCE = "model.int8.tflite"  # the sentilite file the issue compares the client with
# Label agreement with the runtime's int8 file, and accuracy change against Keras, unless the
# ValidationConfig has a "mediapipe" entry: the int8 floor, and at least the 0.5 points.
MIN_ACCURACY_CHANGE = 0.005
# The emulation must give the client's answers; more than this is a broken assumption, not rounding.
EMULATION_TOLERANCE = 1e-5
EMULATED = "emulated: the RegexTokenizer and vocab.txt reproduced in Python, the file run by ai-edge-litert"


def tolerance_for(validation):
    from .validate import Tolerance

    if "mediapipe" in validation.tolerances:
        return validation.tolerances["mediapipe"]
    int8 = validation.for_precision("int8")
    return Tolerance(max_abs_diff=None, min_agreement=int8.min_agreement,
                     max_accuracy_change=max(MIN_ACCURACY_CHANGE, int8.max_accuracy_change or 0.0))


def check_structure(path: str | os.PathLike, shown_as: str, max_bytes: int = MAX_FILE_BYTES) -> dict:
    """What the clients require of the file (raises ExportValidationError); returns describe_mediapipe's fields."""
    file = MediapipeFile.read(path)
    info = describe_mediapipe(path)
    problems = []
    if len(file.content) > max_bytes:
        problems.append(f"{len(file.content):,} bytes, over {max_bytes:,}")
    if info["subgraphs"] != 1:
        problems.append(f"{info['subgraphs']} subgraphs (MediaPipe reads one)")
    inputs, outputs = info["inputs"], info["outputs"]
    if len(inputs) != 1 or inputs[0]["dtype"] != "int32" or len(inputs[0]["shape"]) != 2 or inputs[0]["shape"][0] != 1:
        problems.append(f"input {inputs} is not one int32 [1, L]")
    if len(outputs) != 1 or outputs[0]["dtype"] != "float32" or outputs[0]["shape"] != [1, 2]:
        problems.append(f"output {outputs} is not one float32 [1, 2]")
    if file.compressed:
        problems.append(f"compressed associated files {file.compressed} (MediaPipe reads stored ones only)")
    missing = {VOCAB_FILE, LABEL_FILE} - set(file.files)
    if missing:
        problems.append(f"no {sorted(missing)} packed")
    if "WHILE" in info["ops"] or any(op.startswith("CUSTOM") for op in info["ops"]):
        problems.append(f"operators the clients cannot run in one subgraph: {info['ops']}")
    if problems:
        raise ExportValidationError(f"{shown_as}: " + "; ".join(problems))
    return info


def _front_rows(client: np.ndarray, maxlen: int) -> np.ndarray:
    """What the graph makes of client rows: the last maxlen real ids, front-padded."""
    out = np.zeros((len(client), maxlen), np.int32)
    counts = (client != PAD_ID).sum(axis=1)
    for r, k in enumerate(counts):
        kept = client[r, max(0, k - maxlen): k]
        out[r, maxlen - len(kept):] = kept
    return out


def explain_differences(texts: Sequence[str], sentilite_ids: np.ndarray, vocabulary: dict[str, int], length: int,
                        tokenizer: Tokenizer, same_label: np.ndarray) -> dict:
    """Why a review's row differs from the sentilite row, by cause, with label agreement per cause.

    identical: the model sees the same ids (what is left is int8 rounding);
    truncated: more than L tokens, the client keeps the first L (the
    sentilite tokenizer the last maxlen words); vocabulary: the same once
    every casing of every word is in vocab.txt, so the file's size limit is
    the cause; tokenizer: the rest (Unicode normalization, letters the
    sentilite tokenizer joins differently).
    """
    maxlen = sentilite_ids.shape[1]
    client = _front_rows(client_rows(texts, vocabulary, length), maxlen)
    cause = np.empty(len(texts), dtype=object)
    words = dict(tokenizer._ids)
    for r, text in enumerate(texts):
        if np.array_equal(client[r], sentilite_ids[r]):
            cause[r] = "identical"
            continue
        tokens = client_tokens(text)
        if len(tokens) > length:
            cause[r] = "truncated"
            continue
        every_form = [words.get(normalize_text(t, tokenizer.config), OOV_ID) for t in tokens]
        full = np.zeros(maxlen, np.int32)
        kept = every_form[-maxlen:]
        full[maxlen - len(kept):] = kept
        cause[r] = "vocabulary" if np.array_equal(full, sentilite_ids[r]) else "tokenizer"
    out = {}
    for name in ("identical", "vocabulary", "truncated", "tokenizer"):
        mask = cause == name
        out[name] = {"reviews": int(mask.sum()),
                     "agreement": round(float(same_label[mask].mean()), 6) if mask.any() else None,
                     "disagreeing": int((~same_label[mask]).sum())}
    return out


def validate_mediapipe(path: Path, shown_as: str, validation, validation_set, test_set, short_sets,
                       keras_accuracy: float) -> dict:
    """Check and evaluate model.mediapipe.tflite as its clients run it; the manifest fields.

    The test reviews go through MediaPipe's TextClassifier itself, in the
    client venv (one subprocess), and are compared with the sentilite
    runtime's int8 file and with Keras. The validation and short-text
    reviews, and the run without a client venv, use ``emulate_client``,
    which must give the client's answers on the test reviews to within
    EMULATION_TOLERANCE. ``*_set`` are package.EvaluationSet with texts.
    """
    from sentilite.runtime.backends import create_backend
    from sentilite.runtime.model import run_batches
    from sentilite.train.evaluate import SHORT_TEXT_WORDS, accuracy

    from .validate import check_accuracy_change, compare

    started = time.time()
    if any(len(s.texts) != len(s.labels) for s in (validation_set, test_set, *short_sets)):
        raise ExportValidationError(f"{shown_as}: the MediaPipe check needs the reviews as text (EvaluationSet.texts)")
    info = check_structure(path, shown_as)
    length = info["inputs"][0]["shape"][1]
    tolerance = tolerance_for(validation)
    test_texts = list(test_set.texts)
    emulated = emulate_client(path, test_texts)
    client = find_client()
    engine, emulation_diff, nlclassifier = EMULATED, None, None
    if client is None:
        log.warning("%s: no MediaPipe client venv (make mediapipe-client); evaluating with the emulation", shown_as)
        positive = emulated
    else:
        python, stamp = client
        result = run_client([path], test_texts, python, engines=stamp.get("engines", ["mediapipe"]))
        positive = result["positive"]["mediapipe"][str(path)]
        engine = f"{stamp['requirements'][0]} TextClassifier ({result['texts_per_second']['mediapipe']:.0f} texts/s)"
        emulation_diff = float(np.max(np.abs(positive - emulated))) if len(positive) else 0.0
        if emulation_diff > EMULATION_TOLERANCE:
            raise ExportValidationError(f"{shown_as}: the emulated client differs from MediaPipe by "
                                        f"{emulation_diff:.3g} on the test reviews: client_tokens no longer "
                                        f"matches the RegexTokenizer")
        if "nlclassifier" in result["positive"]:  # the TFLite Task Library, against MediaPipe
            nlclassifier = {"engine": f"{stamp['requirements'][1]} NLClassifier",
                            **compare(positive, result["positive"]["nlclassifier"][str(path)])}
    test_stats = compare(test_set.keras, positive)
    file_accuracy = accuracy(positive, test_set.labels)
    check_accuracy_change(shown_as, "mediapipe", keras_accuracy, file_accuracy, len(test_set.labels), tolerance)
    runtime = None
    reference_file = Path(path).parent / RUNTIME_REFERENCE
    if reference_file.exists():
        reference = run_batches(create_backend("tflite", reference_file.read_bytes(), str(reference_file)),
                                test_set.ids, 256)
        runtime = {"file": RUNTIME_REFERENCE, **compare(reference, positive)}
        if runtime["agreement"] < tolerance.min_agreement:
            raise ExportValidationError(
                f"{shown_as}: labels agree with the sentilite runtime's {RUNTIME_REFERENCE} on "
                f"{runtime['agreement']:.4%} of {runtime['n']:,} test reviews (floor {tolerance.min_agreement:.2%})")
        # the package's tokenizer.json, beside where the file will be moved (shown_as)
        tokenizer = Tokenizer.from_file(Path(shown_as).parent / "tokenizer.json")
        runtime["differences"] = explain_differences(test_texts, test_set.ids, MediapipeFile.read(path).vocabulary(),
                                                     length, tokenizer, (reference >= 0.5) == (positive >= 0.5))
    else:
        log.warning("%s: no %s beside it to compare with; export the tflite format too", shown_as, RUNTIME_REFERENCE)
    val_positive = emulate_client(path, list(validation_set.texts))
    short = [round(accuracy(emulate_client(path, list(s.texts)), s.labels), 6) for s in short_sets]
    content = Path(path).read_bytes()
    log.info("%s: MediaPipe check in %.0f s", shown_as, time.time() - started)
    return {
        "bytes": len(content),
        "sha256": sha256_bytes(content),
        "backend": engine,
        "weights": "int8", "activations": "float32",
        "input": {"name": "ids", "dtype": "int32", "shape": [1, length], "variable_length": False,
                  "tokenizer": "RegexTokenizer (metadata)", "padding": "post, moved to the front in the graph"},
        "validation": {"split": "validation", **compare(validation_set.keras, val_positive), "engine": "emulated"},
        "eval": {"split": "test", "n": len(test_set.labels), "accuracy": round(file_accuracy, 6),
                 "agreement": round(test_stats["agreement"], 6), "max_abs_diff": test_stats["max_abs_diff"],
                 "engine": engine, "emulation_max_abs_diff": emulation_diff, "runtime": runtime,
                 "nlclassifier": nlclassifier, "tolerance": tolerance.to_dict(),
                 "short_text": {"words": list(SHORT_TEXT_WORDS), "n": len(test_set.labels), "accuracy": short,
                                "engine": "emulated"}},
    }
