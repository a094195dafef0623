"""ONNX export: the graph is written from the Keras weights with native ONNX ops.

ids (batch, T) -> last `window` ids -> Transpose -> Gather(embedding) -> RNN-as-GRU | LSTM | GRU
-> last hidden state -> MatMul + Add, plus the n-gram branch (Gather of
unigram and hashed-bigram rows, ReduceSum, / sqrt(count)) over the whole
row -> Sigmoid. T is anything up to maxlen: the recurrent state starts where
the left-out padding would have taken it, so the runtime feeds a review's
own length instead of maxlen steps (see build_fp32).

tf2onnx does not read Keras 3 models
(onnx/tensorflow-onnx#2329) and, through a tf.function, turns SimpleRNN and
GRU into `Loop` nodes that are 7-28x slower and that onnxruntime's quantizer
cannot handle (`Invalid model with unknown initializers/tensors`, see
microsoft/onnxruntime#18681); the native recurrent ops avoid both. tf2onnx
still converts the Keras model for a reference check (``reference.py``).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from sentilite.runtime.recurrence import FINGERPRINT_MODULUS, NgramDictionary, Recurrence, trigram_modulus
from sentilite.shared.files import atomic_write_bytes
from sentilite.shared.seal import seal

from .weights import ngram_dictionary

OPSET = 17
IR_VERSION = 8  # the lowest IR that carries opset 17: older runtimes load it too
INPUT_NAME, OUTPUT_NAME = "ids", "positive"
_ONNX_OP = {"rnn": "GRU", "lstm": "LSTM", "gru": "GRU"}  # rnn: see _simple_rnn_as_gru
# The recurrent node's optional initial-state inputs (LSTM uses both), each fed from a pad-state table.
_STATE_INPUTS = ("initial_h", "initial_c")
# Keras LSTM gates are i, f, c, o; ONNX wants i, o, f, c.
_LSTM_ORDER = (0, 3, 1, 2)


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
    """Rows of any length T <= maxlen, read as if left-padded to maxlen.

    The padding a shorter row leaves out is replaced by its effect: the
    recurrent state starts at ``pad_state[min(steps - T, K)]``, the state K
    padding ids would have reached (``Recurrence.pad_states``); the n-gram
    branch ignores padding anyway.
    """
    cell, weights = ctx.model.cell, ctx.weights
    steps = ctx.model.steps(ctx.maxlen)
    w, r, b, units = onnx_recurrent_weights(cell, weights)
    embedding = weights.get("embedding")
    if embedding is None:  # one-hot input: the table is the identity
        embedding = np.eye(weights["kernel"].shape[0], dtype=np.float32)
    recurrence = Recurrence(cell, weights["kernel"], weights["recurrent_kernel"], weights["bias"], weights.get("embedding"))
    pad_states = recurrence.pad_states(steps)
    op = _ONNX_OP[cell]
    stored = "_h" if cell == "rnn" else ""  # rnn: the h gate only, see _simple_rnn_as_gru
    initializers = [
        numpy_helper.from_array(embedding.astype(np.float32), "embedding"),
        numpy_helper.from_array(w, "W" + stored),
        numpy_helper.from_array(r, "R" + stored),
        numpy_helper.from_array(b, "B"),
        numpy_helper.from_array(weights["dense_kernel"].astype(np.float32), "dense_kernel"),
        numpy_helper.from_array(weights["dense_bias"].astype(np.float32), "dense_bias"),
        numpy_helper.from_array(np.array([0], np.int64), "axis0"),
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
        numpy_helper.from_array(np.array([steps], np.int64), "steps"),
        numpy_helper.from_array(np.array([len(pad_states[0]) - 1], np.int64), "last_pad_state"),
        numpy_helper.from_array(np.array([units], np.int64), "units"),
    ]
    nodes = []
    window = INPUT_NAME
    if steps < ctx.maxlen:  # the cell reads the last `steps` ids of the row
        initializers += [numpy_helper.from_array(np.array([-steps], np.int64), "window_start"),
                         numpy_helper.from_array(np.array([_INT64_MAX], np.int64), "to_end")]
        nodes.append(helper.make_node("Slice", [INPUT_NAME, "window_start", "to_end", "axis1"], ["window"],
                                      name="window"))
        window = "window"
    state_names = list(_STATE_INPUTS[: len(pad_states)])
    nodes += [
        helper.make_node("Shape", [window], ["window_shape"], name="window_shape"),
        helper.make_node("Gather", ["window_shape", "axis0"], ["batch"], axis=0, name="batch_size"),
        helper.make_node("Gather", ["window_shape", "axis1"], ["time"], axis=0, name="time_steps"),
        helper.make_node("Sub", ["steps", "time"], ["pad_count"], name="pad_count"),
        helper.make_node("Max", ["pad_count", "axis0"], ["pad_nonneg"], name="pad_nonneg"),
        helper.make_node("Min", ["pad_nonneg", "last_pad_state"], ["pad_index"], name="pad_index"),
        helper.make_node("Concat", ["axis1", "batch", "units"], ["state_shape"], axis=0, name="state_shape"),
    ]
    for state, table in zip(state_names, pad_states):
        initializers.append(numpy_helper.from_array(table.astype(np.float32), f"pad_{state}"))
        nodes += [
            helper.make_node("Gather", [f"pad_{state}", "pad_index"], [f"{state}_row"], axis=0, name=f"pad_{state}_gather"),
            helper.make_node("Unsqueeze", [f"{state}_row", "axis0"], [f"{state}_row3"], name=f"{state}_unsqueeze"),
            helper.make_node("Expand", [f"{state}_row3", "state_shape"], [state], name=f"{state}_expand"),
        ]
    if stored:
        for name_, cols in (("W", w.shape[2]), ("R", r.shape[2])):
            initializers.append(numpy_helper.from_array(np.array([1, 2 * units, cols], np.int64), f"{name_}_zero_shape"))
            nodes += [
                helper.make_node("ConstantOfShape", [f"{name_}_zero_shape"], [f"{name_}_zero"], name=f"{name_}_zero",
                                 value=numpy_helper.from_array(np.zeros(1, np.float32))),
                helper.make_node("Concat", [f"{name_}_zero", name_ + stored], [name_], axis=1, name=f"{name_}_gates"),
            ]
    attrs = {"hidden_size": units, "direction": "forward"}
    if op == "GRU":
        attrs["linear_before_reset"] = 1
    nodes += [
        # onnxruntime's CPU recurrent kernels want [time, batch, feature]; transpose the ints, not the floats.
        helper.make_node("Transpose", [window], ["ids_tb"], perm=[1, 0], name="ids_transpose"),
        helper.make_node("Gather", ["embedding", "ids_tb"], ["embedded"], axis=0, name="embedding_gather"),
        helper.make_node(op, ["embedded", "W", "R", "B", ""] + state_names, ["", "h_last_dir"], name=cell, **attrs),
        helper.make_node("Squeeze", ["h_last_dir", "axis0"], ["h_last"], name="squeeze_direction"),
        helper.make_node("MatMul", ["h_last", "dense_kernel"], ["logit_mm"], name="dense_matmul"),
        helper.make_node("Add", ["logit_mm", "dense_bias"], ["cell_logit"], name="dense_add"),
    ]
    logit = "cell_logit"
    if ctx.model.ngram_buckets:
        ngram_inits, ngram_nodes = ngram_branch(weights["ngram_weights"], ctx.vocab_size, ctx.model.ngram_buckets,
                                                ngram_dictionary(ctx.model, weights))
        initializers += ngram_inits
        nodes += ngram_nodes + [helper.make_node("Add", ["cell_logit", "ngram_logit"], ["logit"], name="logit")]
        logit = "logit"
    nodes.append(helper.make_node("Sigmoid", [logit], [OUTPUT_NAME], name="sigmoid"))
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.INT32, ["batch", "time"])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", 1])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="sentilite")
    model.ir_version = IR_VERSION
    return model


_INT64_MAX = np.iinfo(np.int64).max


def ngram_branch(table: np.ndarray, vocab_size: int, buckets: int, dictionary: NgramDictionary | None = None):
    """(initializers, nodes) computing ``ngram_logit`` (batch, 1) from INPUT_NAME: recurrence.ngram_logit.

    Every code stays below 2**31 (recurrence.ngram_keys), so it is computed
    in int32 like every other format does. A dictionary's displacements and
    fingerprints are stored as int16 and uint8 and cast up after the gather.
    """
    table = np.asarray(table, np.float32).copy()
    table[0] = 0.0
    inits = [
        numpy_helper.from_array(table, NGRAM_TABLE),
        numpy_helper.from_array(np.array(0, np.int32), "ng_zero"),
        numpy_helper.from_array(np.array(vocab_size, np.int32), "ng_vocab"),
        numpy_helper.from_array(np.array(buckets, np.int32), "ng_buckets"),
        numpy_helper.from_array(np.array([0], np.int64), "ng_start"),
        numpy_helper.from_array(np.array([1], np.int64), "ng_one"),
        numpy_helper.from_array(np.array([-1], np.int64), "ng_minus_one"),
        numpy_helper.from_array(np.array([_INT64_MAX], np.int64), "ng_end"),
        numpy_helper.from_array(np.array(1.0, np.float32), "ng_min_count"),
    ]
    make = helper.make_node
    nodes = [
        make("Equal", [INPUT_NAME, "ng_zero"], ["ng_is_pad"], name="ng_is_pad"),
        make("Not", ["ng_is_pad"], ["ng_real"], name="ng_real"),
        make("Slice", [INPUT_NAME, "ng_start", "ng_minus_one", "ng_one"], ["ng_prev"], name="ng_prev"),
        make("Slice", [INPUT_NAME, "ng_one", "ng_end", "ng_one"], ["ng_cur"], name="ng_cur"),
        make("Slice", ["ng_real", "ng_start", "ng_minus_one", "ng_one"], ["ng_prev_real"], name="ng_prev_real"),
        make("Slice", ["ng_real", "ng_one", "ng_end", "ng_one"], ["ng_cur_real"], name="ng_cur_real"),
        make("And", ["ng_prev_real", "ng_cur_real"], ["ng_both"], name="ng_both"),
        make("Mul", ["ng_prev", "ng_vocab"], ["ng_prev_scaled"], name="ng_prev_scaled"),
        make("Add", ["ng_prev_scaled", "ng_cur"], ["ng_code"], name="ng_code"),
    ]
    if dictionary is None:
        nodes += [
            make("Mod", ["ng_code", "ng_buckets"], ["ng_bucket"], name="ng_bucket"),
            make("Add", ["ng_bucket", "ng_vocab"], ["ng_bucket_row"], name="ng_bucket_row"),
            make("Where", ["ng_both", "ng_bucket_row", "ng_zero"], ["ng_longer_row"], name="ng_longer_row"),
        ]
        valid = "ng_both"
    else:
        inits += [
            numpy_helper.from_array(dictionary.displacements.astype(np.int16), NGRAM_DISPLACEMENTS),
            numpy_helper.from_array(dictionary.fingerprints.astype(np.uint8), NGRAM_FINGERPRINTS),
            numpy_helper.from_array(np.array(trigram_modulus(vocab_size), np.int32), "ng_trigram_modulus"),
            numpy_helper.from_array(np.array(vocab_size * vocab_size, np.int32), "ng_trigram_offset"),
            numpy_helper.from_array(np.array(dictionary.groups, np.int32), "ng_groups"),
            numpy_helper.from_array(np.array(FINGERPRINT_MODULUS, np.int32), "ng_fingerprint_modulus"),
            numpy_helper.from_array(np.array([2], np.int64), "ng_two"),
        ]
        nodes += [
            # trigram (a, b, c): V**2 + ((a * V + b) % P) * V + c, valid when all three ids are real
            make("Slice", ["ng_code", "ng_start", "ng_minus_one", "ng_one"], ["ng_pair_head"], name="ng_pair_head"),
            make("Mod", ["ng_pair_head", "ng_trigram_modulus"], ["ng_pair_mod"], name="ng_pair_mod"),
            make("Mul", ["ng_pair_mod", "ng_vocab"], ["ng_pair_scaled"], name="ng_pair_scaled"),
            make("Slice", [INPUT_NAME, "ng_two", "ng_end", "ng_one"], ["ng_third"], name="ng_third"),
            make("Add", ["ng_pair_scaled", "ng_third"], ["ng_triple_low"], name="ng_triple_low"),
            make("Add", ["ng_triple_low", "ng_trigram_offset"], ["ng_triple"], name="ng_triple"),
            make("Slice", ["ng_both", "ng_start", "ng_minus_one", "ng_one"], ["ng_both_head"], name="ng_both_head"),
            make("Slice", ["ng_real", "ng_two", "ng_end", "ng_one"], ["ng_third_real"], name="ng_third_real"),
            make("And", ["ng_both_head", "ng_third_real"], ["ng_three"], name="ng_three"),
            make("Concat", ["ng_code", "ng_triple"], ["ng_keys"], axis=1, name="ng_keys"),
            make("Concat", ["ng_both", "ng_three"], ["ng_valid"], axis=1, name="ng_valid"),
            # slot = (key % slots + displacements[key % groups]) % slots, read if the fingerprint matches
            make("Mod", ["ng_keys", "ng_groups"], ["ng_group"], name="ng_group"),
            make("Gather", [NGRAM_DISPLACEMENTS, "ng_group"], ["ng_displacement16"], axis=0,
                 name=NGRAM_DISPLACEMENT_GATHER),
            make("Cast", ["ng_displacement16"], ["ng_displacement"], to=TensorProto.INT32, name="ng_displacement"),
            make("Mod", ["ng_keys", "ng_buckets"], ["ng_base"], name="ng_base"),
            make("Add", ["ng_base", "ng_displacement"], ["ng_displaced"], name="ng_displaced"),
            make("Mod", ["ng_displaced", "ng_buckets"], ["ng_slot"], name="ng_slot"),
            make("Gather", [NGRAM_FINGERPRINTS, "ng_slot"], ["ng_stored8"], axis=0, name=NGRAM_FINGERPRINT_GATHER),
            make("Cast", ["ng_stored8"], ["ng_stored"], to=TensorProto.INT32, name="ng_stored"),
            make("Mod", ["ng_keys", "ng_fingerprint_modulus"], ["ng_fingerprint"], name="ng_fingerprint"),
            make("Equal", ["ng_stored", "ng_fingerprint"], ["ng_match"], name="ng_match"),
            make("And", ["ng_valid", "ng_match"], ["ng_found"], name="ng_found"),
            make("Add", ["ng_slot", "ng_vocab"], ["ng_slot_row"], name="ng_slot_row"),
            make("Where", ["ng_found", "ng_slot_row", "ng_zero"], ["ng_longer_row"], name="ng_longer_row"),
        ]
        valid = "ng_valid"
    nodes += [
        make("Concat", [INPUT_NAME, "ng_longer_row"], ["ng_rows"], axis=1, name="ng_rows"),
        make("Gather", [NGRAM_TABLE, "ng_rows"], ["ng_weights"], axis=0, name=NGRAM_GATHER),
        make("ReduceSum", ["ng_weights", "ng_one"], ["ng_total"], keepdims=1, name="ng_total"),
        make("Cast", ["ng_real"], ["ng_real_f"], to=TensorProto.FLOAT, name="ng_real_f"),
        make("Cast", [valid], ["ng_longer_f"], to=TensorProto.FLOAT, name="ng_longer_f"),
        make("ReduceSum", ["ng_real_f", "ng_one"], ["ng_unigrams"], keepdims=1, name="ng_unigrams"),
        make("ReduceSum", ["ng_longer_f", "ng_one"], ["ng_longer"], keepdims=1, name="ng_longer"),
        make("Add", ["ng_unigrams", "ng_longer"], ["ng_count"], name="ng_count"),
        make("Max", ["ng_count", "ng_min_count"], ["ng_count_pos"], name="ng_count_pos"),
        make("Sqrt", ["ng_count_pos"], ["ng_norm"], name="ng_norm"),
        make("Div", ["ng_total", "ng_norm"], ["ngram_logit"], name="ngram_logit"),
    ]
    return inits, nodes


NGRAM_TABLE = "ngram_table"
NGRAM_GATHER = "ngram_gather"
NGRAM_DISPLACEMENTS = "ngram_displacements"
NGRAM_FINGERPRINTS = "ngram_fingerprints"
NGRAM_DISPLACEMENT_GATHER = "ngram_displacement_gather"
NGRAM_FINGERPRINT_GATHER = "ngram_fingerprint_gather"
# Float tables read by a Gather: stored in float16 by to_fp16, quantized by the 8-bit exporters.
TABLES = ("embedding", NGRAM_TABLE)


def to_fp16(model_fp32: onnx.ModelProto, only: tuple[str, ...] | None = None) -> onnx.ModelProto:
    """Weights stored as float16, computed in float32 (all of them, or the initializers named in ``only``).

    onnxruntime's CPU provider has no float16 RNN/LSTM/GRU kernels, so the
    embedding is gathered in float16 and only the gathered rows are cast up;
    the small weights get a Cast each, which onnxruntime folds at load time;
    the tables (embedding, n-gram weights) are gathered in float16 and only
    the gathered rows are cast up.
    """
    model = onnx.ModelProto()
    model.CopyFrom(model_fp32)
    graph = model.graph
    initializers, casts = [], []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT or (only is not None and init.name not in only):
            initializers.append(init)
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name + "_fp16")
        initializers.append(half)
        if init.name not in TABLES:
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT, name=f"cast_{init.name}"))
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    nodes = []
    for node in graph.node:
        if node.op_type == "Gather" and node.input[0] in TABLES and (only is None or node.input[0] in only):
            node.input[0] = node.input[0] + "_fp16"
            out = node.output[0]
            node.output[0] = out + "_fp16"
            nodes += [node, helper.make_node("Cast", [node.output[0]], [out], to=TensorProto.FLOAT,
                                             name=f"cast_{node.name}")]
        else:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    return model


# The pad-state tables are tiny and start every row: they stay float (stored as float16 in 8-bit files).
_PAD_STATE_GATHERS = [f"pad_{state}_gather" for state in _STATE_INPUTS]
_PAD_STATE_TABLES = tuple(f"pad_{state}" for state in _STATE_INPUTS)
# A dictionary's integer tables are already 8 and 16 bits.
_DICTIONARY_GATHERS = [NGRAM_DISPLACEMENT_GATHER, NGRAM_FINGERPRINT_GATHER]


def _quantize(model_fp32: onnx.ModelProto) -> onnx.ModelProto:
    """dynamic-int8: onnxruntime's quantizer on the fp32 graph, which quantizes only its Gathers.

    onnxruntime has no quantized GRU/LSTM/RNN kernel, so the native cell stays
    float; the static int8 file (onnx_int8) rewrites the cell instead.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="sentilite-onnx-") as tmp:
        src, dst = os.path.join(tmp, "fp32.onnx"), os.path.join(tmp, "q.onnx")
        onnx.save_model(model_fp32, src)
        quantize_dynamic(src, dst, op_types_to_quantize=["Gather"], weight_type=QuantType.QInt8, per_channel=False,
                         nodes_to_exclude=_PAD_STATE_GATHERS + _DICTIONARY_GATHERS)
        return onnx.load(dst)


