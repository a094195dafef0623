"""ONNX graphs (export/onnx/): the shared builder pieces, each rewrite step on a tiny graph, then whole files.

The shared start, n-gram branch and head must compute what the numpy
runtime does; the float Scan graph must be the numpy model exactly; the int8
graph must run every matrix product on 8-bit data (as onnxruntime's
optimized graph shows: QLinearMatMul, the Scan body's included) and stay
within the rounding its calibrated scales allow.
"""
import ast
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from sentilite.export.errors import ConversionError
from sentilite.export.onnx import describe_onnx, export_onnx
from sentilite.export.onnx.fp16 import to_fp16
from sentilite.export.onnx.graph import GraphBuilder, cell_start, head, ngram_logit_nodes, time_major
from sentilite.export.onnx.int8 import (
    DENSE_PRODUCT, H_LAST, H_PREV, INPUT_PRODUCT, RECURRENT_PRODUCT, build_int8, build_scan_graph, calibrate, scan_body,
)
from sentilite.export.onnx.qdq import (
    MATMUL_WEIGHT_LEVELS, QParams, Range, check_matmuls_quantized, gather_int8_rows, insert_qdq, quantize_initializers,
)
from sentilite.export.quantization import symmetric_int8
from sentilite.export.registry import ExportContext
from sentilite.runtime.architecture import ModelConfig
from sentilite.runtime.model import run_batches
from sentilite.runtime.numpy_model import NumpySentimentModel
from sentilite.runtime.recurrence import ngram_keys, ngram_logit
from sentilite.train.ngrams import place_keys

ort = pytest.importorskip("onnxruntime")

CELLS = ("rnn", "lstm", "gru")
MAXLEN, VOCAB, BUCKETS = 48, 40, 61


# -- tiny models ----------------------------------------------------------------------------------------
def tiny_context(cell: str, input: str = "ids", window: int | None = 20, seed: int = 0,
                 calibration_ids: np.ndarray | None = None) -> ExportContext:
    """Random weights of trained-model size: gate pre-activations of a few units, logits of a few units."""
    config = ModelConfig(cell=cell, input=input, embedding_dim=8, units=6, window=window, ngram_buckets=BUCKETS)
    rng = np.random.default_rng(seed)
    gates, units = {"rnn": 1, "lstm": 4, "gru": 3}[cell] * config.units, config.units
    features = config.embedding_dim if input == "ids" else VOCAB
    weights = {
        "kernel": rng.normal(0, 0.4, (features, gates)),
        "recurrent_kernel": rng.normal(0, 0.3, (units, gates)),
        "bias": rng.normal(0, 0.1, (2, gates) if cell == "gru" else (gates,)),
        "dense_kernel": rng.normal(0, 0.8, (units, 1)),
        "dense_bias": rng.normal(0, 0.1, (1,)),
        "ngram_weights": rng.normal(0, 0.3, (VOCAB + BUCKETS,)),
    }
    if input == "ids":
        weights["embedding"] = rng.normal(0, 0.5, (VOCAB, config.embedding_dim))
    weights["ngram_weights"][0] = 0.0
    weights = {k: v.astype(np.float32) for k, v in weights.items()}
    return ExportContext(weights=weights, model=config, maxlen=MAXLEN, vocab_size=VOCAB, name="tiny",
                         calibration_ids=padded_rows(range(0, MAXLEN + 1, 2), seed=seed + 100)
                         if calibration_ids is None else calibration_ids,
                         tokenizer_json=b"{}", labels=("negative", "positive"))


