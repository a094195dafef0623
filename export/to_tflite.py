"""TFLite export: the forward pass is rebuilt from the Keras weights as a tf.function.

Converting the Keras RNN layer itself fails or misbehaves in three ways:
- with a dynamic batch the converter stops at `tf.TensorListReserve requires
  element_shape to be static`;
- full-integer calibration of the loop Keras 3 generates segfaults inside the
  calibrator (tensorflow/tensorflow#62281, #87468, #41305; LiteRT#557);
- unrolling works but adds ~17 operators a step, so the file grows with the
  sequence length (a GRU at length 100 was 766 KB around 15 KB of weights).
A plain `tf.while_loop` that carries only the state converts with a dynamic
batch into builtin operators, stays ~10 operators long whatever the length,
and calibrates. The TF quantizer still leaves the loop-carried state float
(QUANTIZE/DEQUANTIZE inside the body); `intify_while_state` rewrites it to
int8 so every operator between the input and the output runs on integers.

Rows may be shorter than maxlen (the batch and time axes are both dynamic):
the loop starts from the state the left-out padding would have reached, a
row of a small table (``Recurrence.pad_states``), so the runtime
runs a review's own length. Full-integer calibration feeds rows the same way,
so the calibrator sees those states.

Full-integer conversion runs in a child process, so a crash inside the
converter or calibrator becomes an error message, not a dead exporter.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from sentilite.runtime.architecture import ModelConfig
from sentilite.runtime.embedded import TFLITE_METADATA_NAME
from sentilite.runtime.model import cut_widths
from sentilite.runtime.recurrence import FINGERPRINT_MODULUS, NgramDictionary, Recurrence, trigram_modulus
from sentilite.shared.files import atomic_write_bytes
from sentilite.shared.seal import seal

from .child import run_child
from .errors import ConversionError
from .weights import ngram_dictionary

# The converter's dynamic-range quantizer leaves constants under 1024 elements
# float; the recurrent kernel is cut into chunks under that size so it stays
# float in dynamic-int8 (an int8 recurrent kernel alone cost a SimpleRNN ~3.5
# points of label agreement over 200 steps, for at most 16 KB).
_FLOAT_CHUNK_ELEMENTS = 512
# Name of the only float tensor in a full-integer file (see _integer_ngram_logit).
NGRAM_FLOAT_TENSOR = "ngram_sum_to_float"
# How long the full-integer converter (a child process) may take before it is stopped.
CONVERSION_TIMEOUT_S = 900


def build_function(model: ModelConfig, weights: dict[str, np.ndarray], maxlen: int, vocab_size: int,
                   precision: str = "fp32"):
    """The forward pass as a tf.function over (batch, T) int32 ids, T <= maxlen.

    In the int8 file the n-gram branch runs on integers (see
    ``_integer_ngram_logit``); elsewhere it is the float sum.
    """
    import tensorflow as tf

    cell = model.cell
    steps = model.steps(maxlen)
    w = {k: np.asarray(v, np.float32) for k, v in weights.items()}
    embedding = w.get("embedding")
    if embedding is None:  # one-hot input: the table is the identity
        embedding = np.eye(w["kernel"].shape[0], dtype=np.float32)
    kernel, recurrent, bias = w["kernel"], w["recurrent_kernel"], w["bias"]
    units = recurrent.shape[0]
    const = lambda a: tf.constant(a, tf.float32)  # noqa: E731
    if cell == "rnn":  # fold the input projection into the table: same size, one operator less
        table, projection = const(embedding @ kernel + bias), None
    else:
        table, projection = const(embedding), (const(kernel), const(bias[0] if cell == "gru" else bias))
    recurrent_full = const(recurrent)
    cols = max(1, _FLOAT_CHUNK_ELEMENTS // units)
    chunks = [const(recurrent[:, j: j + cols]) for j in range(0, recurrent.shape[1], cols)]
    recurrent_bias = const(bias[1]) if cell == "gru" else None  # GRU reset_after: (2, 3*units)
    dense_kernel, dense_bias = const(w["dense_kernel"]), const(w["dense_bias"])
    keep_recurrent_float = precision == "dynamic-int8"

    def recurrent_matmul(h):
        if keep_recurrent_float:
            return tf.concat([tf.matmul(h, c) for c in chunks], axis=-1)
        return tf.matmul(h, recurrent_full)

    def step(x, state):
        if cell == "rnn":
            return (tf.tanh(x + recurrent_matmul(state[0])),)
        if cell == "lstm":  # Keras gate order i, f, c, o
            h, c = state
            i, f, g, o = tf.split(x + recurrent_matmul(h), 4, axis=-1)
            c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            return (tf.sigmoid(o) * tf.tanh(c), c)
        h = state[0]  # GRU gate order z, r, h
        inner = recurrent_matmul(h) + recurrent_bias
        z, r = tf.split(tf.sigmoid(x[:, : 2 * units] + inner[:, : 2 * units]), 2, axis=-1)
        candidate = tf.tanh(x[:, 2 * units:] + r * inner[:, 2 * units:])
        return (candidate + z * (h - candidate),)  # == z*h + (1-z)*candidate

    # Rows shorter than the window start from the state their left-out padding would reach.
    recurrence = Recurrence(cell, kernel, recurrent, bias, w.get("embedding"))
    pad_tables = [const(t) for t in recurrence.pad_states(steps)]
    last_pad_state = int(pad_tables[0].shape[0]) - 1
    ngram = None
    if model.ngram_buckets:
        ngram = (_integer_ngram_logit if precision == "int8" else _float_ngram_logit)(
            w["ngram_weights"], vocab_size, model.ngram_buckets, maxlen, ngram_dictionary(model, w))

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name="ids")])
    def positive(ids):
        window = ids[:, -steps:] if steps < maxlen else ids
        x = tf.gather(table, window)  # (batch, time, features)
        if projection is not None:
            x = tf.einsum("bte,eg->btg", x, projection[0]) + projection[1]  # one FC over all steps
        batch, time_steps = tf.shape(window)[0], tf.shape(window)[1]
        pad_index = tf.minimum(tf.maximum(steps - time_steps, 0), last_pad_state)
        state = tuple(tf.tile(tf.gather(t, pad_index[None]), tf.stack([batch, 1])) for t in pad_tables)
        inputs = tf.transpose(x, [1, 0, 2])  # (time, batch, features)

        def body(t, *s):
            return (t + 1,) + step(tf.gather(inputs, t), s)

        state = tf.while_loop(lambda t, *s: t < time_steps, body, (tf.constant(0),) + state,
                              maximum_iterations=steps)[1:]
        logit = tf.matmul(state[0], dense_kernel) + dense_bias
        if ngram is not None:
            logit = logit + ngram(ids)
        return tf.sigmoid(logit)

    return positive


def ngram_rows_tf(ids, vocab_size: int, buckets: int, dictionary: NgramDictionary | None, slot_offset: int):
    """(table rows, n-gram count) of recurrence.ngram_rows in int32 TF ops, for TFLite and MediaPipe.

    ``slot_offset`` is the table row of bucket 0 (vocab_size, or fewer where
    a file keeps only some unigram rows). A dictionary's displacements and
    fingerprints are int16 and uint8 constants, cast up after the gather.
    """
    import tensorflow as tf

    real = tf.not_equal(ids, 0)
    prev, cur = ids[:, :-1], ids[:, 1:]
    both = tf.logical_and(real[:, :-1], real[:, 1:])
    code = prev * vocab_size + cur
    if dictionary is None:
        valid = both
        longer = tf.where(both, tf.math.floormod(code, buckets) + slot_offset, tf.zeros_like(code))
    else:
        displacements = tf.constant(dictionary.displacements.astype(np.int16))
        fingerprints = tf.constant(dictionary.fingerprints.astype(np.uint8))
        triple = tf.math.floormod(code[:, :-1], trigram_modulus(vocab_size)) * vocab_size + ids[:, 2:] \
            + vocab_size * vocab_size
        keys = tf.concat([code, triple], axis=1)
        valid = tf.concat([both, tf.logical_and(both[:, :-1], real[:, 2:])], axis=1)
        displacement = tf.cast(tf.gather(displacements, tf.math.floormod(keys, dictionary.groups)), tf.int32)
        slot = tf.math.floormod(tf.math.floormod(keys, buckets) + displacement, buckets)
        stored = tf.cast(tf.gather(fingerprints, slot), tf.int32)
        found = tf.logical_and(valid, tf.equal(stored, tf.math.floormod(keys, FINGERPRINT_MODULUS)))
        longer = tf.where(found, slot + slot_offset, tf.zeros_like(slot))
    rows = tf.concat([ids, longer], axis=1)
    count = tf.reduce_sum(tf.cast(real, tf.int32), axis=1) + tf.reduce_sum(tf.cast(valid, tf.int32), axis=1)
    return rows, count


def _float_ngram_logit(weights: np.ndarray, vocab_size: int, buckets: int, maxlen: int,
                       dictionary: NgramDictionary | None):
    import tensorflow as tf

    table = np.asarray(weights, np.float32).copy()
    table[0] = 0.0
    table = tf.constant(table)

    def ngram(ids):
        rows, count = ngram_rows_tf(ids, vocab_size, buckets, dictionary, vocab_size)
        total = tf.reduce_sum(tf.gather(table, rows), axis=1, keepdims=True)
        return total / tf.sqrt(tf.maximum(tf.cast(count, tf.float32), 1.0))[:, None]

    return ngram


def _integer_ngram_logit(weights: np.ndarray, vocab_size: int, buckets: int, maxlen: int,
                         dictionary: NgramDictionary | None):
    """The n-gram logit from int8 weights with integer arithmetic until the last multiply.

    Full-integer conversion would otherwise quantize the running sum and the
    count with one scale each, fitted to long reviews: a 10-word text's sum
    would be rounded to about a whole unit. Here the weights are int8
    (symmetric, one scale), summed exactly in int32, multiplied by a fixed-point
    1/sqrt(count) read from a table, and turned into a float logit once.
    """
    import tensorflow as tf

    table = np.asarray(weights, np.float32).copy()
    table[0] = 0.0
    scale = float(np.abs(table).max()) / 127.0 or 1.0
    q_table = tf.constant(np.clip(np.round(table / scale), -127, 127).astype(np.int8))
    most = (3 if dictionary is not None else 2) * maxlen  # n-grams a row can have
    counts = np.arange(most + 1)
    # A row of `count` n-grams sums at most 127 * count, times norm <= 2**shift / sqrt(count) + 0.5:
    # the largest shift whose product fits in int32.
    shift = int(np.floor(np.log2((2 ** 31 - 1 - 64 * most) / (127 * np.sqrt(most)))))
    fixed_norm = np.round((2 ** shift) / np.sqrt(np.maximum(counts, 1))).astype(np.int64)
    if (127 * counts * fixed_norm).max() > 2 ** 31 - 1:
        raise ConversionError(f"the n-gram sum of {most} reads overflows int32 at shift {shift}")
    norm = tf.constant(fixed_norm.astype(np.int32))
    to_float = tf.constant(scale / 2 ** shift, tf.float32)

    def ngram(ids):
        rows, count = ngram_rows_tf(ids, vocab_size, buckets, dictionary, vocab_size)
        total = tf.reduce_sum(tf.cast(tf.gather(q_table, rows), tf.int32), axis=1)
        fixed = total * tf.gather(norm, count)
        # The one float tensor of the int8 file: the exact sum, turned into a float logit once and
        # quantized by the next operator (TFLite's QUANTIZE reads no int32).
        return (tf.cast(fixed, tf.float32, name=NGRAM_FLOAT_TENSOR) * to_float)[:, None]

    return ngram


def convert(model: ModelConfig, weights: dict[str, np.ndarray], precision: str, maxlen: int, vocab_size: int,
            calibration_ids: np.ndarray | None = None) -> bytes:
    """Model bytes (before metadata), in this process."""
    import tensorflow as tf
    from tensorflow.lite.tools import flatbuffer_utils

    from .tflite_graph import intify_while_state

    fn = build_function(model, weights, maxlen, vocab_size, precision)
    holder = tf.Module()
    holder.fn = fn
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], holder)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex, no custom ops
    if precision == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "dynamic-int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif precision == "int8":
        if calibration_ids is None or len(calibration_ids) == 0:
            raise ValueError("full-integer conversion needs calibration ids")
        rows = np.asarray(calibration_ids, np.int32)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        # Calibrate on rows as the runtime feeds them (runtime.model.cut_widths), so the
        # pad-state tables are seen (on whole rows only their zero row is).
        widths = cut_widths(rows)
        converter.representative_dataset = lambda: ([row[None, len(row) - w:]] for row, w in zip(rows, widths))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_output_type = tf.int8  # the input stays int32 ids
    elif precision != "fp32":
        raise ValueError(f"unknown precision {precision!r}")
    data = converter.convert()
    if precision != "int8":
        return bytes(data)
    graph = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
    intify_while_state(graph)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(graph))


def add_metadata(model_bytes: bytes, metadata: dict[str, str]) -> bytes:
    """Append the sentilite keys as one JSON metadata buffer (read back by runtime.flatbuffer)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
    buffer = schema.BufferT()
    buffer.data = bytearray(json.dumps(metadata, separators=(",", ":")).encode("utf-8"))
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = TFLITE_METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name not in (TFLITE_METADATA_NAME, TFLITE_METADATA_NAME.encode())]
    model.metadata.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def export_tflite(ctx, precision: str, path: str | os.PathLike, *, metadata: dict[str, str]) -> Path:
    if precision == "int8":
        data = _convert_in_child(ctx, precision)
    else:
        data = convert(ctx.model, ctx.weights, precision, ctx.maxlen, ctx.vocab_size, ctx.calibration_ids)
    return atomic_write_bytes(path, seal(add_metadata(data, metadata)))


