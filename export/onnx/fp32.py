"""model.fp32.onnx: the recurrence as one native ONNX GRU or LSTM node, written from the Keras weights.

ids (batch, T) -> last `window` ids -> Transpose -> Gather(embedding) -> RNN-as-GRU | LSTM | GRU
-> last hidden state -> MatMul + Add, plus the n-gram branch (Gather of
unigram and hashed-bigram rows, ReduceSum, / sqrt(count)) over the whole
row -> Sigmoid, or Softmax for a model of N labels (a logit per label, from
a Dense of N units and an n-gram table of N columns). T is anything up to
maxlen: the recurrent state starts where the left-out padding would have
taken it (graph.cell_start).

tf2onnx does not read Keras 3 models
(onnx/tensorflow-onnx#2329) and, through a tf.function, turns SimpleRNN and
GRU into `Loop` nodes that are 7-28x slower and that onnxruntime's quantizer
cannot handle (`Invalid model with unknown initializers/tensors`, see
microsoft/onnxruntime#18681); the native recurrent ops avoid both. tf2onnx
still converts the Keras model for a reference check (``reference.py``).
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from sentilite.runtime.recurrence import Recurrence

from .graph import EMBEDDING_GATHER, STATE_INPUTS, GraphBuilder, cell_start, head, time_major

_ONNX_OP = {"rnn": "GRU", "lstm": "LSTM", "gru": "GRU"}  # rnn: see _simple_rnn_as_gru
# Keras LSTM gates are i, f, c, o; ONNX wants i, o, f, c.
_LSTM_ORDER = (0, 3, 1, 2)
# This file names the nodes of the shared pieces after what they do rather than after their output.
_NODE_NAMES = {
    "batch": "batch_size", "time": "time_steps", "ids_tb": "ids_transpose",
    "logit_mm": "dense_matmul", "cell_logit": "dense_add",
    **{f"{state}_row3": f"{state}_unsqueeze" for state in STATE_INPUTS},
    **{state: f"{state}_expand" for state in STATE_INPUTS},
}


def _reorder(m: np.ndarray, units: int, axis: int) -> np.ndarray:
    blocks = np.split(m, m.shape[axis] // units, axis=axis)
    return np.concatenate([blocks[i] for i in _LSTM_ORDER], axis=axis)


def onnx_recurrent_weights(cell: str, weights: dict[str, np.ndarray]):
    """Keras (kernel, recurrent_kernel, bias) -> ONNX W [1,G*U,E], R [1,G*U,U], B [1,2*G*U]."""
    kernel, recurrent, bias = weights["kernel"], weights["recurrent_kernel"], weights["bias"]
    units = recurrent.shape[0]
    if cell == "rnn":
        return _simple_rnn_as_gru(kernel, recurrent, bias, units)
    if cell == "lstm":
        kernel, recurrent, bias = _reorder(kernel, units, 1), _reorder(recurrent, units, 1), _reorder(bias, units, 0)
    if cell == "gru":  # reset_after=True: row 0 input bias (Wb), row 1 recurrent bias (Rb)
        wb, rb = bias[0], bias[1]
    else:
        wb, rb = bias, np.zeros_like(bias)
    w = kernel.T[None].astype(np.float32)
    r = recurrent.T[None].astype(np.float32)
    b = np.concatenate([wb, rb])[None].astype(np.float32)
    return w, r, b, units


# A gate bias that saturates the sigmoid: sigmoid(-30) ~ 1e-13 and sigmoid(30)
# rounds to 1.0 in float32.
_GATE_SATURATION = 30.0


def _simple_rnn_as_gru(kernel, recurrent, bias, units):
    """A SimpleRNN written as an ONNX GRU (linear_before_reset) whose update gate is shut and reset gate open.

    With z = 0 and r = 1 the GRU step is h = tanh(x Wh + h Rh + b), the
    SimpleRNN step. onnxruntime's GRU kernel runs this ~1.7x faster than its
    own RNN kernel does the plain step (0.69 vs 1.18 ms for 500 steps of 32
    units at batch 1, onnxruntime 1.32). W and R hold only the h gate here:
    build_fp32 puts the zero z and r blocks in front with ConstantOfShape, which
    onnxruntime folds at load time, so the file carries no zeros.
    """
    gates_b = np.concatenate([np.full(units, -_GATE_SATURATION), np.full(units, _GATE_SATURATION)]).astype(np.float32)
    w = kernel.T[None]  # ONNX GRU gate order z, r, h: only h is stored
    r = recurrent.T[None]
    b = np.concatenate([gates_b, bias, np.zeros(3 * units, np.float32)])[None]
    return w.astype(np.float32), r.astype(np.float32), b.astype(np.float32), units


def build_fp32(ctx, name: str = "sentilite") -> onnx.ModelProto:
    """The fp32 model: rows of any length T <= maxlen read as if left-padded (graph.cell_start), one recurrent node."""
    cell, weights = ctx.model.cell, ctx.weights
    steps = ctx.model.steps(ctx.maxlen)
    w, r, bias, units = onnx_recurrent_weights(cell, weights)
    embedding = weights.get("embedding")
    recurrence = Recurrence(cell, weights["kernel"], weights["recurrent_kernel"], weights["bias"], embedding)
    pad_states = recurrence.pad_states(steps)
    if embedding is None:  # one-hot input: the table is the identity
        embedding = np.eye(weights["kernel"].shape[0], dtype=np.float32)
    stored = "_h" if cell == "rnn" else ""  # rnn: the h gate only, see _simple_rnn_as_gru
    b = GraphBuilder(node_names=_NODE_NAMES)
    # The weights first, then the start's constants: the file's initializers in a fixed order, so an unchanged
    # model writes the same bytes (the pieces below find these added and add only the rest).
    for const, value in (("embedding", embedding.astype(np.float32)), ("W" + stored, w), ("R" + stored, r),
                         ("B", bias), ("dense_kernel", weights["dense_kernel"].astype(np.float32)),
                         ("dense_bias", weights["dense_bias"].astype(np.float32)),
                         ("axis0", np.array([0], np.int64)), ("axis1", np.array([1], np.int64)),
                         ("steps", np.array([steps], np.int64)),
                         ("last_pad_state", np.array([len(pad_states[0]) - 1], np.int64)),
                         ("units", np.array([units], np.int64))):
        b.const(const, value)
    window, states = cell_start(b, steps, ctx.maxlen, pad_states, leading_axis=True)
    if stored:
        for gate, cols in (("W", w.shape[2]), ("R", r.shape[2])):
            b.const(f"{gate}_zero_shape", np.array([1, 2 * units, cols], np.int64))
            b.node("ConstantOfShape", [f"{gate}_zero_shape"], f"{gate}_zero",
                   value=numpy_helper.from_array(np.zeros(1, np.float32)))
            b.node("Concat", [f"{gate}_zero", gate + stored], gate, axis=1, name=f"{gate}_gates")
    op = _ONNX_OP[cell]
    attrs = {"hidden_size": units, "direction": "forward"}
    if op == "GRU":
        attrs["linear_before_reset"] = 1
    ids_tb = time_major(b, window)
    b.node("Gather", ["embedding", ids_tb], "embedded", axis=0, name=EMBEDDING_GATHER)
    b.node(op, ["embedded", "W", "R", "B", ""] + states, ["", "h_last_dir"], name=cell, **attrs)
    b.node("Squeeze", ["h_last_dir", "axis0"], "h_last", name="squeeze_direction")
    head(b, "h_last", ctx, product="logit_mm")
    return b.model(name, ctx.model.outputs)
