"""model.int8.onnx: static int8, where every matrix product runs on 8-bit weights and activations.

onnxruntime has no quantized GRU/LSTM/RNN kernel and its quantizer leaves
those nodes float, so quantizing the fp32 graph (native recurrent node)
reaches only its Gathers: that is the dynamic-int8 file. This one writes the
recurrence as a ``Scan`` over the window's time steps, whose body is one
MatMul plus float gate arithmetic, and puts every MatMul in QDQ form:

- weights int8 in 7 bits (qdq.MATMUL_WEIGHT_LEVELS: what onnxruntime's x86 kernel
  without VNNI multiplies without saturating), symmetric, one scale per output
  column, behind a DequantizeLinear;
- the activation a MatMul reads and the product it writes, each behind a
  QuantizeLinear -> DequantizeLinear pair (uint8, asymmetric) whose range was
  calibrated on training reviews (``calibrate``);
- the embedding table stored as uint8 rows: they are the input projection's
  activation, read by a Gather;
- the n-gram table int8, one scale for the whole table, read by a Gather;
  its sum and the gates stay float. A table of one weight per label (rows,
  N) takes one scale too: on random 3- and 50-label models, one scale per
  label column, or even a float table, lowered the largest logit error by at
  most 0.02 (of 0.06-1.1: the rest is the cell's and the Dense's rounding),
  and one scale keeps the Gather before the DequantizeLinear
  (``qdq.gather_int8_rows``).

This is the form integer-only accelerators (NPU execution providers) take.
onnxruntime's CPU provider fuses each group, the one in the Scan body too,
into a QLinearMatMul (tests/test_onnx_graphs.py checks its optimized graph).
The quantized product matters there as well: a MatMul whose output is not
quantized is first fused with the following Add into a float Gemm
(onnxruntime 1.32), and the QDQ group is lost.

    ids -> window -> Transpose -> Gather(uint8 embedding) -> QDQ MatMul(kernel) -> + bias
        -> Scan[ QDQ MatMul(h, recurrent kernel) -> gates in float ] from the pad state
        -> QDQ MatMul(dense kernel) -> + bias  +  n-gram branch (Gather of int8 rows) -> Sigmoid | Softmax

The price on a CPU: a step of the Scan is 5 (rnn) to 15 (gru) small kernels where the fp32
file runs one fused GRU/LSTM node, so a review takes several times longer.

Built in small steps, each with a unit test on a tiny graph (tests/test_onnx_graphs.py):

1. ``build_scan_graph``: the float graph (same start and head as ``fp32.build_fp32``, graph.py).
2. ``calibrate``: the range of every quantized activation, from the numpy
   reference run on the calibration rows cut as the runtime cuts them
   (the input product's over the whole vocabulary).
3. the QDQ rewrites of qdq.py: ``quantize_initializers``, ``insert_qdq``,
   ``gather_int8_rows``, then ``check_matmuls_quantized``.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from sentilite.runtime.model import cut_widths
from sentilite.runtime.recurrence import Recurrence

from ..errors import ConversionError
from .graph import DENSE_PRODUCT, EMBEDDING_GATHER, H_LAST, NGRAM_TABLE, GraphBuilder, cell_start, head, time_major
from .qdq import (
    MATMUL_WEIGHT_LEVELS, QParams, Range, check_matmuls_quantized, gather_int8_rows, insert_qdq, quantize_initializers,
)

SCAN_NODE = "recurrence"
# The quantized activations: the state read and the product written in the Scan body...
H_PREV, RECURRENT_PRODUCT = "h_prev", "recurrent_product"
# ...and in the main graph, with H_LAST and DENSE_PRODUCT (the embedding rows need none: they are stored 8-bit).
INPUT_PRODUCT = "input_product"


# -- 1. the float graph -------------------------------------------------------------------------------
def keras_recurrent_bias(cell: str, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(bias added to the input product, bias added to the recurrent product inside the step)."""
    bias = np.asarray(bias, np.float32)
    return (bias[0], bias[1]) if cell == "gru" else (bias, None)


