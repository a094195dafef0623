"""model.int8.onnx: static int8, where every matrix product runs on 8-bit weights and activations.

onnxruntime has no quantized GRU/LSTM/RNN kernel and its quantizer leaves
those nodes float, so quantizing the fp32 graph (native recurrent node)
reaches only its Gathers: that is the dynamic-int8 file. This one writes the
recurrence as a ``Scan`` over the window's time steps, whose body is one
MatMul plus float gate arithmetic, and puts every MatMul in QDQ form:

- weights int8, symmetric, one scale per output column, behind a DequantizeLinear;
- the activation a MatMul reads and the product it writes, each behind a
  QuantizeLinear -> DequantizeLinear pair (uint8, asymmetric) whose range was
  calibrated on training reviews (``calibrate``);
- the embedding table stored as uint8 rows: they are the input projection's
  activation, read by a Gather;
- the n-gram table int8, read by a Gather; its sum and the gates stay float.

This is the form integer-only accelerators (NPU execution providers) take.
onnxruntime's CPU provider fuses each group, the one in the Scan body too,
into a QLinearMatMul (tests/test_onnx_int8.py checks its optimized graph).
The quantized product matters there as well: a MatMul whose output is not
quantized is first fused with the following Add into a float Gemm
(onnxruntime 1.32), and the QDQ group is lost.

    ids -> window -> Transpose -> Gather(uint8 embedding) -> QDQ MatMul(kernel) -> + bias
        -> Scan[ QDQ MatMul(h, recurrent kernel) -> gates in float ] from the pad state
        -> QDQ MatMul(dense kernel) -> + bias  +  n-gram branch (Gather of int8 rows) -> Sigmoid

The price on a CPU: a step of the Scan is 5 (rnn) to 15 (gru) small kernels where the fp32
file runs one fused GRU/LSTM node, so a review takes several times longer.

Built in small steps, each with a unit test on a tiny graph (tests/test_onnx_int8.py):

1. ``build_scan_graph``: the float graph (same contract as ``to_onnx.build_fp32``).
2. ``calibrate``: the range of every quantized activation, from the numpy
   reference run on the calibration rows cut as the runtime cuts them
   (the input product's over the whole vocabulary).
3. ``quantize_weights``: float initializer -> 8-bit initializer + DequantizeLinear.
4. ``insert_qdq``: a QuantizeLinear -> DequantizeLinear pair on an activation.
5. ``gather_int8_rows``: DequantizeLinear(table) -> Gather becomes
   Gather(8-bit table) -> DequantizeLinear, so a run dequantizes only the rows it reads.
6. ``check_matmuls_quantized``: refuses a graph with a float MatMul left.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from sentilite.runtime.model import cut_widths
from sentilite.runtime.recurrence import Recurrence

from .errors import ConversionError
from .to_onnx import INPUT_NAME, IR_VERSION, NGRAM_TABLE, OPSET, OUTPUT_NAME, ngram_branch
from .weights import ngram_dictionary

SCAN_NODE = "recurrence"
EMBEDDING_GATHER = "embedding_gather"  # the same node name as in the other ONNX files
# The quantized activations: the state read and the product written in the Scan body...
H_PREV, RECURRENT_PRODUCT = "h_prev", "recurrent_product"
# ...and in the main graph (the embedding rows need none: they are stored 8-bit).
INPUT_PRODUCT, H_LAST, DENSE_PRODUCT = "input_product", "h_last", "dense_product"
_INT64_MAX = np.iinfo(np.int64).max


# -- 1. the float graph -------------------------------------------------------------------------------
class _Builder:
    """Nodes and initializers of one graph, added in order."""

    def __init__(self):
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def const(self, name: str, value) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str] | str, **attrs) -> list[str]:
        outputs = [outputs] if isinstance(outputs, str) else outputs
        self.nodes.append(helper.make_node(op, inputs, outputs, name=outputs[0], **attrs))
        return outputs


def keras_recurrent_bias(cell: str, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(bias added to the input product, bias added to the recurrent product inside the step)."""
    bias = np.asarray(bias, np.float32)
    return (bias[0], bias[1]) if cell == "gru" else (bias, None)


def step_graph(cell: str, recurrent_kernel: np.ndarray, recurrent_bias: np.ndarray | None) -> onnx.GraphProto:
    """The Scan body: (h_prev[, c_prev], x_t) -> (h[, c]); Recurrence.step with a MatMul node for h @ R."""
    units = recurrent_kernel.shape[0]
    b = _Builder()
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
    return helper.make_graph(b.nodes, f"{cell}_step", inputs, outs, initializer=b.initializers)


