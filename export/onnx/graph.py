"""The one way every ONNX graph of sentilite is built: a graph builder and the pieces all precisions share.

Every file reads int32 ids (batch, T), T anything up to maxlen, as if
left-padded to maxlen, and writes one output: P(positive) (batch, 1) for a
model of two labels, or the softmax over N labels, ``probabilities``
(batch, N), in label order. What the files have in common is built here once:

- ``cell_start``: the window the cell reads (the last ``steps`` ids) and the
  state it starts from, the state the padding a short row leaves out would
  have reached (``Recurrence.pad_states``), so the runtime feeds a review's
  own length instead of maxlen steps;
- ``time_major``: the window as [time, batch];
- ``head``: the cell's Dense, plus the n-gram branch (``ngram_logit_nodes``),
  then the sigmoid (one logit) or the softmax (one logit per label).

Between start and head each precision writes its recurrence: a native
GRU/LSTM node (fp32.py) or a Scan of MatMuls (int8.py). Rewrites of a
finished graph (fp16.py, qdq.py) make their nodes with ``make_node`` too.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from sentilite.runtime.architecture import ModelConfig
from sentilite.runtime.recurrence import FINGERPRINT_MODULUS, NgramDictionary, trigram_modulus

from ..errors import ConversionError
from ..weights import ngram_dictionary

OPSET = 17
IR_VERSION = 8  # the lowest IR that carries opset 17: older runtimes load it too
INPUT_NAME, OUTPUT_NAME = "ids", "positive"
# The output of a model of three or more labels: the softmax over them, (batch, N). OUTPUT_NAME is the one of two.
PROBABILITIES_NAME = "probabilities"
INT64_MAX = np.iinfo(np.int64).max

# The recurrent state's inputs (LSTM uses both), each started from a pad-state table.
STATE_INPUTS = ("initial_h", "initial_c")
PAD_STATE_TABLES = tuple(f"pad_{state}" for state in STATE_INPUTS)
PAD_STATE_GATHERS = tuple(f"pad_{state}_gather" for state in STATE_INPUTS)
EMBEDDING_GATHER = "embedding_gather"
# The cell's last hidden state and its Dense product, the head's input and first step.
H_LAST, DENSE_PRODUCT = "h_last", "dense_product"

NGRAM_TABLE = "ngram_table"
NGRAM_GATHER = "ngram_gather"
NGRAM_DISPLACEMENTS = "ngram_displacements"
NGRAM_FINGERPRINTS = "ngram_fingerprints"
NGRAM_DISPLACEMENT_GATHER = "ngram_displacement_gather"
NGRAM_FINGERPRINT_GATHER = "ngram_fingerprint_gather"
# Float tables read by a Gather: stored in float16 by to_fp16, quantized by the 8-bit exporters.
TABLES = ("embedding", NGRAM_TABLE)


def output_name(outputs: int) -> str:
    """The file's output: ``positive`` for one logit (two labels), ``probabilities`` for one logit per label."""
    return OUTPUT_NAME if outputs == 1 else PROBABILITIES_NAME


def make_node(op: str, inputs: list[str], outputs: list[str] | str, *, name: str | None = None,
              **attrs) -> onnx.NodeProto:
    """One ONNX node, named after its first output unless ``name`` says otherwise."""
    outputs = [outputs] if isinstance(outputs, str) else list(outputs)
    return helper.make_node(op, inputs, outputs, name=outputs[0] if name is None else name, **attrs)


