"""The runtime's TFLite graph: the forward pass rebuilt from the Keras weights as a tf.function.

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
(QUANTIZE/DEQUANTIZE inside the body); ``loop_state.intify_while_state``
rewrites it to int8 so every operator between the input and the output runs
on integers.

Rows may be shorter than maxlen (the batch and time axes are both dynamic):
the loop starts from the state the left-out padding would have reached, a
row of a small table (``Recurrence.pad_states``), so the runtime
runs a review's own length. Full-integer calibration feeds rows the same way,
so the calibrator sees those states.
"""
from __future__ import annotations

import numpy as np

from sentilite.runtime.architecture import ModelConfig
from sentilite.runtime.recurrence import Recurrence

from ..weights import ngram_dictionary
from .cells import gru_step, lstm_step, rnn_step
from .ngrams import float_ngram_logit, integer_ngram_logit

# The converter's dynamic-range quantizer leaves constants under 1024 elements
# float; the recurrent kernel is cut into chunks under that size so it stays
# float in dynamic-int8 (an int8 recurrent kernel alone cost a SimpleRNN ~3.5
# points of label agreement over 200 steps, for at most 16 KB).
_FLOAT_CHUNK_ELEMENTS = 512
# The output of a file of three or more labels: its signature's key and its tensor's name.
PROBABILITIES = "probabilities"


def build_loop_function(model: ModelConfig, weights: dict[str, np.ndarray], maxlen: int, vocab_size: int,
                        precision: str = "fp32"):
    """The forward pass as a tf.function over (batch, T) int32 ids, T <= maxlen, the cell in a WHILE loop.

    Two labels: P(labels[1]) (batch, 1), a sigmoid. N labels: the softmax
    (batch, N) in label order, returned as ``{"probabilities": ...}`` so the
    signature names its output. In the int8 file the n-gram branch runs on integers (see
    ``ngrams.integer_ngram_logit``); elsewhere it is the float sum.
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
    single_logit = model.outputs == 1
    keep_recurrent_float = precision == "dynamic-int8"

    def recurrent_matmul(h):
        if keep_recurrent_float:
            return tf.concat([tf.matmul(h, c) for c in chunks], axis=-1)
        return tf.matmul(h, recurrent_full)

    def step(x, state):  # x: the input projection in Keras' gate columns
        if cell == "rnn":
            return (rnn_step(x + recurrent_matmul(state[0])),)
        if cell == "lstm":
            h, c = state
            return lstm_step(x + recurrent_matmul(h), c, units)
        h = state[0]
        inner = recurrent_matmul(h) + recurrent_bias
        return (gru_step(h, x[:, : 2 * units] + inner[:, : 2 * units],
                         lambda: (x[:, 2 * units:], inner[:, 2 * units:])),)

    # Rows shorter than the window start from the state their left-out padding would reach.
    recurrence = Recurrence(cell, kernel, recurrent, bias, w.get("embedding"))
    pad_tables = [const(t) for t in recurrence.pad_states(steps)]
    last_pad_state = int(pad_tables[0].shape[0]) - 1
    ngram = None
    if model.ngram_buckets:
        dictionary = ngram_dictionary(model, w)
        if precision == "int8":
            ngram = integer_ngram_logit(w["ngram_weights"], vocab_size, model.ngram_buckets, maxlen, dictionary)
        else:
            ngram = float_ngram_logit(w["ngram_weights"], vocab_size, model.ngram_buckets, dictionary, vocab_size)

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
        if single_logit:
            return tf.sigmoid(logit)
        return {PROBABILITIES: tf.nn.softmax(logit, name=PROBABILITIES)}

    return positive
