"""Static int8 ONNX (export/onnx_int8.py): each rewrite step on a tiny graph, then the whole int8 file.

The float Scan graph must be the numpy model exactly; the int8 graph must
run every matrix product on 8-bit data (as onnxruntime's optimized graph
shows: QLinearMatMul, the Scan body's included) and stay within the
rounding its calibrated scales allow.
"""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from sentilite.export.errors import ConversionError
from sentilite.export.onnx_int8 import (
    DENSE_PRODUCT, H_LAST, H_PREV, INPUT_PRODUCT, RECURRENT_PRODUCT, QParams, Range, build_int8, build_scan_graph,
    calibrate, check_matmuls_quantized, gather_int8_rows, insert_qdq, quantize_weights, scan_body, symmetric_int8,
)
from sentilite.export.registry import ExportContext
from sentilite.export.to_onnx import describe_onnx, export_onnx
from sentilite.runtime.architecture import ModelConfig
from sentilite.runtime.model import run_batches
from sentilite.runtime.numpy_model import NumpySentimentModel

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
    q, params = symmetric_int8(w, axis=1)
    assert q.dtype == np.int8 and q.min() >= -127 and params.scale.shape == (3,)
    assert not params.zero_point.any() and params.scale[1] == 1.0
    assert np.abs(q * params.scale - w).max() <= params.scale.max() / 2


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


def test_quantize_weights_writes_int8_columns_and_a_uint8_table_behind_dequantize_nodes():
    model, table, w = _gather_matmul_model()
    quantize_weights(model.graph, {"w": 1}, tables=("table",))
    onnx.checker.check_model(model, full_check=True)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    assert "w" not in inits and "table" not in inits
    assert inits["w_quantized"].dtype == np.int8 and inits["w_scale"].shape == (3,)
    assert inits["table_quantized"].dtype == np.uint8 and inits["table_scale"].shape == ()
    dq = {n.output[0]: n for n in model.graph.node if n.op_type == "DequantizeLinear"}
    assert set(dq) == {"w", "table"} and dq["w"].attribute[0].i == 1
    w_back = inits["w_quantized"] * inits["w_scale"]
    assert np.all(np.abs(w_back - w) <= inits["w_scale"] / 2 + 1e-7)  # the small column too
    ids = np.arange(10, dtype=np.int64)
    got = session(model, optimize=False).run(None, {"ids": ids})[0]
    table_back = (inits["table_quantized"].astype(np.float32) - inits["table_zero_point"]) * inits["table_scale"]
    assert np.abs(got - table_back @ w_back).max() < 1e-5


def test_quantize_weights_refuses_a_missing_or_non_float_initializer():
    model, _, _ = _gather_matmul_model()
    with pytest.raises(ConversionError, match="no initializers"):
        quantize_weights(model.graph, {"kernel": 1})
    model.graph.initializer.append(numpy_helper.from_array(np.zeros(3, np.int64), "counts"))
    with pytest.raises(ConversionError, match="not float32"):
        quantize_weights(model.graph, {"counts": None})


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
    # Steps of about 1/100 of each range, through a cell of a few steps, measured at 0.01-0.035 of a
    # logit; a wrong scale, zero point or gate order costs tenths.
    assert np.abs(logit(cut) - logit(expected)).max() < 0.08
    # Padding run through the int8 cell is not the float pad state, so whole rows differ by rounding too.
    assert np.abs(logit(whole) - logit(expected)).max() < 0.08
    # A row's answer does not depend on the rows it is batched with.
    assert np.abs(run_batches(backend, ROWS, 1) - cut).max() < 1e-6


def test_dynamic_int8_file_still_quantizes_the_gathers(tmp_path):
    path = export_onnx(tiny_context("gru"), "dynamic-int8", tmp_path / "model.dynamic-int8.onnx", metadata={})
    description = describe_onnx(path)
    assert "embedding_gather (Gather)" in description["quantized_nodes"] and "GRU" in description["ops"]
