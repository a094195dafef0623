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
    """The n-gram weights a file stores: those of ids below ``kept_ids``, then every bucket's; padding's reads 0."""
    table = np.concatenate([weights[:kept_ids], weights[vocab_size:]]).astype(np.float32).reshape(-1)
    table[PAD_ID] = 0.0
    return table


def float_ngram_logit(weights: np.ndarray, vocab_size: int, buckets: int, dictionary: NgramDictionary | None,
                      kept_ids: int):
    """ids -> the n-gram logit (batch, 1) in float32, over the unigram rows of ids below ``kept_ids``."""
    import tensorflow as tf

    table = tf.constant(ngram_table(weights, vocab_size, kept_ids))

    def ngram(ids):
        rows, count = ngram_rows_tf(ids, vocab_size, buckets, dictionary, kept_ids)
        total = tf.reduce_sum(tf.gather(table, rows), axis=1, keepdims=True)
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
    """
    import tensorflow as tf

    q, scale = symmetric_int8(ngram_table(weights, vocab_size, vocab_size))
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
        fixed = total * tf.gather(norm, count)
        # The one float tensor of the int8 file: the exact sum, turned into a float logit once and
        # quantized by the next operator (TFLite's QUANTIZE reads no int32).
        return (tf.cast(fixed, tf.float32, name=NGRAM_FLOAT_TENSOR) * to_float)[:, None]

    return ngram