def build_scan_graph(ctx, name: str = "sentilite") -> onnx.ModelProto:
    """The float model with its recurrence as a Scan of MatMuls: the graph the int8 steps rewrite.

    Same contract as ``to_onnx.build_fp32``: int32 ids (batch, time) of any
    length up to maxlen, read as if left-padded to maxlen (the state starts
    at the pad state of the left-out padding), P(positive) (batch, 1) out.
    """
    cell, weights = ctx.model.cell, ctx.weights
    steps = ctx.model.steps(ctx.maxlen)
    embedding = weights.get("embedding")
    recurrence = Recurrence(cell, weights["kernel"], weights["recurrent_kernel"], weights["bias"], embedding)
    pad_states = recurrence.pad_states(steps)
    units = recurrence.units
    input_bias, recurrent_bias = keras_recurrent_bias(cell, weights["bias"])

    b = _Builder()
    for const, value in (("axis0", [0]), ("axis1", [1]), ("steps", [steps]), ("units", [units]),
                         ("last_pad_state", [len(pad_states[0]) - 1])):
        b.const(const, np.array(value, np.int64))
    window = INPUT_NAME
    if steps < ctx.maxlen:  # the cell reads the last `steps` ids of the row
        b.const("window_start", np.array([-steps], np.int64))
        b.const("to_end", np.array([_INT64_MAX], np.int64))
        window = b.node("Slice", [INPUT_NAME, "window_start", "to_end", "axis1"], "window")[0]
    b.node("Shape", [window], "window_shape")
    b.node("Gather", ["window_shape", "axis0"], "batch", axis=0)
    b.node("Gather", ["window_shape", "axis1"], "time", axis=0)
    b.node("Sub", ["steps", "time"], "pad_count")
    b.node("Max", ["pad_count", "axis0"], "pad_nonneg")
    b.node("Min", ["pad_nonneg", "last_pad_state"], "pad_index")
    b.node("Concat", ["batch", "units"], "state_shape", axis=0)
    initial = []
    for state, table in zip(("initial_h", "initial_c"), pad_states):
        # Same table names as the fp32 graph, so to_fp16(only=...) stores them in float16 here too.
        b.const(f"pad_{state}", table.astype(np.float32))
        b.node("Gather", [f"pad_{state}", "pad_index"], f"pad_{state}_gather", axis=0)  # (1, units)
        initial += b.node("Expand", [f"pad_{state}_gather", "state_shape"], state)
    # onnxruntime reads Scan inputs along axis 0: transpose the ints, not the floats.
    b.node("Transpose", [window], "ids_tb", perm=[1, 0])
    if embedding is None:  # one-hot input: row i of the kernel is the product
        b.const("kernel", weights["kernel"])
        b.nodes.append(helper.make_node("Gather", ["kernel", "ids_tb"], [INPUT_PRODUCT], axis=0, name=INPUT_PRODUCT))
    else:
        b.const("embedding", embedding)
        b.const("kernel", weights["kernel"])
        b.nodes.append(helper.make_node("Gather", ["embedding", "ids_tb"], ["embedded"], axis=0,
                                        name=EMBEDDING_GATHER))
        b.node("MatMul", ["embedded", "kernel"], INPUT_PRODUCT)
    b.const("input_bias", input_bias)
    b.node("Add", [INPUT_PRODUCT, "input_bias"], "x")
    finals = [H_LAST, "c_last"][: len(initial)]
    b.node("Scan", initial + ["x"], finals, num_scan_inputs=1,
           body=step_graph(cell, weights["recurrent_kernel"], recurrent_bias))
    b.nodes[-1].name = SCAN_NODE
    b.const("dense_kernel", weights["dense_kernel"])
    b.const("dense_bias", weights["dense_bias"])
    b.node("MatMul", [H_LAST, "dense_kernel"], DENSE_PRODUCT)
    logit = b.node("Add", [DENSE_PRODUCT, "dense_bias"], "cell_logit")[0]
    if ctx.model.ngram_buckets:
        ngram_inits, ngram_nodes = ngram_branch(weights["ngram_weights"], ctx.vocab_size, ctx.model.ngram_buckets,
                                                ngram_dictionary(ctx.model, weights))
        b.initializers += ngram_inits
        b.nodes += ngram_nodes
        logit = b.node("Add", ["cell_logit", "ngram_logit"], "logit")[0]
    b.nodes.append(helper.make_node("Sigmoid", [logit], [OUTPUT_NAME], name="sigmoid"))
    graph = helper.make_graph(
        b.nodes, name,
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.INT32, ["batch", "time"])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", 1])],
        initializer=b.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="sentilite")
    model.ir_version = IR_VERSION
    return model


# -- 2. calibration -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Range:
    """The smallest and largest value an activation took."""

    low: float
    high: float

    def widen(self, values: np.ndarray) -> "Range":
        if values.size == 0:
            return self
        return Range(min(self.low, float(values.min())), max(self.high, float(values.max())))


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