def padded_rows(lengths, seed=1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lengths = list(lengths)
    ids = np.zeros((len(lengths), MAXLEN), np.int32)
    for row, n in enumerate(lengths):
        if n:
            ids[row, MAXLEN - n:] = rng.integers(1, VOCAB, n)
    return ids


ROWS = padded_rows([0, 1, 2, 5, 15, 16, 17, 20, 21, 33, 47, 48] * 2, seed=7)


def numpy_model(ctx: ExportContext) -> NumpySentimentModel:
    return NumpySentimentModel(ctx.model, ctx.weights, ctx.maxlen, ctx.vocab_size)


def session(model: onnx.ModelProto, optimized_path=None, optimize=True):
    """An onnxruntime session; ``optimize=False`` runs the graph as written (no fusions), to check its arithmetic."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3  # saving the optimized graph warns that it is machine-specific
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if optimized_path:
        options.optimized_model_filepath = str(optimized_path)
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


class _Backend:
    """The two things run_batches needs, so rows are cut exactly as the runtime cuts them."""

    variable_length = True

    def __init__(self, model):
        self.session = session(model)

    def run(self, ids):
        return self.session.run(None, {"ids": np.ascontiguousarray(ids, np.int32)})[0].reshape(-1)


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), 1e-12, 1 - 1e-12)
    return np.log(p) - np.log1p(-p)


def one_graph(nodes, inputs, outputs, initializers) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def floats(name, *shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


# -- the shared pieces (graph.py) ---------------------------------------------------------------------------
def _outputs_of(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    return session(model, optimize=False).run(None, feeds)


def test_graph_builder_stores_a_constant_once_and_names_nodes_after_their_output():
    b = GraphBuilder(node_names={"ids_f": "to_float"})
    assert b.const("one", np.array([1], np.int64)) == "one"
    b.const("one", np.array([1], np.int64))  # named again with its value: shared, not stored twice
    assert [i.name for i in b.initializers] == ["one"]
    with pytest.raises(ConversionError, match=r"constant 'one' is already int64\[1\]"):
        b.const("one", np.array([2], np.int64))
    with pytest.raises(ConversionError, match="constant 'one'"):
        b.const("one", np.array([1], np.int32))
    b.node("Cast", ["ids"], "ids_f", to=TensorProto.FLOAT)
    b.node("ReduceSum", ["ids_f", "one"], "total", keepdims=1)
    b.node("Sigmoid", ["total"], "positive", name="sigmoid")
    assert [n.name for n in b.nodes] == ["to_float", "total", "sigmoid"]
    model = b.model("tiny")
    onnx.checker.check_model(model, full_check=True)
    assert (model.ir_version, [(o.domain, o.version) for o in model.opset_import]) == (8, [("", 17)])
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.INT32
    ids = np.array([[0, 2], [4, 4]], np.int32)
    np.testing.assert_allclose(_outputs_of(model, {"ids": ids})[0].reshape(-1), 1 / (1 + np.exp(-np.array([2.0, 8.0]))),
                               rtol=1e-6)


@pytest.mark.parametrize("leading_axis", [True, False])
@pytest.mark.parametrize("steps", [5, 8])
def test_cell_start_reads_the_last_steps_ids_from_the_pad_state_of_the_left_out_padding(steps, leading_axis):
    maxlen, units = 8, 3
    # An LSTM's two tables, converged after K = 3 padding ids.
    pad_states = tuple(np.arange(4 * units, dtype=np.float32).reshape(4, units) + offset for offset in (0, 100))
    b = GraphBuilder()
    window, states = cell_start(b, steps, maxlen, pad_states, leading_axis=leading_axis)
    ids_tb = time_major(b, window)
    assert states == ["initial_h", "initial_c"]
    model = one_graph(b.nodes, [helper.make_tensor_value_info("ids", TensorProto.INT32, ["n", "t"])],
                      [helper.make_tensor_value_info(ids_tb, TensorProto.INT32, ["window", "n"])] +
                      [floats(s, *([1, "n", units] if leading_axis else ["n", units])) for s in states], b.initializers)
    onnx.checker.check_model(model, full_check=True)
    rng = np.random.default_rng(2)
    for width in range(1, maxlen + 1):
        ids = rng.integers(1, 9, (2, width)).astype(np.int32)
        got_ids, *got_states = _outputs_of(model, {"ids": ids})
        np.testing.assert_array_equal(got_ids, ids[:, -steps:].T)
        pad = min(max(steps - width, 0), 3)
        for got, table in zip(got_states, pad_states):
            expected = np.repeat(table[pad][None], 2, axis=0)
            np.testing.assert_array_equal(got, expected[None] if leading_axis else expected)


@pytest.mark.parametrize("lookup", ["hashed", "dictionary"])
def test_ngram_logit_nodes_are_the_runtime_ngram_logit(lookup):
    rng = np.random.default_rng(8)
    table = rng.normal(0, 1, (VOCAB + BUCKETS,)).astype(np.float32)  # row 0 is zeroed by the piece: padding
    dictionary = None
    if lookup == "dictionary":
        keys, valid = ngram_keys(ROWS, VOCAB)
        dictionary = place_keys(rng.permutation(np.unique(keys[valid]))[:40], BUCKETS)[0]
    b = GraphBuilder()
    out = ngram_logit_nodes(b, table, VOCAB, BUCKETS, dictionary)
    model = one_graph(b.nodes, [helper.make_tensor_value_info("ids", TensorProto.INT32, ["n", "t"])],
                      [floats(out, "n", 1)], b.initializers)
    onnx.checker.check_model(model, full_check=True)
    zeroed = table.copy()
    zeroed[0] = 0.0
    for rows in (ROWS, ROWS[:, -17:]):
        got = _outputs_of(model, {"ids": rows})[0].reshape(-1)
        np.testing.assert_allclose(got, ngram_logit(rows, zeroed, VOCAB, BUCKETS, dictionary), atol=2e-6)


@pytest.mark.parametrize("ngrams", [True, False])
def test_head_is_the_dense_logit_plus_the_ngram_logit_through_a_sigmoid(ngrams):
    ctx = tiny_context("gru")
    if not ngrams:
        ctx = ExportContext(**{**ctx.__dict__, "model": ModelConfig(cell="gru", embedding_dim=8, units=6, window=20)})
    b = GraphBuilder()
    assert head(b, "h", ctx) == "positive"
    assert (DENSE_PRODUCT in {n.name for n in b.nodes}) and (("ngram_logit" in {n.name for n in b.nodes}) == ngrams)
    inputs = [helper.make_tensor_value_info("ids", TensorProto.INT32, ["n", "t"]), floats("h", "n", 6)]
    model = one_graph(b.nodes, inputs, [floats("positive", "n", 1)], b.initializers)
    h = np.random.default_rng(9).normal(0, 1, (len(ROWS), 6)).astype(np.float32)
    w = ctx.weights
    logit = (h @ w["dense_kernel"] + w["dense_bias"]).reshape(-1)
    if ngrams:
        logit = logit + ngram_logit(ROWS, w["ngram_weights"], VOCAB, BUCKETS)
    got = _outputs_of(model, {"ids": ROWS, "h": h})[0].reshape(-1)
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-logit)), atol=1e-6)


# -- 1. the float Scan graph ----------------------------------------------------------------------------
@pytest.mark.parametrize("input", ["ids", "onehot"])
@pytest.mark.parametrize("cell", CELLS)
def test_scan_graph_is_the_numpy_model_on_whole_and_cut_rows(cell, input):
    ctx = tiny_context(cell, input)
    model = build_scan_graph(ctx)
    onnx.checker.check_model(model, full_check=True)
    expected = numpy_model(ctx).predict_positive(ROWS)
    backend = _Backend(model)
    assert np.abs(backend.run(ROWS) - expected).max() < 1e-5
    assert np.abs(run_batches(backend, ROWS, 5) - expected).max() < 1e-5


def test_scan_graph_reads_all_ids_without_a_window():
    ctx = tiny_context("gru", window=None)
    expected = numpy_model(ctx).predict_positive(ROWS)
    assert np.abs(run_batches(_Backend(build_scan_graph(ctx)), ROWS, 7) - expected).max() < 1e-5


# -- 2. calibration ---------------------------------------------------------------------------------------
def test_calibrated_ranges_hold_zero_and_bound_the_states():
    ranges = calibrate(tiny_context("lstm"))
    assert set(ranges) == {INPUT_PRODUCT, H_PREV, RECURRENT_PRODUCT, H_LAST, DENSE_PRODUCT}
    for r in ranges.values():
        assert r.low <= 0.0 <= r.high and r.high > r.low
    assert -1.0 <= ranges[H_PREV].low and ranges[H_PREV].high <= 1.0  # o * tanh(c)


def test_calibration_of_a_one_hot_model_has_no_input_product():
    assert INPUT_PRODUCT not in calibrate(tiny_context("rnn", "onehot"))


def test_calibration_without_rows_is_refused():
    ctx = tiny_context("gru")
    empty = ExportContext(**{**ctx.__dict__, "calibration_ids": np.zeros((0, MAXLEN), np.int32)})
    with pytest.raises(ConversionError, match="calibration"):
        calibrate(empty)


def test_qparams_hold_zero_exactly_and_cover_the_range():
    params = QParams.for_range(Range(-0.3, 2.0))
    assert params.zero_point.dtype == np.uint8 and params.scale.dtype == np.float32
    q = params.quantize(np.array([-0.3, 0.0, 2.0], np.float32))
    back = (q.astype(np.float32) - params.zero_point) * params.scale
    assert back[1] == 0.0
    assert np.abs(back - [-0.3, 0.0, 2.0]).max() <= params.scale / 2 + 1e-7
    assert QParams.for_range(Range(0.0, 0.0)).scale == 1.0  # a tensor that is always zero


def test_symmetric_int8_per_column_with_an_all_zero_column():
    w = np.array([[0.5, 0.0, -2.0], [-0.25, 0.0, 1.0]], np.float32)
    q, scale = symmetric_int8(w, axis=1)
    assert q.dtype == np.int8 and q.min() >= -127 and scale.shape == (3,)
    assert scale.dtype == np.float32 and scale[1] == 1.0
    assert np.abs(q * scale - w).max() <= scale.max() / 2


def test_symmetric_int8_in_fewer_levels():
    w = np.random.default_rng(11).normal(0, 1, (5, 4)).astype(np.float32)
    q, scale = symmetric_int8(w, axis=1, levels=63)
    assert q.dtype == np.int8 and (np.abs(q).max(axis=0) == 63).all()
    np.testing.assert_array_equal(scale, (np.abs(w).max(axis=0) / 63).astype(np.float32))
    assert np.abs(q * scale - w).max() <= scale.max() / 2 + 1e-7
    for default, full in zip(symmetric_int8(w, axis=1), symmetric_int8(w, axis=1, levels=127)):
        np.testing.assert_array_equal(default, full)
    for levels in (0, 128):
        with pytest.raises(ValueError, match="levels"):
            symmetric_int8(w, levels=levels)


# -- 3. weights -> int8 + DequantizeLinear ------------------------------------------------------------------
def _gather_matmul_model():
    rng = np.random.default_rng(3)
    table, w = rng.normal(0, 1, (10, 4)).astype(np.float32), rng.normal(0, 1, (4, 3)).astype(np.float32)
    w[:, 2] *= 0.01  # a small column: per-column scales keep it
    nodes = [helper.make_node("Gather", ["table", "ids"], ["rows"], name="gather"),
             helper.make_node("MatMul", ["rows", "w"], ["out"], name="matmul")]
    model = one_graph(nodes, [helper.make_tensor_value_info("ids", TensorProto.INT64, ["n"])], [floats("out", "n", 3)],
                      [numpy_helper.from_array(table, "table"), numpy_helper.from_array(w, "w")])
    return model, table, w


def test_quantize_initializers_writes_int8_columns_and_a_uint8_table_behind_dequantize_nodes():
    model, table, w = _gather_matmul_model()
    quantize_initializers(model.graph, {"w": 1}, tables=("table",))
    onnx.checker.check_model(model, full_check=True)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    assert "w" not in inits and "table" not in inits
    assert inits["w_quantized"].dtype == np.int8 and inits["w_scale"].shape == (3,)
    assert inits["w_zero_point"].dtype == np.int8 and not inits["w_zero_point"].any()  # symmetric: zero point 0
    assert inits["table_quantized"].dtype == np.uint8 and inits["table_scale"].shape == ()
    dq = {n.output[0]: n for n in model.graph.node if n.op_type == "DequantizeLinear"}
    assert set(dq) == {"w", "table"} and dq["w"].attribute[0].i == 1
    w_back = inits["w_quantized"] * inits["w_scale"]
    assert np.all(np.abs(w_back - w) <= inits["w_scale"] / 2 + 1e-7)  # the small column too
    ids = np.arange(10, dtype=np.int64)
    got = session(model, optimize=False).run(None, {"ids": ids})[0]
    table_back = (inits["table_quantized"].astype(np.float32) - inits["table_zero_point"]) * inits["table_scale"]
    assert np.abs(got - table_back @ w_back).max() < 1e-5


def test_quantize_initializers_refuses_a_missing_or_non_float_initializer():
    model, _, _ = _gather_matmul_model()
    with pytest.raises(ConversionError, match="no initializers"):
        quantize_initializers(model.graph, {"kernel": 1})
    model.graph.initializer.append(numpy_helper.from_array(np.zeros(3, np.int64), "counts"))
    with pytest.raises(ConversionError, match="not float32"):
        quantize_initializers(model.graph, {"counts": None})


# -- 4. Q -> DQ on an activation ---------------------------------------------------------------------------
def test_insert_qdq_quantizes_only_what_the_named_readers_see():
    w = np.random.default_rng(4).normal(0, 1, (4, 2)).astype(np.float32)
    nodes = [helper.make_node("Tanh", ["x"], ["h"], name="tanh"),
             helper.make_node("MatMul", ["h", "w"], ["product"], name="matmul"),
             helper.make_node("Add", ["h", "h"], ["doubled"], name="add")]
    outputs = [floats("product", "n", 2), floats("doubled", "n", 4), floats("h", "n", 4)]
    model = one_graph(nodes, [floats("x", "n", 4)], outputs, [numpy_helper.from_array(w, "w")])
    params = QParams.for_range(Range(-1.0, 1.0))
    insert_qdq(model.graph, "h", params, into=("MatMul",))
    onnx.checker.check_model(model, full_check=True)
    readers = {n.name: list(n.input) for n in model.graph.node}
    assert readers["matmul"][0] == "h_dequantized" and readers["add"] == ["h", "h"]
    x = np.random.default_rng(5).normal(0, 2, (6, 4)).astype(np.float32)
    product, doubled, h = session(model, optimize=False).run(None, {"x": x})
    h_float = np.tanh(x)
    h_fake = (params.quantize(h_float).astype(np.float32) - params.zero_point) * params.scale
    assert np.abs(product - h_fake @ w).max() < 1e-5
    assert np.abs(doubled - 2 * h_float).max() < 1e-6 and np.abs(h - h_float).max() < 1e-6  # still float


def test_insert_qdq_on_a_graph_input_and_refused_without_readers():
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="relu")]
    model = one_graph(nodes, [floats("x", 3)], [floats("y", 3)], [])
    insert_qdq(model.graph, "x", QParams.for_range(Range(0.0, 1.0)))
    assert [n.op_type for n in model.graph.node] == ["QuantizeLinear", "DequantizeLinear", "Relu"]
    with pytest.raises(ConversionError, match="no MatMul reads 'y'"):
        insert_qdq(model.graph, "y", QParams.for_range(Range(0.0, 1.0)), into=("MatMul",))


# -- 5. Gather on 8-bit rows -----------------------------------------------------------------------------
def _dq_gather_model(axis=None):
    rng = np.random.default_rng(6)
    q = rng.integers(-127, 128, (12, 3)).astype(np.int8)
    scale = np.array(0.05, np.float32) if axis is None else np.linspace(0.01, 0.1, 12).astype(np.float32)
    attrs = {} if axis is None else {"axis": axis}
    nodes = [helper.make_node("DequantizeLinear", ["t_q", "t_scale", "t_zero"], ["t"], name="t_dq", **attrs),
             helper.make_node("Gather", ["t", "ids"], ["rows"], name="gather")]
    return one_graph(nodes, [helper.make_tensor_value_info("ids", TensorProto.INT64, ["n", 2])],
                     [floats("rows", "n", 2, 3)],
                     [numpy_helper.from_array(q, "t_q"), numpy_helper.from_array(scale, "t_scale"),
                      numpy_helper.from_array(np.zeros(scale.shape, np.int8), "t_zero")])


def test_gather_int8_rows_moves_dequantize_after_the_gather_bit_exactly():
    model = _dq_gather_model()
    ids = np.array([[0, 11], [5, 5], [3, 0]], np.int64)
    before = session(model).run(None, {"ids": ids})[0]
    gather_int8_rows(model.graph)
    onnx.checker.check_model(model, full_check=True)
    assert [(n.op_type, n.input[0]) for n in model.graph.node] == [("Gather", "t_q"),
                                                                   ("DequantizeLinear", "rows_quantized")]
    assert np.array_equal(session(model).run(None, {"ids": ids})[0], before)


def test_gather_int8_rows_leaves_a_per_row_scale_alone():
    model = _dq_gather_model(axis=0)
    gather_int8_rows(model.graph)
    assert [n.op_type for n in model.graph.node] == ["DequantizeLinear", "Gather"]


# -- 6. the guard -------------------------------------------------------------------------------------------
def test_a_float_matmul_left_in_the_scan_body_is_refused_by_name():
    with pytest.raises(ConversionError, match="recurrence/recurrent_product"):
        check_matmuls_quantized(build_scan_graph(tiny_context("gru")))


def test_a_graph_without_the_recurrence_scan_is_refused():
    model = one_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], [floats("x", 3)], [floats("y", 3)], [])
    with pytest.raises(ConversionError, match="one Scan node 'recurrence', found 0"):
        scan_body(model)


# -- fp16: weights stored as float16 --------------------------------------------------------------------------
def _embedding_matmul_model():
    rng = np.random.default_rng(10)
    embedding, w = rng.normal(0, 1, (10, 4)).astype(np.float32), rng.normal(0, 1, (4, 3)).astype(np.float32)
    nodes = [helper.make_node("Gather", ["embedding", "ids"], ["rows"], name="embedding_gather"),
             helper.make_node("MatMul", ["rows", "w"], ["out"], name="matmul")]
    model = one_graph(nodes, [helper.make_tensor_value_info("ids", TensorProto.INT64, ["n"])], [floats("out", "n", 3)],
                      [numpy_helper.from_array(embedding, "embedding"), numpy_helper.from_array(w, "w"),
                       numpy_helper.from_array(np.array([1], np.int64), "one")])
    return model, embedding, w


def test_to_fp16_stores_floats_as_float16_and_gathers_the_tables_rows_before_casting_them():
    model, embedding, w = _embedding_matmul_model()
    half = to_fp16(model)
    onnx.checker.check_model(half, full_check=True)
    assert [i.name for i in model.graph.initializer] == ["embedding", "w", "one"]  # the input model is left alone
    assert {i.name: i.data_type for i in half.graph.initializer} == {
        "embedding_fp16": TensorProto.FLOAT16, "w_fp16": TensorProto.FLOAT16, "one": TensorProto.INT64}
    assert [(n.name, list(n.input), list(n.output)) for n in half.graph.node] == [
        ("cast_w", ["w_fp16"], ["w"]),
        ("embedding_gather", ["embedding_fp16", "ids"], ["rows_fp16"]),
        ("cast_embedding_gather", ["rows_fp16"], ["rows"]),
        ("matmul", ["rows", "w"], ["out"])]
    ids = np.array([0, 9, 3, 3], np.int64)
    expected = embedding.astype(np.float16).astype(np.float32)[ids] @ w.astype(np.float16).astype(np.float32)
    np.testing.assert_allclose(_outputs_of(half, {"ids": ids})[0], expected, rtol=1e-6, atol=1e-6)


def test_to_fp16_only_touches_the_initializers_named():
    model, _, _ = _embedding_matmul_model()
    half = to_fp16(model, only=("w",))
    assert {i.name: i.data_type for i in half.graph.initializer} == {
        "embedding": TensorProto.FLOAT, "w_fp16": TensorProto.FLOAT16, "one": TensorProto.INT64}
    assert [n.name for n in half.graph.node] == ["cast_w", "embedding_gather", "matmul"]
    assert half.graph.node[1].input[0] == "embedding"


# -- the package's layering ---------------------------------------------------------------------------------
ONNX_MODULES = ("graph", "fp32", "fp16", "dynamic_int8", "qdq", "int8", "export", "describe", "reference")


def test_each_onnx_module_imports_only_modules_listed_before_it():
    folder = Path(__file__).resolve().parents[1] / "export" / "onnx"
    assert sorted(p.stem for p in folder.glob("*.py")) == sorted(ONNX_MODULES + ("__init__",))
    for k, module in enumerate(ONNX_MODULES):
        siblings = set()
        for node in ast.walk(ast.parse((folder / f"{module}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                siblings |= {node.module} if node.module else {alias.name for alias in node.names}
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                assert not (node.module or "").startswith("sentilite.export"), (module, node.module)
        assert siblings <= set(ONNX_MODULES[:k]), f"{module} imports {sorted(siblings - set(ONNX_MODULES[:k]))}"


# -- the whole int8 file ------------------------------------------------------------------------------------
def _all_ops(graph, prefix=""):
    for node in graph.node:
        yield prefix, (f"{node.domain}." if node.domain else "") + node.op_type
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _all_ops(attr.g, f"{prefix}{node.name}/")


@pytest.mark.parametrize("cell", CELLS)
def test_int8_file_runs_every_matmul_as_an_integer_kernel(cell, tmp_path):
    ctx = tiny_context(cell)
    path = export_onnx(ctx, "int8", tmp_path / "model.int8.onnx", metadata={"precision": "int8"})
    model = onnx.load(str(path))
    check_matmuls_quantized(model)
    inputs, outputs = model.graph.input, model.graph.output
    assert inputs[0].type.tensor_type.elem_type == TensorProto.INT32
    assert [d.dim_param for d in inputs[0].type.tensor_type.shape.dim] == ["batch", "time"]
    assert outputs[0].name == "positive" and outputs[0].type.tensor_type.elem_type == TensorProto.FLOAT
    # What onnxruntime runs: every MatMul fused into QLinearMatMul, in the Scan body as well.
    session(model, tmp_path / "optimized.onnx")
    ran = list(_all_ops(onnx.load(str(tmp_path / "optimized.onnx")).graph))
    assert ("", "QLinearMatMul") in ran and ("recurrence/", "QLinearMatMul") in ran
    assert [(where, op) for where, op in ran if op in ("MatMul", "Gemm", "com.microsoft.FusedGemm",
                                                        "com.microsoft.FusedMatMul")] == []
    quantized = describe_onnx(path)["quantized_nodes"]
    for node in ("embedding_gather (Gather)", "ngram_gather (Gather)", "input_product (MatMul)",
                 "dense_product (MatMul)", "recurrence/recurrent_product (MatMul)",
                 "recurrence/h_prev_quantize (QuantizeLinear)"):
        assert node in quantized


@pytest.mark.parametrize("input", ["ids", "onehot"])
@pytest.mark.parametrize("cell", CELLS)
def test_int8_file_is_the_numpy_model_within_quantization_error(cell, input):
    # Calibrated on the rows it is checked on, so what is left is rounding, not clipping.
    ctx = tiny_context(cell, input, calibration_ids=ROWS)
    expected = numpy_model(ctx).predict_positive(ROWS)
    backend = _Backend(build_int8(ctx))
    whole, cut = backend.run(ROWS), run_batches(backend, ROWS, 5)
    # Steps of about 1/100 of each range (1/60 of a weight column's), through a cell of a few steps,
    # measured at 0.01-0.05 of a logit; a wrong scale, zero point or gate order costs tenths, and so does
    # a product saturated by a CPU's int16 sums (x86 without VNNI: see the 7-bit weights test below).
    assert np.abs(logit(cut) - logit(expected)).max() < 0.08
    # Padding run through the int8 cell is not the float pad state, so whole rows differ by rounding too.
    assert np.abs(logit(whole) - logit(expected)).max() < 0.08
    # A row's answer does not depend on the rows it is batched with.
    assert np.abs(run_batches(backend, ROWS, 1) - cut).max() < 1e-6


def _graphs(graph, prefix=""):
    yield prefix, graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(attr.g, f"{prefix}{node.name}/")


@pytest.mark.parametrize("input", ["ids", "onehot"])
@pytest.mark.parametrize("cell", CELLS)
def test_int8_file_stores_matmul_weights_in_7_bits_and_gathered_tables_in_8(cell, input):
    # onnxruntime's x86 kernel without VNNI adds pairs of uint8 * int8 products in int16 with saturation:
    # 255 * 2 * |w| must stay under 32,768, whatever CPU runs this test.
    matmul_weights, gathered = {}, {}
    for path, graph in _graphs(build_int8(tiny_context(cell, input)).graph):
        inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        dequantized = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "DequantizeLinear"}
        for node in graph.node:
            if node.op_type == "MatMul":
                matmul_weights[path + node.name] = inits[dequantized[node.input[1]]]
            elif node.op_type == "Gather" and node.input[0] in inits and inits[node.input[0]].dtype.itemsize == 1:
                gathered[path + node.name] = inits[node.input[0]]
    assert sorted(matmul_weights) == sorted(["dense_product", "recurrence/recurrent_product"] +
                                            (["input_product"] if input == "ids" else []))
    for name, q in matmul_weights.items():
        assert q.dtype == np.int8 and -64 <= q.min() and q.max() <= 63, name
        assert np.abs(q).max() == MATMUL_WEIGHT_LEVELS, name  # each column's peak is the top level
    # The tables read by a Gather are not multiplied by that kernel: they keep the full 8 bits.
    assert sorted(gathered) == sorted(["ngram_gather", "embedding_gather" if input == "ids" else "input_product"])
    for name, q in gathered.items():
        if q.dtype == np.uint8:
            assert (q.min(), q.max()) == (0, 255), name
        else:
            assert q.dtype == np.int8 and np.abs(q).max() == 127, name


def test_dynamic_int8_file_still_quantizes_the_gathers(tmp_path):
    path = export_onnx(tiny_context("gru"), "dynamic-int8", tmp_path / "model.dynamic-int8.onnx", metadata={})
    description = describe_onnx(path)
    assert "embedding_gather (Gather)" in description["quantized_nodes"] and "GRU" in description["ops"]
