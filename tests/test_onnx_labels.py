"""ONNX files of models of three or more labels: one output ``probabilities`` (batch, N), the softmax of the logits.

Every precision is held to the numpy reference and the Keras model of the
same weights, at the tolerances export/validate.py holds a package's files
to; the 8-bit files keep their rules for an N-column head (7-bit MatMul
weights, the n-gram table gathered as 8-bit rows before it is dequantized).
The files are run with onnxruntime directly, rows cut as the runtime cuts them.
"""
from functools import lru_cache

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from sentilite.export.errors import ConversionError
from sentilite.export.onnx import build_onnx, describe_onnx, export_onnx
from sentilite.export.onnx.graph import (
    NGRAM_GATHER, NGRAM_TABLE, PROBABILITIES_NAME, GraphBuilder, head, ngram_logit_nodes, output_name,
)
from sentilite.export.onnx.int8 import build_int8, build_scan_graph
from sentilite.export.onnx.qdq import MATMUL_WEIGHT_LEVELS, check_matmuls_quantized
from sentilite.export.registry import ExportContext
from sentilite.export.validate import ValidationConfig
from sentilite.runtime.architecture import ModelConfig
from sentilite.runtime.model import cut_widths
from sentilite.runtime.numpy_model import NumpySentimentModel
from sentilite.runtime.recurrence import NgramDictionary, ngram_keys, ngram_logit, softmax
from sentilite.train.ngrams import place_keys

ort = pytest.importorskip("onnxruntime")

CELLS, LOOKUPS, PRECISIONS = ("rnn", "lstm", "gru"), ("hashed", "dictionary"), ("fp32", "fp16", "dynamic-int8", "int8")
VOCAB, MAXLEN, BUCKETS = 50, 40, 101
# Random weights put some rows of N labels within rounding of a tie, which a trained model's rows seldom are:
# the top-label agreement is counted on the rows whose top two logits are at least this far apart.
CLEAR_MARGIN = 0.3