@dataclass(frozen=True)
class QParams:
    """8-bit scale and zero point: real = (q - zero_point) * scale; the zero point's dtype is q's."""

    scale: np.ndarray  # float32, scalar or per channel
    zero_point: np.ndarray  # int8 or uint8, same shape

    @classmethod
    def for_range(cls, r: Range) -> "QParams":
        """Asymmetric uint8 over [low, high] widened to hold 0 exactly: onnxruntime's activation type.

        Its x86 build fuses a QDQ MatMul only with uint8 activations
        (microsoft/onnxruntime#7715; int8 ones only on ARM, #9961): int8
        Q/DQ pairs it converts itself, but not an int8 table read by a Gather.
        """
        low, high = min(r.low, 0.0), max(r.high, 0.0)
        scale = (high - low) / 255.0 or 1.0
        zero_point = int(np.clip(np.round(-low / scale), 0, 255))
        return cls(np.array(scale, np.float32), np.array(zero_point, np.uint8))

    def quantize(self, values: np.ndarray) -> np.ndarray:
        info = np.iinfo(self.zero_point.dtype)
        q = np.round(np.asarray(values, np.float32) / self.scale) + self.zero_point.astype(np.int32)
        return np.clip(q, info.min, info.max).astype(self.zero_point.dtype)


def symmetric_int8(w: np.ndarray, axis: int | None) -> tuple[np.ndarray, QParams]:
    """Weights -> (int8 in -127..127, per-tensor or per-`axis` scale, zero point 0)."""
    w = np.asarray(w, np.float32)
    if axis is None:
        peak = np.array(np.abs(w).max() if w.size else 0.0, np.float32)
    else:
        peak = np.abs(w).max(axis=tuple(i for i in range(w.ndim) if i != axis))
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    shaped = scale if axis is None else np.expand_dims(scale, tuple(i for i in range(w.ndim) if i != axis))
    q = np.clip(np.round(w / shaped), -127, 127).astype(np.int8)
    return q, QParams(scale, np.zeros(scale.shape, np.int8))


# -- 3-5. rewrites ------------------------------------------------------------------------------------
def _consumers(graph: onnx.GraphProto, tensor: str) -> list[onnx.NodeProto]:
    return [n for n in graph.node if tensor in n.input]


def _unique(graph: onnx.GraphProto, name: str) -> str:
    taken = {i.name for i in graph.initializer} | {o for n in graph.node for o in n.output} | \
            {i.name for i in graph.input}
    out, k = name, 1
    while out in taken:
        out, k = f"{name}_{k}", k + 1
    return out


def quantize_weights(graph: onnx.GraphProto, axes: dict[str, int | None], tables: tuple[str, ...] = ()
                     ) -> onnx.GraphProto:
    """Each float initializer named -> an 8-bit initializer ``<name>_quantized`` + DequantizeLinear.

    ``axes``: symmetric int8 (zero point 0), per tensor (None) or per slice of
    an axis. ``tables``: asymmetric uint8 over the table's range, per tensor,
    for a table whose gathered rows are a MatMul's activation input (see
    QParams.for_range). The DequantizeLinear writes the old name, so readers
    are unchanged.
    """
    inits = {i.name: i for i in graph.initializer}
    missing = sorted((set(axes) | set(tables)) - set(inits))
    if missing:
        raise ConversionError(f"graph {graph.name!r}: no initializers {missing} to quantize")
    nodes = []
    for name in [*axes, *tables]:
        init = inits[name]
        if init.data_type != TensorProto.FLOAT:
            raise ConversionError(f"graph {graph.name!r}: initializer {name!r} is not float32")
        w = numpy_helper.to_array(init)
        axis = axes.get(name)
        if name in tables:
            params = QParams.for_range(Range(float(w.min()), float(w.max())) if w.size else Range(0.0, 0.0))
            q = params.quantize(w)
        else:
            q, params = symmetric_int8(w, axis)
        graph.initializer.remove(init)
        graph.initializer.extend([numpy_helper.from_array(q, f"{name}_quantized"),
                                  numpy_helper.from_array(params.scale, f"{name}_scale"),
                                  numpy_helper.from_array(params.zero_point, f"{name}_zero_point")])
        attrs = {} if axis is None else {"axis": axis}
        nodes.append(helper.make_node("DequantizeLinear", [f"{name}_quantized", f"{name}_scale", f"{name}_zero_point"],
                                      [name], name=f"{name}_dequantize", **attrs))
    existing = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + existing)
    return graph