def step_graph(cell: str, recurrent_kernel: np.ndarray, recurrent_bias: np.ndarray | None) -> onnx.GraphProto:
    """The Scan body: (h_prev[, c_prev], x_t) -> (h[, c]); Recurrence.step with a MatMul node for h @ R."""
    units = recurrent_kernel.shape[0]
    b = GraphBuilder()
    b.const("recurrent_kernel", recurrent_kernel.astype(np.float32))
    b.node("MatMul", [H_PREV, "recurrent_kernel"], RECURRENT_PRODUCT)
    inner = RECURRENT_PRODUCT
    states = [H_PREV]
    if cell == "rnn":
        b.node("Add", ["x_t", inner], "pre")
        outputs = b.node("Tanh", ["pre"], "h")
    elif cell == "lstm":
        states.append("c_prev")
        b.const("four_way", np.full(4, units, np.int64))
        b.node("Add", ["x_t", inner], "pre")
        b.node("Split", ["pre", "four_way"], ["i_pre", "f_pre", "g_pre", "o_pre"], axis=1)
        for gate in ("i", "f", "o"):
            b.node("Sigmoid", [f"{gate}_pre"], gate)
        b.node("Tanh", ["g_pre"], "g")
        b.node("Mul", ["f", "c_prev"], "c_kept")
        b.node("Mul", ["i", "g"], "c_new")
        b.node("Add", ["c_kept", "c_new"], "c")
        b.node("Tanh", ["c"], "c_tanh")
        outputs = b.node("Mul", ["o", "c_tanh"], "h") + ["c"]
    else:  # gru, reset_after: h = z * h_prev + (1 - z) * tanh(x_h + r * (h_prev @ R_h + b_h))
        b.const("recurrent_bias", recurrent_bias.astype(np.float32))
        b.const("gates_and_candidate", np.array([2 * units, units], np.int64))
        b.const("two_way", np.array([units, units], np.int64))
        b.node("Add", [inner, "recurrent_bias"], "inner")
        b.node("Split", ["x_t", "gates_and_candidate"], ["x_zr", "x_h"], axis=1)
        b.node("Split", ["inner", "gates_and_candidate"], ["inner_zr", "inner_h"], axis=1)
        b.node("Add", ["x_zr", "inner_zr"], "zr_pre")
        b.node("Sigmoid", ["zr_pre"], "zr")
        b.node("Split", ["zr", "two_way"], ["z", "r"], axis=1)
        b.node("Mul", ["r", "inner_h"], "r_inner")
        b.node("Add", ["x_h", "r_inner"], "hh_pre")
        b.node("Tanh", ["hh_pre"], "hh")
        b.node("Sub", [H_PREV, "hh"], "h_minus_hh")
        b.node("Mul", ["z", "h_minus_hh"], "z_part")
        outputs = b.node("Add", ["hh", "z_part"], "h")
    gates = recurrent_kernel.shape[1]
    inputs = [helper.make_tensor_value_info(s, TensorProto.FLOAT, ["batch", units]) for s in states]
    inputs.append(helper.make_tensor_value_info("x_t", TensorProto.FLOAT, ["batch", gates]))
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, ["batch", units]) for o in outputs]
    return b.graph(f"{cell}_step", inputs, outs)


def build_scan_graph(ctx, name: str = "sentilite") -> onnx.ModelProto:
    """The float model with its recurrence as a Scan of MatMuls: the graph the int8 steps rewrite.

    Same contract, start and head as ``fp32.build_fp32``: int32 ids (batch,
    time) of any length up to maxlen, read as if left-padded to maxlen (the
    state starts at the pad state of the left-out padding), P(positive)
    (batch, 1) out, or ``probabilities`` (batch, N) for N labels.
    """
    cell, weights = ctx.model.cell, ctx.weights
    steps = ctx.model.steps(ctx.maxlen)
    embedding = weights.get("embedding")
    recurrence = Recurrence(cell, weights["kernel"], weights["recurrent_kernel"], weights["bias"], embedding)
    input_bias, recurrent_bias = keras_recurrent_bias(cell, weights["bias"])

    b = GraphBuilder()
    window, initial = cell_start(b, steps, ctx.maxlen, recurrence.pad_states(steps), leading_axis=False)
    ids_tb = time_major(b, window)
    if embedding is None:  # one-hot input: row i of the kernel is the product
        b.const("kernel", weights["kernel"])
        b.node("Gather", ["kernel", ids_tb], INPUT_PRODUCT, axis=0)
    else:
        b.const("embedding", embedding)
        b.const("kernel", weights["kernel"])
        b.node("Gather", ["embedding", ids_tb], "embedded", axis=0, name=EMBEDDING_GATHER)
        b.node("MatMul", ["embedded", "kernel"], INPUT_PRODUCT)
    b.const("input_bias", input_bias)
    b.node("Add", [INPUT_PRODUCT, "input_bias"], "x")
    finals = [H_LAST, "c_last"][: len(initial)]
    b.node("Scan", initial + ["x"], finals, name=SCAN_NODE, num_scan_inputs=1,
           body=step_graph(cell, weights["recurrent_kernel"], recurrent_bias))
    head(b, H_LAST, ctx, product=DENSE_PRODUCT)
    return b.model(name, ctx.model.outputs)