class GraphBuilder:
    """Nodes and initializers of one graph, in the order they are added.

    A constant is stored once, where it is first named: pieces that read the
    same one (``axis0``) name it again with its value, and another value for
    a name is refused. ``node_names`` maps an output to the name of the node
    that writes it, for a file whose nodes are named after what they do.
    """

    def __init__(self, node_names: Mapping[str, str] | None = None):
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._constants: dict[str, np.ndarray] = {}
        self._node_names = dict(node_names or {})

    def const(self, name: str, value) -> str:
        value = np.asarray(value)
        known = self._constants.get(name)
        if known is None:
            self._constants[name] = value
            self.initializers.append(numpy_helper.from_array(value, name))
        elif known.dtype != value.dtype or known.shape != value.shape or known.tobytes() != value.tobytes():
            raise ConversionError(f"constant {name!r} is already {known.dtype}{list(known.shape)} with other values")
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str] | str, *, name: str | None = None,
             **attrs) -> list[str]:
        outputs = [outputs] if isinstance(outputs, str) else list(outputs)
        if name is None:
            name = self._node_names.get(outputs[0], outputs[0])
        self.nodes.append(make_node(op, inputs, outputs, name=name, **attrs))
        return outputs

    def graph(self, name: str, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto]
              ) -> onnx.GraphProto:
        return helper.make_graph(self.nodes, name, inputs, outputs, initializer=self.initializers)

    def model(self, name: str, outputs: int = 1) -> onnx.ModelProto:
        """The graph as a sentilite file: int32 ids (batch, time) in, opset OPSET.

        Out: P(positive) (batch, 1) for ``outputs`` 1, else ``probabilities`` (batch, outputs).
        """
        graph = self.graph(name, [helper.make_tensor_value_info(INPUT_NAME, TensorProto.INT32, ["batch", "time"])],
                           [helper.make_tensor_value_info(output_name(outputs), TensorProto.FLOAT,
                                                          ["batch", outputs])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="sentilite")
        model.ir_version = IR_VERSION
        return model


def cell_start(b: GraphBuilder, steps: int, maxlen: int, pad_states: tuple[np.ndarray, ...], *,
               leading_axis: bool) -> tuple[str, list[str]]:
    """(the ids the cell reads, its initial states), for rows of any length T up to maxlen.

    The cell reads the last ``steps`` ids of a row. The padding a row
    shorter than ``steps`` leaves out is replaced by its effect: the state
    starts at ``pad_states[min(max(steps - T, 0), K)]``, the state K padding ids
    would have reached (``Recurrence.pad_states``); padding beyond K steps
    changes nothing. ``leading_axis``: states of (num_directions=1, batch,
    units), as the native recurrent nodes take them; else (batch, units).
    """
    units = pad_states[0].shape[1]
    for const, value in (("axis0", 0), ("axis1", 1), ("steps", steps), ("units", units),
                         ("last_pad_state", len(pad_states[0]) - 1)):
        b.const(const, np.array([value], np.int64))
    window = INPUT_NAME
    if steps < maxlen:  # the cell reads the last `steps` ids of the row
        b.const("window_start", np.array([-steps], np.int64))
        b.const("to_end", np.array([INT64_MAX], np.int64))
        window = b.node("Slice", [INPUT_NAME, "window_start", "to_end", "axis1"], "window")[0]
    b.node("Shape", [window], "window_shape")
    b.node("Gather", ["window_shape", "axis0"], "batch", axis=0)
    b.node("Gather", ["window_shape", "axis1"], "time", axis=0)
    b.node("Sub", ["steps", "time"], "pad_count")
    b.node("Max", ["pad_count", "axis0"], "pad_nonneg")
    b.node("Min", ["pad_nonneg", "last_pad_state"], "pad_index")
    b.node("Concat", ["axis1", "batch", "units"] if leading_axis else ["batch", "units"], "state_shape", axis=0)
    states = []
    for state, table, gather in zip(STATE_INPUTS, pad_states, PAD_STATE_GATHERS):
        b.const(f"pad_{state}", table.astype(np.float32))
        if leading_axis:
            row = b.node("Gather", [f"pad_{state}", "pad_index"], f"{state}_row", axis=0, name=gather)[0]
            row = b.node("Unsqueeze", [row, "axis0"], f"{state}_row3")[0]
        else:
            row = b.node("Gather", [f"pad_{state}", "pad_index"], gather, axis=0)[0]  # (1, units)
        states += b.node("Expand", [row, "state_shape"], state)
    return window, states


def time_major(b: GraphBuilder, window: str) -> str:
    """The window as [time, batch]: onnxruntime's CPU recurrent kernels and its Scan read time on axis 0.

    Transposing the ids costs less than transposing the floats they become.
    """
    return b.node("Transpose", [window], "ids_tb", perm=[1, 0])[0]


def head(b: GraphBuilder, h_last: str, ctx, product: str = DENSE_PRODUCT) -> str:
    """The output from the cell's last state: Dense, plus the n-gram branch when the model has one, then Sigmoid.

    A model of three or more labels has a logit per label (a Dense of N
    units, an n-gram table of N columns) and ends in a Softmax over them.
    """
    weights, outputs = ctx.weights, ctx.model.outputs
    check_head_shapes(weights, ctx.model)
    b.const("dense_kernel", np.asarray(weights["dense_kernel"], np.float32))
    b.const("dense_bias", np.asarray(weights["dense_bias"], np.float32))
    b.node("MatMul", [h_last, "dense_kernel"], product)
    logit = b.node("Add", [product, "dense_bias"], "cell_logit")[0]
    if ctx.model.ngram_buckets:
        ngram = ngram_logit_nodes(b, weights["ngram_weights"], ctx.vocab_size, ctx.model.ngram_buckets,
                                  ngram_dictionary(ctx.model, weights))
        logit = b.node("Add", [logit, ngram], "logit")[0]
    if outputs == 1:
        return b.node("Sigmoid", [logit], OUTPUT_NAME, name="sigmoid")[0]
    return b.node("Softmax", [logit], PROBABILITIES_NAME, name="softmax", axis=1)[0]


def check_head_shapes(weights: Mapping[str, np.ndarray], model: ModelConfig) -> None:
    """Refuse a Dense or n-gram table whose logits are not the model's ``outputs`` (one, or one per label)."""
    outputs = model.outputs
    expected = {"dense_kernel": (model.units, outputs), "dense_bias": (outputs,)}
    if model.ngram_buckets:
        rows = np.shape(weights["ngram_weights"])[0]
        expected["ngram_weights"] = (rows,) if outputs == 1 else (rows, outputs)
    for name, shape in expected.items():
        if tuple(np.shape(weights[name])) != shape:
            raise ConversionError(f"weights {name!r} are {list(np.shape(weights[name]))}, expected {list(shape)} for "
                                  f"a model of {model.classes} labels")


def ngram_logit_nodes(b: GraphBuilder, table: np.ndarray, vocab_size: int, buckets: int,
                      dictionary: NgramDictionary | None = None) -> str:
    """Nodes computing ``ngram_logit`` from the whole row of INPUT_NAME: recurrence.ngram_logit.

    A table of one weight per row (rows,) gives (batch, 1); one of a weight
    per label (rows, N) gives (batch, N): each row's gathered weights are
    summed per label and divided by the row's sqrt(count). Every code stays
    below 2**31 (recurrence.ngram_keys), so it is computed in int32 like
    every other format does. A dictionary's displacements and
    fingerprints are stored as int16 and uint8 and cast up after the gather.
    """
    table = np.asarray(table, np.float32).copy()
    if table.ndim not in (1, 2):
        raise ConversionError(f"the n-gram table must be (rows,) or (rows, labels), not {list(table.shape)}")
    table[0] = 0.0
    b.const(NGRAM_TABLE, table)
    for const, value in (("ng_zero", np.array(0, np.int32)), ("ng_vocab", np.array(vocab_size, np.int32)),
                         ("ng_buckets", np.array(buckets, np.int32)), ("ng_start", np.array([0], np.int64)),
                         ("ng_one", np.array([1], np.int64)), ("ng_minus_one", np.array([-1], np.int64)),
                         ("ng_end", np.array([INT64_MAX], np.int64)), ("ng_min_count", np.array(1.0, np.float32))):
        b.const(const, value)
    node = b.node
    node("Equal", [INPUT_NAME, "ng_zero"], "ng_is_pad")
    node("Not", ["ng_is_pad"], "ng_real")
    node("Slice", [INPUT_NAME, "ng_start", "ng_minus_one", "ng_one"], "ng_prev")
    node("Slice", [INPUT_NAME, "ng_one", "ng_end", "ng_one"], "ng_cur")
    node("Slice", ["ng_real", "ng_start", "ng_minus_one", "ng_one"], "ng_prev_real")
    node("Slice", ["ng_real", "ng_one", "ng_end", "ng_one"], "ng_cur_real")
    node("And", ["ng_prev_real", "ng_cur_real"], "ng_both")
    node("Mul", ["ng_prev", "ng_vocab"], "ng_prev_scaled")
    node("Add", ["ng_prev_scaled", "ng_cur"], "ng_code")
    if dictionary is None:
        node("Mod", ["ng_code", "ng_buckets"], "ng_bucket")
        node("Add", ["ng_bucket", "ng_vocab"], "ng_bucket_row")
        node("Where", ["ng_both", "ng_bucket_row", "ng_zero"], "ng_longer_row")
        valid = "ng_both"
    else:
        b.const(NGRAM_DISPLACEMENTS, dictionary.displacements.astype(np.int16))
        b.const(NGRAM_FINGERPRINTS, dictionary.fingerprints.astype(np.uint8))
        for const, value in (("ng_trigram_modulus", trigram_modulus(vocab_size)),
                             ("ng_trigram_offset", vocab_size * vocab_size), ("ng_groups", dictionary.groups),
                             ("ng_fingerprint_modulus", FINGERPRINT_MODULUS)):
            b.const(const, np.array(value, np.int32))
        b.const("ng_two", np.array([2], np.int64))
        # trigram (a, b, c): V**2 + ((a * V + b) % P) * V + c, valid when all three ids are real
        node("Slice", ["ng_code", "ng_start", "ng_minus_one", "ng_one"], "ng_pair_head")
        node("Mod", ["ng_pair_head", "ng_trigram_modulus"], "ng_pair_mod")
        node("Mul", ["ng_pair_mod", "ng_vocab"], "ng_pair_scaled")
        node("Slice", [INPUT_NAME, "ng_two", "ng_end", "ng_one"], "ng_third")
        node("Add", ["ng_pair_scaled", "ng_third"], "ng_triple_low")
        node("Add", ["ng_triple_low", "ng_trigram_offset"], "ng_triple")
        node("Slice", ["ng_both", "ng_start", "ng_minus_one", "ng_one"], "ng_both_head")
        node("Slice", ["ng_real", "ng_two", "ng_end", "ng_one"], "ng_third_real")
        node("And", ["ng_both_head", "ng_third_real"], "ng_three")
        node("Concat", ["ng_code", "ng_triple"], "ng_keys", axis=1)
        node("Concat", ["ng_both", "ng_three"], "ng_valid", axis=1)
        # slot = (key % slots + displacements[key % groups]) % slots, read if the fingerprint matches
        node("Mod", ["ng_keys", "ng_groups"], "ng_group")
        node("Gather", [NGRAM_DISPLACEMENTS, "ng_group"], "ng_displacement16", axis=0, name=NGRAM_DISPLACEMENT_GATHER)
        node("Cast", ["ng_displacement16"], "ng_displacement", to=TensorProto.INT32)
        node("Mod", ["ng_keys", "ng_buckets"], "ng_base")
        node("Add", ["ng_base", "ng_displacement"], "ng_displaced")
        node("Mod", ["ng_displaced", "ng_buckets"], "ng_slot")
        node("Gather", [NGRAM_FINGERPRINTS, "ng_slot"], "ng_stored8", axis=0, name=NGRAM_FINGERPRINT_GATHER)
        node("Cast", ["ng_stored8"], "ng_stored", to=TensorProto.INT32)
        node("Mod", ["ng_keys", "ng_fingerprint_modulus"], "ng_fingerprint")
        node("Equal", ["ng_stored", "ng_fingerprint"], "ng_match")
        node("And", ["ng_valid", "ng_match"], "ng_found")
        node("Add", ["ng_slot", "ng_vocab"], "ng_slot_row")
        node("Where", ["ng_found", "ng_slot_row", "ng_zero"], "ng_longer_row")
        valid = "ng_valid"
    node("Concat", [INPUT_NAME, "ng_longer_row"], "ng_rows", axis=1)
    node("Gather", [NGRAM_TABLE, "ng_rows"], "ng_weights", axis=0, name=NGRAM_GATHER)
    # (batch, 1) from a (rows,) table; (batch, N) from a (rows, N) one, divided by the (batch, 1) norm per label
    node("ReduceSum", ["ng_weights", "ng_one"], "ng_total", keepdims=1 if table.ndim == 1 else 0)
    node("Cast", ["ng_real"], "ng_real_f", to=TensorProto.FLOAT)
    node("Cast", [valid], "ng_longer_f", to=TensorProto.FLOAT)
    node("ReduceSum", ["ng_real_f", "ng_one"], "ng_unigrams", keepdims=1)
    node("ReduceSum", ["ng_longer_f", "ng_one"], "ng_longer", keepdims=1)
    node("Add", ["ng_unigrams", "ng_longer"], "ng_count")
    node("Max", ["ng_count", "ng_min_count"], "ng_count_pos")
    node("Sqrt", ["ng_count_pos"], "ng_norm")
    return node("Div", ["ng_total", "ng_norm"], "ngram_logit")[0]