def _convert_in_child(ctx, precision: str, timeout: float = CONVERSION_TIMEOUT_S) -> bytes:
    """Full-integer conversion in a child process: a crash or hang in the calibrator becomes our error."""
    with tempfile.TemporaryDirectory(prefix="sentilite-tflite-") as tmp:
        inputs = Path(tmp) / "inputs.npz"
        output = Path(tmp) / "model.tflite"
        np.savez(inputs, calibration_ids=np.asarray(ctx.calibration_ids, np.int32),
                 **{f"w_{k}": v for k, v in ctx.weights.items()})
        cmd = [sys.executable, "-m", "sentilite.export.to_tflite", json.dumps(ctx.model.to_dict()), precision,
               str(ctx.maxlen), str(ctx.vocab_size), str(inputs), str(output)]
        run_child(cmd, what=f"{precision} TFLite conversion of the {ctx.model.cell} model", output=output,
                  timeout=timeout, error=ConversionError, env={"TF_CPP_MIN_LOG_LEVEL": "3"})
        return output.read_bytes()


def _child_main(argv: list[str]) -> int:
    model_json, precision, maxlen, vocab_size, inputs, output = argv
    with np.load(inputs, allow_pickle=False) as npz:
        weights = {k[2:]: npz[k] for k in npz.files if k.startswith("w_")}
        calibration_ids = npz["calibration_ids"]
    model = ModelConfig.from_dict(json.loads(model_json))
    data = convert(model, weights, precision, int(maxlen), int(vocab_size), calibration_ids)
    Path(output).write_bytes(data)
    return 0


