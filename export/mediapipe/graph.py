"""MediaPipe's graph: the forward pass unrolled over the client's [1, L] row, in one subgraph, converted to float32."""
from __future__ import annotations

import numpy as np

from sentilite.runtime.architecture import ModelConfig
from sentilite.runtime.tokenizer import PAD_ID

from ..errors import ConversionError
from ..tflite.cells import gru_step, lstm_sigmoid_gates_first, lstm_step, rnn_step
from ..tflite.ngrams import float_ngram_logit
from ..weights import ngram_dictionary


def build_unrolled_function(model: ModelConfig, weights: dict[str, np.ndarray], maxlen: int, vocab_size: int,
                            kept_ids: int, length: int):
    """The forward pass as a tf.function over the client's int32 [1, length] row; returns float32 [1, N].

    Two labels: [1 - p, p] of the single logit's sigmoid p; N labels: the
    softmax over them, in label order.

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
    ngram = float_ngram_logit(w["ngram_weights"], vocab_size, model.ngram_buckets, ngram_dictionary(model, w),
                              kept_ids) if model.ngram_buckets else None
    if model.cell == "gru":  # Keras gate order z, r, h; reset_after: (2, 3u) biases
        zr, c = np.arange(2 * u), np.arange(2 * u, 3 * u)
        # The recurrent bias of z and r adds to the input's: one ADD a step less.
        x_parts = (project(zr, bias[1][zr]), project(c))
        r_zr = const(recurrent[:, zr])
        r_c, rb_c = const(recurrent[:, c]), const(bias[1][c])

        def step(x, state):
            x_zr, x_c = x
            h = state[0]
            return (gru_step(h, x_zr + tf.matmul(h, r_zr), lambda: (x_c, tf.matmul(h, r_c) + rb_c)),)
    elif model.cell == "lstm":  # one sigmoid for the three sigmoid gates
        order = lstm_sigmoid_gates_first(u)
        x_parts = (project(order),)
        r_all = const(recurrent[:, order])

        def step(x, state):
            h, cell_state = state
            return lstm_step(x[0] + tf.matmul(h, r_all), cell_state, u, sigmoid_gates_first=True)
    else:
        x_parts = (project(np.arange(u)),)
        r_all = const(recurrent)

        def step(x, state):
            return (rnn_step(x[0] + tf.matmul(state[0], r_all)),)

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
        if model.outputs != 1:
            return tf.nn.softmax(logit, name="probabilities")
        positive = tf.sigmoid(logit)
        return tf.concat([1.0 - positive, positive], axis=-1, name="probabilities")

    return classify


def convert_unrolled(model: ModelConfig, weights: dict[str, np.ndarray], maxlen: int, vocab_size: int,
                     kept_ids: int, length: int) -> bytes:
    """The float32 file from the converter, before ``int8_weights.store_weights_int8``."""
    import tensorflow as tf

    fn = build_unrolled_function(model, weights, maxlen, vocab_size, kept_ids, length)
    holder = tf.Module()
    holder.fn = fn
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], holder)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex, no custom ops
    try:
        return bytes(converter.convert())
    except Exception as exc:  # the converter raises many types; name the model in one
        raise ConversionError(f"MediaPipe TFLite conversion of the {model.cell} model failed: {exc}") from exc