def set_metadata(model: onnx.ModelProto, metadata: dict[str, str]) -> onnx.ModelProto:
    existing = {prop.key: prop for prop in model.metadata_props}
    for key, value in metadata.items():
        if key in existing:
            existing[key].value = value
        else:
            model.metadata_props.add(key=key, value=value)
    return model


def export_onnx(ctx, precision: str, path: str | os.PathLike, *, metadata: dict[str, str]) -> Path:
    """Write one ONNX file (atomically) and return its path; raises if the checker refuses it."""
    model = build_fp32(ctx, ctx.name)
    if precision == "fp16":
        model = to_fp16(model)
    elif precision == "dynamic-int8":
        # The pad-state tables stay float (see _PAD_STATE_GATHERS) but are stored as
        # float16: in a small LSTM they would otherwise be ~10% of an 8-bit file.
        model = to_fp16(_quantize(model), only=_PAD_STATE_TABLES)
    elif precision == "int8":
        from .onnx_int8 import build_int8

        # Every matrix product on int8 weights, the recurrent one inside a Scan included (onnx_int8).
        model = to_fp16(build_int8(ctx, ctx.name), only=_PAD_STATE_TABLES)
    elif precision != "fp32":
        raise ValueError(f"unknown precision {precision!r}")
    set_metadata(model, metadata)
    onnx.checker.check_model(model, full_check=True)
    return atomic_write_bytes(path, seal(model.SerializeToString()))