def insert_qdq(graph: onnx.GraphProto, tensor: str, params: QParams, into: tuple[str, ...] | None = None
               ) -> onnx.GraphProto:
    """QuantizeLinear -> DequantizeLinear on ``tensor``, read by its consumers of op types ``into`` (all if None).

    A graph output keeps the float value; only the rewired readers see the
    quantized one.
    """
    readers = [n for n in _consumers(graph, tensor) if into is None or n.op_type in into]
    if not readers:
        raise ConversionError(f"graph {graph.name!r}: no {'/'.join(into or ('node',))} reads {tensor!r}")
    scale, zero = _unique(graph, f"{tensor}_scale"), _unique(graph, f"{tensor}_zero_point")
    q, dq = _unique(graph, f"{tensor}_quantized"), _unique(graph, f"{tensor}_dequantized")
    graph.initializer.extend([numpy_helper.from_array(params.scale, scale),
                              numpy_helper.from_array(params.zero_point, zero)])
    for node in readers:
        for i, name in enumerate(node.input):
            if name == tensor:
                node.input[i] = dq
    pair = [helper.make_node("QuantizeLinear", [tensor, scale, zero], [q], name=f"{tensor}_quantize"),
            helper.make_node("DequantizeLinear", [q, scale, zero], [dq], name=f"{tensor}_dequantize")]
    # Insert right after the producer (or first, for a graph input) to keep the nodes in order.
    nodes = list(graph.node)
    at = next((k + 1 for k, n in enumerate(nodes) if tensor in n.output), 0)
    del graph.node[:]
    graph.node.extend(nodes[:at] + pair + nodes[at:])
    return graph


def gather_int8_rows(graph: onnx.GraphProto) -> onnx.GraphProto:
    """DequantizeLinear(8-bit table, per-tensor) -> Gather  becomes  Gather(8-bit table) -> DequantizeLinear.

    Gather only picks rows and a per-tensor scale is the same for every row,
    so the result is bit-exact; a run dequantizes the rows it reads, not the
    whole table.
    """
    inits = {i.name: i for i in graph.initializer}
    for dq in [n for n in graph.node if n.op_type == "DequantizeLinear"]:
        if dq.input[0] not in inits or inits[dq.input[0]].data_type not in (TensorProto.INT8, TensorProto.UINT8):
            continue
        readers = _consumers(graph, dq.output[0])
        if not readers or any(n.op_type != "Gather" or n.input[0] != dq.output[0] for n in readers):
            continue
        scale = inits.get(dq.input[1])
        if scale is None or numpy_helper.to_array(scale).size != 1:
            continue  # a per-row or per-column scale would have to be gathered too
        nodes = list(graph.node)
        nodes.remove(dq)
        for gather in readers:
            out = gather.output[0]
            gather.input[0] = dq.input[0]
            gather.output[0] = _unique(graph, f"{out}_quantized")
            after = helper.make_node("DequantizeLinear", [gather.output[0], *dq.input[1:]], [out],
                                     name=f"{gather.name}_dequantize")
            nodes.insert(nodes.index(gather) + 1, after)
        del graph.node[:]
        graph.node.extend(nodes)
    return graph


def _all_graphs(graph: onnx.GraphProto, path: str = ""):
    yield path, graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _all_graphs(attr.g, f"{path}{node.name}/")


def check_matmuls_quantized(model: onnx.ModelProto) -> None:
    """Raise ConversionError if a MatMul (in any graph) reads a tensor that no DequantizeLinear wrote."""
    float_matmuls = []
    for path, graph in _all_graphs(model.graph):
        dequantized = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
        for node in graph.node:
            if node.op_type in ("MatMul", "Gemm") and not all(i in dequantized for i in node.input[:2]):
                float_matmuls.append(path + node.name)
    if float_matmuls:
        raise ConversionError(f"int8 graph has float matrix products left: {float_matmuls}")


# -- the whole int8 graph -----------------------------------------------------------------------------
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
    quantize_weights(body, {"recurrent_kernel": 1})
    insert_qdq(body, H_PREV, QParams.for_range(ranges[H_PREV]), into=matmul)
    insert_qdq(body, RECURRENT_PRODUCT, QParams.for_range(ranges[RECURRENT_PRODUCT]))
    main = model.graph
    names = {i.name for i in main.initializer}
    weights: dict[str, int | None] = {"dense_kernel": 1}  # matrices per output column
    if NGRAM_TABLE in names:
        weights[NGRAM_TABLE] = None
    if "embedding" in names:
        quantize_weights(main, {"kernel": 1, **weights}, tables=("embedding",))
    else:  # one-hot input: the kernel is a table read by a Gather
        quantize_weights(main, {"kernel": None, **weights})
    insert_qdq(main, H_LAST, QParams.for_range(ranges[H_LAST]), into=matmul)
    insert_qdq(main, DENSE_PRODUCT, QParams.for_range(ranges[DENSE_PRODUCT]))
    if INPUT_PRODUCT in ranges:
        insert_qdq(main, INPUT_PRODUCT, QParams.for_range(ranges[INPUT_PRODUCT]))
    gather_int8_rows(main)
    check_matmuls_quantized(model)
    return model
