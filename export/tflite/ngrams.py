"""The n-gram logit (``recurrence.ngram_logit``) in TensorFlow operators, for both TFLite graphs."""
from __future__ import annotations

import numpy as np

from sentilite.runtime.recurrence import FINGERPRINT_MODULUS, NgramDictionary, trigram_modulus
from sentilite.runtime.tokenizer import PAD_ID

from ..errors import ConversionError
from ..quantization import symmetric_int8

# Name of the only float tensor in a full-integer file (see integer_ngram_logit).
NGRAM_FLOAT_TENSOR = "ngram_sum_to_float"


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


def ngram_table(weights: np.ndarray, vocab_size: int, kept_ids: int) -> np.ndarray:
    """The n-gram weights a file stores: those of ids below ``kept_ids``, then every bucket's; padding's reads 0.

    One weight per row (rows,) for a model of two labels; (rows, N), one per label, otherwise.
    """
    table = np.concatenate([weights[:kept_ids], weights[vocab_size:]]).astype(np.float32)
    if table.ndim != 2:
        table = table.reshape(-1)
    table[PAD_ID] = 0.0
    return table


def float_ngram_logit(weights: np.ndarray, vocab_size: int, buckets: int, dictionary: NgramDictionary | None,
                      kept_ids: int):
    """ids -> the n-gram logit in float32, (batch, 1) or (batch, N) for N labels, over the unigram rows of ids
    below ``kept_ids``."""
    import tensorflow as tf

    values = ngram_table(weights, vocab_size, kept_ids)
    table = tf.constant(values)
    per_label = values.ndim == 2

    def ngram(ids):
        rows, count = ngram_rows_tf(ids, vocab_size, buckets, dictionary, kept_ids)
        # (batch, n-grams) weights summed to (batch, 1), or (batch, n-grams, N) to (batch, N)
        total = tf.reduce_sum(tf.gather(table, rows), axis=1, keepdims=not per_label)
        return total / tf.sqrt(tf.maximum(tf.cast(count, tf.float32), 1.0))[:, None]

    return ngram


def integer_ngram_logit(weights: np.ndarray, vocab_size: int, buckets: int, maxlen: int,
                        dictionary: NgramDictionary | None):
    """The n-gram logit from int8 weights with integer arithmetic until the last multiply.

    Full-integer conversion would otherwise quantize the running sum and the
    count with one scale each, fitted to long reviews: a 10-word text's sum
    would be rounded to about a whole unit. Here the weights are int8
    (symmetric, one scale), summed exactly in int32, multiplied by a fixed-point
    1/sqrt(count) read from a table, and turned into a float logit once.
    A table of N labels (rows, N) gives (batch, N) with one scale for the
    whole table: one per label would need a per-label multiply the converter
    stores as an int8 vector, whose rounding costs more than it saves (the
    logits are quantized with one scale anyway). Measured on tiny 3-, 5- and
    50-label models whose columns span 1 to 0.02: mean |probability
    difference| 0.0040 / 0.0031 / 0.0011 with one scale, 0.0060 / 0.0089 /
    0.0013 with one per label.
    """
    import tensorflow as tf

    values = ngram_table(weights, vocab_size, vocab_size)
    per_label = values.ndim == 2
    q, scale = symmetric_int8(values)
    q_table = tf.constant(q)
    most = (3 if dictionary is not None else 2) * maxlen  # n-grams a row can have
    counts = np.arange(most + 1)
    # A row of `count` n-grams sums at most 127 * count, times norm <= 2**shift / sqrt(count) + 0.5:
    # the largest shift whose product fits in int32.
    shift = int(np.floor(np.log2((2 ** 31 - 1 - 64 * most) / (127 * np.sqrt(most)))))
    fixed_norm = np.round((2 ** shift) / np.sqrt(np.maximum(counts, 1))).astype(np.int64)
    if (127 * counts * fixed_norm).max() > 2 ** 31 - 1:
        raise ConversionError(f"the n-gram sum of {most} reads overflows int32 at shift {shift}")
    norm = tf.constant(fixed_norm.astype(np.int32))
    to_float = tf.constant(float(scale) / 2 ** shift, tf.float32)

    def ngram(ids):
        rows, count = ngram_rows_tf(ids, vocab_size, buckets, dictionary, vocab_size)
        total = tf.reduce_sum(tf.cast(tf.gather(q_table, rows), tf.int32), axis=1)
        if per_label:  # (batch, N) sums, each row's norm along its labels
            return tf.cast(total * tf.gather(norm, count)[:, None], tf.float32, name=NGRAM_FLOAT_TENSOR) * to_float
        fixed = total * tf.gather(norm, count)
        # The one float tensor of the int8 file: the exact sum, turned into a float logit once and
        # quantized by the next operator (TFLite's QUANTIZE reads no int32).
        return (tf.cast(fixed, tf.float32, name=NGRAM_FLOAT_TENSOR) * to_float)[:, None]

    return ngram


def per_label_table_scales(graph, weights: np.ndarray, vocab_size: int) -> bool:
    """Give the dynamic-int8 file's (rows, N) n-gram table one scale per label; returns whether it found it.

    The converter's dynamic-range quantizer stores the table with one scale
    and dequantizes the rows GATHER reads. Its activations are float, so
    the table's rounding is what is lost, and a label whose weights are
    small loses most: in files of 3, 5 and 50 labels whose table columns
    span 1 to 0.02 (20,000 buckets, random weights), one scale per label
    keeps 98.9 / 99.0 / 98.0% of the numpy reference's top labels, one scale
    94.6 / 92.5 / 97.3% (mean |difference| 0.0025 / 0.0015 / 0.0001 against
    0.0049 / 0.0037 / 0.0003). So the
    table is stored again per column, and the GATHER's output takes the
    same scales along its last axis (DEQUANTIZE reads per-axis parameters).
    """
    from .schema import builtin_code, tflite_schema

    schema = tflite_schema()
    values = ngram_table(weights, vocab_size, vocab_size)
    if values.ndim != 2:
        return False
    main = graph.subgraphs[0]
    for index, tensor in enumerate(main.tensors):
        data = graph.buffers[tensor.buffer].data if tensor.buffer > 0 else None
        if (tensor.type != schema.TensorType.INT8 or data is None or list(tensor.shape) != list(values.shape)
                or tensor.quantization is None or len(tensor.quantization.scale) != 1):
            continue
        gathers = [op for op in main.operators if index in list(op.inputs)]
        if not gathers or any(builtin_code(graph, op) != schema.BuiltinOperator.GATHER or list(op.inputs)[0] != index
                              for op in gathers):
            raise ConversionError(f"the int8 n-gram table {list(values.shape)} is read by an operator other than "
                                  f"GATHER")
        readers = [op for g in gathers for op in main.operators if g.outputs[0] in list(op.inputs)]
        if any(builtin_code(graph, op) != schema.BuiltinOperator.DEQUANTIZE for op in readers):
            raise ConversionError("the int8 n-gram table's rows are read by an operator other than DEQUANTIZE")
        q, scale = symmetric_int8(values, axis=1)
        tensor.quantization = _per_axis(scale, 1)
        graph.buffers[tensor.buffer].data = q.tobytes()
        for op in gathers:
            rows = main.tensors[op.outputs[0]]
            rows.quantization = _per_axis(scale, len(rows.shape) - 1)
        return True
    return False


def _per_axis(scale: np.ndarray, axis: int):
    from .schema import tflite_schema

    params = tflite_schema().QuantizationParametersT()
    params.scale, params.zeroPoint = [float(s) for s in scale], [0] * len(scale)
    params.quantizedDimension = axis
    return params