def describe_onnx(path: str | os.PathLike) -> dict:
    """Operators, opset and which nodes run on quantized data, for the manifest.

    Subgraphs count too: a node of the int8 file's Scan body is listed as
    ``recurrence/<node>``. A node is quantized when it reads or writes 8-bit
    data (an int8/uint8 initializer, a QuantizeLinear, a Gather of 8-bit rows)
    or is a MatMul between DequantizeLinear outputs (the QDQ form that
    runtimes run as an integer matmul).
    """
    model = onnx.load(os.fspath(path))
    quantized, ops = set(), set()

    def walk(graph: onnx.GraphProto, prefix: str, outer_8bit: frozenset) -> None:
        eight_bit = set(outer_8bit) | {i.name for i in graph.initializer
                                       if i.data_type in (TensorProto.INT8, TensorProto.UINT8)}
        dequantized = set()
        for node in graph.node:
            ops.add((f"{node.domain}." if node.domain else "") + node.op_type)
            reads_8bit = any(i in eight_bit for i in node.input)
            qdq_matmul = node.op_type in ("MatMul", "Gemm") and all(i in dequantized for i in node.input[:2])
            if reads_8bit or qdq_matmul:
                quantized.add(f"{prefix}{node.name} ({node.op_type})")
            if node.op_type in ("QuantizeLinear", "DynamicQuantizeLinear") or \
                    (node.op_type == "Gather" and node.input[0] in eight_bit):
                eight_bit.add(node.output[0])
            if node.op_type == "DequantizeLinear":
                dequantized.add(node.output[0])
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    walk(attr.g, f"{prefix}{node.name}/", frozenset(eight_bit))

    walk(model.graph, "", frozenset())
    return {
        "ops": sorted(ops),
        "opset": {imp.domain or "ai.onnx": imp.version for imp in model.opset_import},
        "quantized_nodes": sorted(quantized),
    }
