"""The Keras cells' step (SimpleRNN, LSTM, GRU with reset_after) in TensorFlow operators, for both TFLite graphs.

The runtime's file (``graph.build_loop_function``, a WHILE over the state)
reads Keras' gate columns; MediaPipe's file (``mediapipe.graph``, the step
unrolled) puts the sigmoid gates side by side and folds biases into the
input, an operator less a step. So a step takes what differs as arguments,
and what a graph must build after the gates as a function it calls there:
the order TensorFlow creates operators in names and orders them in the
converted file, and a file must not change with where its step is written.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np


def rnn_step(preactivation):
    """SimpleRNN: h' = tanh(x W + h U + b), given x W + h U + b."""
    import tensorflow as tf

    return tf.tanh(preactivation)


def lstm_sigmoid_gates_first(units: int) -> np.ndarray:
    """Column order i, f, o | c of Keras' i, f, c, o: the three sigmoid gates in one run (``lstm_step``)."""
    u = units
    return np.concatenate([np.arange(0, 2 * u), np.arange(3 * u, 4 * u), np.arange(2 * u, 3 * u)])


def lstm_step(preactivation, cell_state, units: int, sigmoid_gates_first: bool = False):
    """Keras LSTM: (h', c') with c' = f * c + i * tanh(g) and h' = o * tanh(c').

    ``preactivation`` is x W + h U + b in Keras' columns i, f, c, o, or, with
    ``sigmoid_gates_first``, in those of ``lstm_sigmoid_gates_first``: one
    sigmoid then covers the three gates.
    """
    import tensorflow as tf

    if sigmoid_gates_first:
        gates, g = tf.split(preactivation, [3 * units, units], axis=-1)
        i, f, o = tf.split(tf.sigmoid(gates), 3, axis=-1)
        input_gate, forget_gate, output_gate = (lambda: i), (lambda: f), (lambda: o)
    else:  # each gate's sigmoid is made where the update first reads it: f, i, then o
        i, f, g, o = tf.split(preactivation, 4, axis=-1)
        input_gate, forget_gate, output_gate = (lambda: tf.sigmoid(i)), (lambda: tf.sigmoid(f)), (lambda: tf.sigmoid(o))
    cell_state = forget_gate() * cell_state + input_gate() * tf.tanh(g)
    return (output_gate() * tf.tanh(cell_state), cell_state)


def gru_step(h, update_reset, candidate_terms: Callable[[], tuple]):
    """Keras GRU (reset_after): h' = z * h + (1 - z) * tanh(x_c + r * (h U_c + b_c)), [z, r] = sigmoid(update_reset).

    ``update_reset`` is x_zr + h U_zr + both biases of z and r;
    ``candidate_terms()`` gives (x_c with its bias, h U_c + b_c), built once z and r are.
    """
    import tensorflow as tf

    z, r = tf.split(tf.sigmoid(update_reset), 2, axis=-1)
    candidate_input, candidate_recurrent = candidate_terms()
    candidate = tf.tanh(candidate_input + r * candidate_recurrent)
    return candidate + z * (h - candidate)  # == z*h + (1-z)*candidate