# -- 2. calibration -----------------------------------------------------------------------------------
def calibrate(ctx) -> dict[str, Range]:
    """Min/max of each quantized activation, from the float reference on the calibration rows.

    The rows are cut as ``runtime.model.run_batches`` cuts them and start from
    the pad state, so the recorded states are those the file will see. The
    input product (embedding @ kernel) takes one value per vocabulary id, so
    its range is taken over the whole vocabulary instead.
    """
    ids = np.asarray(ctx.calibration_ids)
    if ids.ndim != 2 or len(ids) == 0:
        raise ConversionError("static int8 needs calibration rows (a non-empty 2-D array of ids)")
    cell, weights = ctx.model.cell, ctx.weights
    steps = ctx.model.steps(ctx.maxlen)
    embedding = weights.get("embedding")
    recurrence = Recurrence(cell, weights["kernel"], weights["recurrent_kernel"], weights["bias"], embedding)
    pad_states = recurrence.pad_states(steps)
    kernel, rk, dense = (weights[k].astype(np.float32) for k in ("kernel", "recurrent_kernel", "dense_kernel"))
    zero = Range(0.0, 0.0)  # every range holds 0, so padding and the zero state stay exact
    seen = {name: zero for name in (INPUT_PRODUCT, H_PREV, RECURRENT_PRODUCT, H_LAST, DENSE_PRODUCT)}
    widths = cut_widths(ids)
    for width in np.unique(widths):
        rows = ids[widths == width, ids.shape[1] - width:]
        window = rows[:, max(0, width - steps):]
        pad = min(steps - window.shape[1], len(pad_states[0]) - 1)
        state = tuple(np.repeat(s[pad: pad + 1], len(rows), axis=0) for s in pad_states)
        x = recurrence.table[window]  # input product + bias
        for t in range(window.shape[1]):
            seen[H_PREV] = seen[H_PREV].widen(state[0])
            seen[RECURRENT_PRODUCT] = seen[RECURRENT_PRODUCT].widen(state[0] @ rk)
            state = recurrence.step(x[:, t], state)
        seen[H_LAST] = seen[H_LAST].widen(state[0])
        seen[DENSE_PRODUCT] = seen[DENSE_PRODUCT].widen(state[0] @ dense)
    if embedding is None:
        del seen[INPUT_PRODUCT]  # a Gather of kernel rows, not a product
    else:  # one product row per vocabulary id: its exact range, which no review can leave
        seen[INPUT_PRODUCT] = zero.widen(embedding @ kernel)
    return seen


# -- 3. the whole int8 graph --------------------------------------------------------------------------
def scan_body(model: onnx.ModelProto) -> onnx.GraphProto:
    """The step graph of the recurrence's Scan (a live reference: edits change the model)."""
    scans = [n for n in model.graph.node if n.op_type == "Scan" and n.name == SCAN_NODE]
    if len(scans) != 1:
        raise ConversionError(f"expected one Scan node {SCAN_NODE!r}, found {len(scans)}")
    return next(a.g for a in scans[0].attribute if a.name == "body")


def build_int8(ctx, name: str = "sentilite", ranges: dict[str, Range] | None = None) -> onnx.ModelProto:
    """The float Scan graph with every MatMul in QDQ form and the tables gathered as 8-bit rows.

    ``ranges`` replaces calibration (tests, experiments); raises ConversionError
    if the graph is not what the steps expect or a float MatMul is left.
    """
    ranges = calibrate(ctx) if ranges is None else ranges
    model = build_scan_graph(ctx, name)
    matmul = ("MatMul",)
    # The body first: rewriting the main graph re-adds its nodes, which detaches a body fetched before.
    body = scan_body(model)
    quantize_initializers(body, {"recurrent_kernel": 1}, levels=MATMUL_WEIGHT_LEVELS)
    insert_qdq(body, H_PREV, QParams.for_range(ranges[H_PREV]), into=matmul)
    insert_qdq(body, RECURRENT_PRODUCT, QParams.for_range(ranges[RECURRENT_PRODUCT]))
    main = model.graph
    names = {i.name for i in main.initializer}
    matrices: dict[str, int | None] = {"dense_kernel": 1}  # a MatMul's weights, per output column
    # per tensor, (rows,) or (rows, N) alike (see the module's docstring)
    gathered: dict[str, int | None] = {NGRAM_TABLE: None} if NGRAM_TABLE in names else {}
    if "embedding" in names:
        matrices = {"kernel": 1, **matrices}
        quantize_initializers(main, gathered, tables=("embedding",))
    else:  # one-hot input: the kernel is a table read by a Gather
        quantize_initializers(main, {"kernel": None, **gathered})
    quantize_initializers(main, matrices, levels=MATMUL_WEIGHT_LEVELS)
    insert_qdq(main, H_LAST, QParams.for_range(ranges[H_LAST]), into=matmul)
    insert_qdq(main, DENSE_PRODUCT, QParams.for_range(ranges[DENSE_PRODUCT]))
    if INPUT_PRODUCT in ranges:
        insert_qdq(main, INPUT_PRODUCT, QParams.for_range(ranges[INPUT_PRODUCT]))
    gather_int8_rows(main)
    check_matmuls_quantized(model)
    return model