def padded_rows(count: int, seed: int) -> np.ndarray:
    """Rows of every length 0..MAXLEN, left-padded, as the tokenizer writes them."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((count, MAXLEN), np.int32)
    for row in range(count):
        n = row % (MAXLEN + 1)
        ids[row, MAXLEN - n:] = rng.integers(1, VOCAB, n)
    return ids


ROWS = padded_rows(160, seed=7)
CALIBRATION_ROWS = padded_rows(120, seed=8)  # training rows, never the rows a file is checked on


def labels_of(classes: int) -> tuple[str, ...]:
    return tuple(f"label{k}" for k in range(classes))


def random_dictionary(rng: np.random.Generator):
    keys, valid = ngram_keys(ROWS, VOCAB)
    return place_keys(rng.permutation(np.unique(keys[valid]))[:60], BUCKETS)[0]


_keras_models: dict[tuple[str, str, int], object] = {}  # keras_case's models, for a second converter's check


@lru_cache(maxsize=None)
def keras_case(cell: str, lookup: str, classes: int) -> tuple[ExportContext, np.ndarray]:
    """(the export context of a tiny Keras model with random weights, the Keras model's (n, N) answer on ROWS)."""
    from sentilite.export.weights import extract_weights
    from sentilite.runtime.tokenizer import TokenizerConfig
    from sentilite.train.keras_model import NGRAM_LAYER, build_model

    config = ModelConfig(cell=cell, embedding_dim=8, units=8, window=16, ngram_buckets=BUCKETS, ngram_lookup=lookup,
                         labels=labels_of(classes))
    model, _ = build_model(config, TokenizerConfig(vocab_size=VOCAB, maxlen=MAXLEN))
    rng = np.random.default_rng(sum(map(ord, f"{cell}{lookup}{classes}")))
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if layer.name == NGRAM_LAYER:
            weights[0] = rng.normal(0, 2.0, weights[0].shape).astype(np.float32)
            weights[0][0] = 0.0  # padding
            if lookup == "dictionary":
                dictionary = random_dictionary(rng)
                weights[1:] = [dictionary.displacements.astype(np.float32),
                               dictionary.fingerprints.astype(np.float32)]
        else:
            weights = [rng.normal(0, 0.5, w.shape).astype(np.float32) for w in weights]
        layer.set_weights(weights)
    probabilities = np.asarray(model(ROWS), np.float32)
    _keras_models[(cell, lookup, classes)] = model
    context = ExportContext(weights=extract_weights(model, config), model=config, maxlen=MAXLEN, vocab_size=VOCAB,
                            name="tiny", calibration_ids=CALIBRATION_ROWS, tokenizer_json=b"{}",
                            labels=config.labels)
    return context, probabilities


def weights_case(cell: str, classes: int, lookup: str = "hashed", seed: int = 0) -> ExportContext:
    """A context of random weights without Keras, for the graph's own checks."""
    config = ModelConfig(cell=cell, embedding_dim=8, units=6, window=16, ngram_buckets=BUCKETS, ngram_lookup=lookup,
                         labels=labels_of(classes))
    rng = np.random.default_rng(seed)
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[cell] * config.units
    weights = {
        "embedding": rng.normal(0, 0.5, (VOCAB, 8)),
        "kernel": rng.normal(0, 0.4, (8, gates)),
        "recurrent_kernel": rng.normal(0, 0.3, (config.units, gates)),
        "bias": rng.normal(0, 0.1, (2, gates) if cell == "gru" else (gates,)),
        "dense_kernel": rng.normal(0, 0.8, (config.units, classes)),
        "dense_bias": rng.normal(0, 0.1, (classes,)),
        "ngram_weights": rng.normal(0, 1.5, (VOCAB + BUCKETS, classes)),
    }
    weights["ngram_weights"][0] = 0.0
    if lookup == "dictionary":
        dictionary = random_dictionary(rng)
        weights.update(ngram_displacements=dictionary.displacements, ngram_fingerprints=dictionary.fingerprints)
    weights = {k: np.asarray(v, np.float32) for k, v in weights.items()}
    return ExportContext(weights=weights, model=config, maxlen=MAXLEN, vocab_size=VOCAB, name="tiny",
                         calibration_ids=CALIBRATION_ROWS, tokenizer_json=b"{}", labels=config.labels)


def session(model: onnx.ModelProto, optimized_path=None, optimize: bool = True):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if optimized_path:
        options.optimized_model_filepath = str(optimized_path)
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def run_cut(model: onnx.ModelProto, ids: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """The file's (n, N) answer, each row cut to its width as runtime.model.run_batches cuts it."""
    run = session(model)
    widths = cut_widths(ids)
    out = None
    for width in np.unique(widths):
        rows = np.flatnonzero(widths == width)
        for start in range(0, len(rows), batch_size):
            chunk = rows[start: start + batch_size]
            answer = run.run(None, {"ids": np.ascontiguousarray(ids[chunk, ids.shape[1] - width:])})[0]
            out = np.zeros((len(ids), answer.shape[1]), np.float32) if out is None else out
            out[chunk] = answer
    return out


def centered_log(probabilities: np.ndarray) -> np.ndarray:
    """log p minus its row mean: the logits up to the constant the softmax drops."""
    logs = np.log(np.maximum(np.asarray(probabilities, np.float64), 1e-30))
    return logs - logs.mean(axis=1, keepdims=True)


def clear_rows(reference: np.ndarray) -> np.ndarray:
    top_two = np.sort(centered_log(reference), axis=1)[:, -2:]
    return top_two[:, 1] - top_two[:, 0] >= CLEAR_MARGIN


# -- the shared pieces (graph.py) ------------------------------------------------------------------------
@pytest.mark.parametrize("classes", [3, 50])
@pytest.mark.parametrize("lookup", LOOKUPS)
def test_ngram_logit_nodes_of_a_table_per_label_are_the_runtime_ngram_logit(lookup, classes):
    ctx = weights_case("gru", classes, lookup)
    table = ctx.weights["ngram_weights"]
    dictionary = None
    if lookup == "dictionary":
        dictionary = NgramDictionary(ctx.weights["ngram_displacements"], ctx.weights["ngram_fingerprints"])
    b = GraphBuilder()
    out = ngram_logit_nodes(b, table, VOCAB, BUCKETS, dictionary)
    graph = helper.make_graph(b.nodes, "tiny", [helper.make_tensor_value_info("ids", TensorProto.INT32, ["n", "t"])],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["n", classes])],
                              initializer=b.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    for rows in (ROWS, ROWS[:, -17:]):
        got = session(model, optimize=False).run(None, {"ids": rows})[0]
        assert got.shape == (len(rows), classes)
        np.testing.assert_allclose(got, ngram_logit(rows, table, VOCAB, BUCKETS, dictionary), atol=2e-6)


def test_head_of_n_labels_is_the_softmax_of_the_dense_logits_plus_the_ngram_logits():
    ctx = weights_case("gru", 4)
    b = GraphBuilder()
    assert head(b, "h", ctx) == PROBABILITIES_NAME == output_name(4) and output_name(1) == "positive"
    assert [n.op_type for n in b.nodes][-1] == "Softmax"
    inputs = [helper.make_tensor_value_info("ids", TensorProto.INT32, ["n", "t"]),
              helper.make_tensor_value_info("h", TensorProto.FLOAT, ["n", 6])]
    graph = helper.make_graph(b.nodes, "tiny", inputs,
                              [helper.make_tensor_value_info(PROBABILITIES_NAME, TensorProto.FLOAT, ["n", 4])],
                              initializer=b.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    h = np.random.default_rng(9).uniform(-1, 1, (len(ROWS), 6)).astype(np.float32)
    w = ctx.weights
    logits = h @ w["dense_kernel"] + w["dense_bias"] + ngram_logit(ROWS, w["ngram_weights"], VOCAB, BUCKETS)
    got = session(model, optimize=False).run(None, {"ids": ROWS, "h": h})[0]
    np.testing.assert_allclose(got, softmax(logits), atol=1e-6)


def test_a_head_whose_weights_are_not_one_logit_per_label_is_refused():
    ctx = weights_case("gru", 3)
    two_columns = {**ctx.weights, "dense_kernel": ctx.weights["dense_kernel"][:, :2]}
    with pytest.raises(ConversionError, match=r"'dense_kernel' are \[6, 2\], expected \[6, 3\] for a model of 3"):
        head(GraphBuilder(), "h", ExportContext(**{**ctx.__dict__, "weights": two_columns}))
    one_column = {**ctx.weights, "ngram_weights": ctx.weights["ngram_weights"][:, 0]}
    with pytest.raises(ConversionError, match=r"'ngram_weights' are \[151\], expected \[151, 3\]"):
        head(GraphBuilder(), "h", ExportContext(**{**ctx.__dict__, "weights": one_column}))


@pytest.mark.parametrize("cell", CELLS)
def test_scan_graph_of_n_labels_is_the_numpy_model(cell):
    ctx = weights_case(cell, 5)
    expected = NumpySentimentModel(ctx.model, ctx.weights, MAXLEN, VOCAB).predict(ROWS)
    assert np.abs(run_cut(build_scan_graph(ctx), ROWS) - expected).max() < 1e-5


# -- every precision against the numpy reference and Keras -------------------------------------------------
@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("classes", [3, 5])
@pytest.mark.parametrize("lookup", LOOKUPS)
@pytest.mark.parametrize("cell", CELLS)
def test_every_precision_answers_the_keras_models_probabilities(cell, lookup, classes, precision, tmp_path):
    ctx, keras = keras_case(cell, lookup, classes)
    reference = NumpySentimentModel(ctx.model, ctx.weights, MAXLEN, VOCAB).predict(ROWS)
    assert reference.shape == (len(ROWS), classes) and np.abs(reference - keras).max() < 1e-5
    path = export_onnx(ctx, precision, tmp_path / f"model.{precision}.onnx", metadata={"precision": precision})
    model = onnx.load(str(path))
    [output] = model.graph.output
    dims = output.type.tensor_type.shape.dim
    assert (output.name, dims[0].dim_param, dims[1].dim_value) == (PROBABILITIES_NAME, "batch", classes)
    got = run_cut(model, ROWS)
    assert got.shape == (len(ROWS), classes)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
    tolerance = ValidationConfig().for_precision(precision)
    clear = clear_rows(keras)
    assert clear.mean() > 0.7  # the agreement below is counted on most rows
    for answer in (keras, reference):
        if tolerance.max_abs_diff is not None:
            assert np.abs(got - answer).max() <= tolerance.max_abs_diff
        assert np.mean(got.argmax(axis=1)[clear] == answer.argmax(axis=1)[clear]) >= tolerance.min_agreement
    # Every logit within the rounding of its precision (measured at most: fp16 0.004, dynamic-int8 0.06, int8 0.29
    # of a logit, calibrated on other rows than these): a wrong label order or scale costs whole logits.
    limit = {"fp32": 1e-4, "fp16": 0.01, "dynamic-int8": 0.1, "int8": 0.5}[precision]
    assert np.abs(centered_log(got) - centered_log(reference)).max() < limit


# -- the 8-bit files' rules with an N-column head -----------------------------------------------------------
def _optimized_ops(model: onnx.ModelProto, path) -> list[tuple[str, str]]:
    session(model, path)
    ops = []

    def walk(graph, prefix):
        for node in graph.node:
            ops.append((prefix, (f"{node.domain}." if node.domain else "") + node.op_type))
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    walk(attr.g, f"{prefix}{node.name}/")

    walk(onnx.load(str(path)).graph, "")
    return ops


@pytest.mark.parametrize("cell", CELLS)
def test_int8_file_of_n_labels_runs_its_dense_as_an_integer_kernel_on_7_bit_weights(cell, tmp_path):
    ctx = weights_case(cell, 7)
    model = build_int8(ctx)
    check_matmuls_quantized(model)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    dense = inits["dense_kernel_quantized"]
    assert dense.shape == (6, 7) and dense.dtype == np.int8 and inits["dense_kernel_scale"].shape == (7,)
    assert (np.abs(dense).max(axis=0) == MATMUL_WEIGHT_LEVELS).all()  # each label column's peak is the top level
    table = inits[f"{NGRAM_TABLE}_quantized"]
    assert table.shape == (VOCAB + BUCKETS, 7) and table.dtype == np.int8 and np.abs(table).max() == 127
    assert inits[f"{NGRAM_TABLE}_scale"].shape == ()  # one scale: the Gather reads the 8-bit rows
    gather = next(n for n in model.graph.node if n.name == NGRAM_GATHER)
    assert gather.input[0] == f"{NGRAM_TABLE}_quantized"
    ran = _optimized_ops(model, tmp_path / "optimized.onnx")
    assert ran.count(("", "QLinearMatMul")) == 2 and ("recurrence/", "QLinearMatMul") in ran
    assert [op for _, op in ran if op in ("MatMul", "Gemm", "com.microsoft.FusedGemm",
                                          "com.microsoft.FusedMatMul")] == []
    path = export_onnx(ctx, "int8", tmp_path / "model.int8.onnx", metadata={})
    assert {"dense_product (MatMul)", "ngram_gather (Gather)"} <= set(describe_onnx(path)["quantized_nodes"])


def _dequantize_before_gather(model: onnx.ModelProto) -> onnx.ModelProto:
    """The int8 file with its n-gram table dequantized whole, then gathered: the order before gather_int8_rows."""
    model = onnx.load_from_string(model.SerializeToString())
    nodes = list(model.graph.node)
    gather = next(n for n in nodes if n.name == NGRAM_GATHER)
    after = next(n for n in nodes if n.op_type == "DequantizeLinear" and n.input[0] == gather.output[0])
    before = helper.make_node("DequantizeLinear", [gather.input[0], *after.input[1:]], [NGRAM_TABLE + "_float"],
                              name=NGRAM_TABLE + "_dequantize")
    gather.input[0], gather.output[0] = before.output[0], after.output[0]
    nodes.remove(after)
    nodes.insert(nodes.index(gather), before)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


@pytest.mark.parametrize("lookup", LOOKUPS)
def test_int8_ngram_rows_gathered_before_they_are_dequantized_give_the_same_answer(lookup):
    # Gather of int8 rows, then a DequantizeLinear of one scale: onnxruntime's answer, fused or not (on any CPU,
    # with VNNI or without: this is no matrix product), is the one of the table dequantized first, bit for bit,
    # and the float branch on the dequantized table.
    ctx = weights_case("lstm", 6, lookup)
    model = build_int8(ctx)
    model.graph.output.append(helper.make_tensor_value_info("ngram_logit", TensorProto.FLOAT, ["batch", 6]))
    first = _dequantize_before_gather(model)
    onnx.checker.check_model(first, full_check=True)
    answers = [session(m, optimize=optimize).run(None, {"ids": ROWS}) for m in (model, first)
               for optimize in (True, False)]
    for probabilities, logits in answers[1:]:
        np.testing.assert_array_equal(probabilities, answers[0][0])
        np.testing.assert_array_equal(logits, answers[0][1])
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    dequantized = inits[f"{NGRAM_TABLE}_quantized"].astype(np.float32) * inits[f"{NGRAM_TABLE}_scale"]
    dictionary = None
    if lookup == "dictionary":
        dictionary = NgramDictionary(ctx.weights["ngram_displacements"], ctx.weights["ngram_fingerprints"])
    np.testing.assert_allclose(answers[0][1], ngram_logit(ROWS, dequantized, VOCAB, BUCKETS, dictionary),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_fifty_labels_in_every_precision(cell):
    ctx = weights_case(cell, 50, "dictionary", seed=3)
    reference = NumpySentimentModel(ctx.model, ctx.weights, MAXLEN, VOCAB).predict(ROWS)
    clear = clear_rows(reference)
    # measured: 0, 0.002, 0.05 and 0.19 of a logit
    for precision, limit in (("fp32", 1e-4), ("fp16", 0.01), ("dynamic-int8", 0.1), ("int8", 0.3)):
        got = run_cut(build_onnx(ctx, precision), ROWS)
        assert got.shape == (len(ROWS), 50)
        assert np.abs(centered_log(got) - centered_log(reference)).max() < limit, precision
        assert np.mean(got.argmax(axis=1)[clear] == reference.argmax(axis=1)[clear]) >= \
            ValidationConfig().for_precision(precision).min_agreement, precision


# -- tf2onnx's conversion of the same Keras model ----------------------------------------------------------
@pytest.mark.slow  # tf2onnx traces and converts the Keras model: ~45 s with the TensorFlow import
def test_tf2onnx_reference_of_n_labels_matches_the_hand_built_fp32_file():
    from sentilite.export.onnx.reference import reference_onnx, run_reference

    ctx, keras = keras_case("gru", "dictionary", 5)
    keras_model = _keras_models[("gru", "dictionary", 5)]
    reference = run_reference(reference_onnx(keras_model, MAXLEN), ROWS)
    assert reference.shape == (len(ROWS), 5)
    hand_built = run_cut(build_onnx(ctx, "fp32"), ROWS)
    limit = ValidationConfig().for_precision("fp32").max_abs_diff
    assert np.abs(reference - hand_built).max() <= limit and np.abs(reference - keras).max() <= limit


# -- the dynamic-int8 file's n-gram table: one scale per label column --------------------------------------
# Label columns of different ranges, as a trained table's are: one scale for the table spends the narrow
# columns' few levels on the widest one's range.
COLUMN_RANGES = np.array([0.1, 0.3, 1.0, 3.0, 0.3], np.float32)


def _uneven_columns_case(cell: str, lookup: str) -> ExportContext:
    ctx = weights_case(cell, len(COLUMN_RANGES), lookup)
    weights = {**ctx.weights, "ngram_weights": ctx.weights["ngram_weights"] * COLUMN_RANGES}
    return ExportContext(**{**ctx.__dict__, "weights": weights})


def _per_tensor_dynamic_int8(ctx: ExportContext) -> onnx.ModelProto:
    """The file as onnxruntime's quantizer writes it alone: one scale for the whole n-gram table."""
    from sentilite.export.onnx.dynamic_int8 import quantize_gathers
    from sentilite.export.onnx.fp16 import pad_states_to_fp16
    from sentilite.export.onnx.fp32 import build_fp32

    return pad_states_to_fp16(quantize_gathers(build_fp32(ctx)))


def _with_ngram_logit_output(model: onnx.ModelProto, classes: int) -> onnx.ModelProto:
    model = onnx.load_from_string(model.SerializeToString())
    model.graph.output.append(helper.make_tensor_value_info("ngram_logit", TensorProto.FLOAT, ["batch", classes]))
    return model


@pytest.mark.parametrize("lookup", LOOKUPS)
def test_dynamic_int8_file_of_n_labels_gathers_its_ngram_table_as_int8_rows_of_one_scale_per_label(lookup):
    ctx = _uneven_columns_case("gru", lookup)
    table, classes = ctx.weights["ngram_weights"], len(COLUMN_RANGES)
    model = build_onnx(ctx, "dynamic-int8")
    onnx.checker.check_model(model, full_check=True)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    assert NGRAM_TABLE not in inits and "embedding_quantized" in inits  # the embedding: onnxruntime's quantizer
    quantized, scale = inits[f"{NGRAM_TABLE}_quantized"], inits[f"{NGRAM_TABLE}_scale"]
    assert quantized.shape == (VOCAB + BUCKETS, classes) and quantized.dtype == np.int8
    assert (np.abs(quantized).max(axis=0) == 127).all()  # each label column's peak is the top level
    np.testing.assert_allclose(scale, np.abs(table).max(axis=0) / 127, rtol=1e-6)
    assert inits[f"{NGRAM_TABLE}_zero_point"].tolist() == [0] * classes
    gather = next(n for n in model.graph.node if n.name == NGRAM_GATHER)
    [dequantize] = [n for n in model.graph.node if gather.output[0] in n.input]
    assert gather.input[0] == f"{NGRAM_TABLE}_quantized" and dequantize.op_type == "DequantizeLinear"
    assert [(a.name, a.i) for a in dequantize.attribute] == [("axis", -1)]
    # The rows gathered, then dequantized: exactly the n-gram logit of the dequantized table.
    dictionary = None
    if lookup == "dictionary":
        dictionary = NgramDictionary(ctx.weights["ngram_displacements"], ctx.weights["ngram_fingerprints"])
    per_label = session(_with_ngram_logit_output(model, classes)).run(None, {"ids": ROWS})[1]
    np.testing.assert_allclose(per_label, ngram_logit(ROWS, quantized * scale, VOCAB, BUCKETS, dictionary),
                               atol=1e-5)  # float32 sums in another order
    # Each label's n-gram logit is closer to the float one than with one scale for the table.
    per_tensor = session(_with_ngram_logit_output(_per_tensor_dynamic_int8(ctx), classes)).run(
        None, {"ids": ROWS})[1]
    exact = ngram_logit(ROWS, table, VOCAB, BUCKETS, dictionary)
    per_label_error, per_tensor_error = np.abs(per_label - exact).max(axis=0), np.abs(per_tensor - exact).max(axis=0)
    # onnxruntime's one scale is asymmetric (uint8, the table's range over 255 steps), a little finer than the widest
    # column's own symmetric one (its peak over 127): that column's error is of the same size, the others' smaller.
    widest = int(COLUMN_RANGES.argmax())
    narrower = np.arange(classes) != widest
    assert (per_label_error[narrower] < per_tensor_error[narrower]).all()
    assert per_label_error[widest] < 1.5 * per_tensor_error[widest]
    assert per_label_error[0] < per_tensor_error[0] / 5  # the narrowest column: 30 times the levels


@pytest.mark.parametrize("cell", CELLS)
def test_dynamic_int8_file_of_n_labels_is_closer_to_the_numpy_model_than_one_scale_for_the_table(cell):
    ctx = _uneven_columns_case(cell, "hashed")
    reference = NumpySentimentModel(ctx.model, ctx.weights, MAXLEN, VOCAB).predict(ROWS)
    clear, min_agreement = clear_rows(reference), ValidationConfig().for_precision("dynamic-int8").min_agreement
    errors = {}
    for kind, model in (("per label", build_onnx(ctx, "dynamic-int8")), ("per tensor", _per_tensor_dynamic_int8(ctx))):
        got = run_cut(model, ROWS)
        logit_error = np.abs(centered_log(got) - centered_log(reference))
        errors[kind] = np.abs(got - reference).max(), logit_error.max(), logit_error.mean()
        if kind == "per label":
            assert np.mean(got.argmax(axis=1)[clear] == reference.argmax(axis=1)[clear]) >= min_agreement
    # measured (probability, logit, mean logit error): per label 0.017-0.022, 0.066-0.075, 0.009-0.011;
    # per tensor 0.020-0.029, 0.091-0.119, 0.021-0.024. The embedding is quantized alike in both.
    assert errors["per label"][1] < 0.1  # the limit every precision test holds a dynamic-int8 file's logits to
    assert errors["per label"][0] <= errors["per tensor"][0] and errors["per label"][1] <= errors["per tensor"][1]
    assert errors["per label"][2] < 0.6 * errors["per tensor"][2]