def describe_tflite(path: str | os.PathLike) -> dict:
    """Operator names and any float tensor an operator touches (none for int8), for the manifest."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(os.fspath(path))
    names = {v: k for k, v in schema.BuiltinOperator.__dict__.items() if not k.startswith("_")}
    types = {v: k for k, v in schema.TensorType.__dict__.items() if not k.startswith("_")}
    ops, float_tensors, quantized = set(), set(), set()
    for g_index, g in enumerate(model.subgraphs):
        for op in g.operators:
            code = model.operatorCodes[op.opcodeIndex]
            builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
            name = (names.get(builtin, str(builtin)) if builtin != schema.BuiltinOperator.CUSTOM
                    else "CUSTOM:" + (code.customCode or b"").decode())
            ops.add(name)
            for t in op.inputs:  # an operator reading constant int8 weights
                if t >= 0 and g.tensors[t].type == schema.TensorType.INT8 and g.tensors[t].buffer > 0 \
                        and model.buffers[g.tensors[t].buffer].data is not None:
                    quantized.add(f"{name} (subgraph {g_index})")
            for t in list(op.inputs) + list(op.outputs):
                if t >= 0 and types.get(g.tensors[t].type) in ("FLOAT32", "FLOAT16"):
                    float_tensors.add(f"subgraph {g_index}: {(g.tensors[t].name or b'').decode(errors='replace')}")
    return {"ops": sorted(ops), "float_tensors": sorted(float_tensors), "quantized_nodes": sorted(quantized)}


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
