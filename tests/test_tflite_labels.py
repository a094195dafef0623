"""TFLite files of three or more labels: one (n, N) softmax output, checked against the numpy reference.

Tiny Keras models (random weights, the n-gram table of one weight per label
random too) are converted at every precision and run by ai-edge-litert's
interpreter directly; each file answers like
``NumpySentimentModel.predict`` within the tolerance export/validate.py
holds that precision to: the max difference over all N probabilities, and
the share of rows with the same top label.
"""
import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("ai_edge_litert")

from sentilite.export.tflite import convert  # noqa: E402
from sentilite.export.tflite.ngrams import per_label_table_scales  # noqa: E402
from sentilite.export.tflite.schema import read_model  # noqa: E402
from sentilite.export.validate import ValidationConfig, compare  # noqa: E402
from sentilite.runtime.architecture import ModelConfig  # noqa: E402
from sentilite.runtime.numpy_model import NumpySentimentModel  # noqa: E402

MAXLEN, VOCAB, BUCKETS = 40, 50, 101
THREE = ("a", "b", "c")
TOLERANCES = ValidationConfig()


def _model(cell: str, lookup: str, labels: tuple[str, ...], seed: int = 0):
    """(ModelConfig, the exported weights) of a tiny Keras model, seeded; the n-gram table random, its row 0 zero.

    The table's weights (standard deviation 3) spread the logits as a trained
    table does, so most rows have a clear top label, as trained models' rows do.
    """
    import keras

    from sentilite.export.weights import extract_weights
    from sentilite.runtime.tokenizer import TokenizerConfig
    from sentilite.train.keras_model import build_model
    from sentilite.train.ngrams import place_keys

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    config = ModelConfig(cell=cell, embedding_dim=8, units=8, window=16, ngram_buckets=BUCKETS, ngram_lookup=lookup,
                         labels=labels)
    model, _ = build_model(config, TokenizerConfig(vocab_size=VOCAB, maxlen=MAXLEN))
    layer = model.get_layer("ngrams")
    values = [w.numpy() for w in layer.weights]
    values[0] = rng.normal(0, 3, values[0].shape).astype(np.float32)
    values[0][0] = 0.0  # padding's row
    if lookup == "dictionary":
        dictionary, _ = place_keys(np.unique(rng.integers(0, VOCAB * VOCAB, 60)), BUCKETS)
        values[1] = dictionary.displacements.astype(np.float32)
        values[2] = dictionary.fingerprints.astype(np.float32)
    layer.set_weights(values)
    return config, extract_weights(model, config)


def _rows(n: int, seed: int) -> np.ndarray:
    """Rows of 3..MAXLEN ids, front-padded as the runtime pads them."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, VOCAB, (n, MAXLEN)).astype(np.int32)
    for row, length in zip(ids, rng.integers(3, MAXLEN + 1, n)):
        row[: MAXLEN - length] = 0
    return ids


ROWS, CALIBRATION = _rows(400, seed=5), _rows(200, seed=6)


def _run(content: bytes, ids: np.ndarray):
    """(float32 answers, the output's details) of the file on ``ids`` as one batch."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    source, (target,) = interpreter.get_input_details()[0], interpreter.get_output_details()
    interpreter.resize_tensor_input(source["index"], list(ids.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], ids)
    interpreter.invoke()
    out = interpreter.get_tensor(target["index"])
    if target["dtype"] != np.float32:  # full-integer: probability = (q - zero point) * scale
        scale, zero_point = target["quantization"]
        out = (out.astype(np.float32) - zero_point) * scale
    return out, target, interpreter.get_signature_list()


def _check(cell: str, lookup: str, labels: tuple[str, ...], precision: str, int8_ties_agree: bool = False) -> dict:
    """Convert, run, and hold the file to its precision's tolerance; (the comparison's numbers, the file).

    ``int8_ties_agree``: a row whose int8 answer has two top labels of the
    same value (the cell's logits are int8, one step ~0.05 of a logit) agrees
    when the reference's top label is one of them.
    """
    config, weights = _model(cell, lookup, labels)
    reference = NumpySentimentModel(config, weights, MAXLEN, VOCAB).predict(ROWS)
    content = convert.convert_tflite(config, weights, precision, MAXLEN, VOCAB, CALIBRATION)
    answers, target, signatures = _run(content, ROWS)
    assert reference.shape == answers.shape == (len(ROWS), len(labels))
    assert target["name"] == "probabilities" and list(target["shape_signature"]) == [-1, len(labels)]
    assert signatures["serving_default"]["outputs"] == ["probabilities"]
    assert np.abs(answers.sum(axis=1) - 1).max() <= 1e-5  # the int8 file's softmax is float too
    stats = compare(reference, answers)
    tolerance = TOLERANCES.for_precision(precision)
    if tolerance.max_abs_diff is not None:
        assert stats["max_abs_diff"] <= tolerance.max_abs_diff, stats
    agreement = stats["agreement"]
    if int8_ties_agree:
        expected = reference.argmax(axis=1)
        tops = answers == answers.max(axis=1, keepdims=True)
        agreement = float(np.mean(tops[np.arange(len(expected)), expected]))
        stats = {**stats, "agreement_ties_agreeing": agreement}
    assert agreement >= tolerance.min_agreement, stats
    return stats, content


@pytest.mark.parametrize("precision", ["fp32", "fp16", "dynamic-int8", "int8"])
@pytest.mark.parametrize("lookup", ["hashed", "dictionary"])
def test_three_labels_at_every_precision_answer_like_the_numpy_reference(lookup, precision, tmp_path):
    from sentilite.export.tflite.describe import describe_tflite

    stats, content = _check("gru", lookup, THREE, precision)
    assert stats["max_abs_diff"] < {"fp32": 1e-6, "fp16": 1e-3, "dynamic-int8": 1e-6, "int8": 0.1}[precision]
    if precision == "int8":  # on integers up to the logits; then the n-gram sum's scale, the sum, the softmax in float
        (tmp_path / "m.tflite").write_bytes(content)
        described = describe_tflite(tmp_path / "m.tflite")
        assert {"subgraph 0: ngram_sum_to_float", "subgraph 0: ngram_sum_scale",
                "subgraph 0: probabilities"} <= set(described["float_tensors"]), described["float_tensors"]
        assert "SOFTMAX" in described["ops"] and "DEQUANTIZE" in described["ops"]
        assert _float_writers(content) == ["ADD", "CAST", "DEQUANTIZE", "MUL", "SOFTMAX"]


def _float_writers(content: bytes) -> list[str]:
    """Names of the main subgraph's operators that write a float32 tensor."""
    from sentilite.export.tflite.schema import builtin_code, operator_names, tflite_schema

    graph = read_model(content)
    main = graph.subgraphs[0]
    return sorted(operator_names()[builtin_code(graph, op)] for op in main.operators
                  if any(main.tensors[t].type == tflite_schema().TensorType.FLOAT32 for t in op.outputs))


def test_the_int8_file_of_three_labels_answers_in_float():
    """Its softmax reads the logits dequantized, so the probabilities have no 1/256 step and no ties."""
    config, weights = _model("gru", "dictionary", THREE)
    content = convert.convert_tflite(config, weights, "int8", MAXLEN, VOCAB, CALIBRATION)
    answers, target, _ = _run(content, ROWS)
    assert target["dtype"] == np.float32 and target["quantization"] == (0.0, 0)
    assert not np.any((answers == answers.max(axis=1, keepdims=True)).sum(axis=1) > 1)
    assert len(np.unique(answers)) > 1000  # measured: 1200 distinct values of 1200; 1/256 steps allow 257


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_every_cell_of_three_labels(cell, precision):
    _check(cell, "hashed", THREE, precision)


@pytest.mark.parametrize("precision", ["dynamic-int8", "int8"])
def test_fifty_labels(precision):
    """At 50 labels the int8 file's cell logits (int8 steps) still tie some top labels (2 of the 4 rows of 400
    whose argmax differs here): those count as agreeing when the reference's top label is among the tied."""
    stats, _ = _check("lstm", "dictionary", tuple(f"label {k}" for k in range(50)), precision,
                      int8_ties_agree=precision == "int8")
    if precision == "int8":
        assert stats["agreement"] >= 0.985 and stats["max_abs_diff"] < 0.03, stats  # measured: 0.99, 0.022


def test_the_dynamic_int8_table_takes_one_scale_per_label(monkeypatch):
    """A table big enough for the dynamic-range quantizer (>= 1024 weights) is stored again per column,
    and answers closer to the reference than the converter's one scale when the columns differ in size."""
    config = ModelConfig(cell="gru", embedding_dim=8, units=8, window=16, ngram_buckets=400, labels=THREE)
    rng = np.random.default_rng(2)
    _, weights = _model("gru", "hashed", THREE)
    table = rng.normal(0, 3, (VOCAB + 400, 3)).astype(np.float32) * np.array([1.0, 0.1, 0.02], np.float32)
    table[0] = 0.0
    weights = {**weights, "ngram_weights": table}
    content = convert.convert_tflite(config, weights, "dynamic-int8", MAXLEN, VOCAB)
    graph = read_model(content)
    (stored,) = [t for t in graph.subgraphs[0].tensors if list(t.shape) == [VOCAB + 400, 3]]
    assert list(stored.quantization.scale) == pytest.approx(list(np.abs(table).max(axis=0) / 127))
    assert stored.quantization.quantizedDimension == 1
    assert per_label_table_scales(graph, table, VOCAB) is False  # nothing of one scale left to store again
    reference = NumpySentimentModel(config, weights, MAXLEN, VOCAB).predict(ROWS)
    per_label = _run(content, ROWS)[0]
    monkeypatch.setattr(convert, "per_label_table_scales", lambda graph, weights, vocab_size: False)
    one_scale = _run(convert.convert_tflite(config, weights, "dynamic-int8", MAXLEN, VOCAB), ROWS)[0]
    # measured: mean |difference| 0.0013 against 0.0037, top labels 99.25% against 97.25%
    assert np.abs(per_label - reference).mean() < np.abs(one_scale - reference).mean() / 2
    assert compare(reference, per_label)["agreement"] >= compare(reference, one_scale)["agreement"] + 0.01


def test_two_labels_keep_their_single_output():
    config, weights = _model("gru", "hashed", ("negative", "positive"))
    content = convert.convert_tflite(config, weights, "fp32", MAXLEN, VOCAB)
    answers, target, signatures = _run(content, ROWS)
    assert list(target["shape_signature"]) == [-1, 1] and signatures["serving_default"]["outputs"] == ["output_0"]
    reference = NumpySentimentModel(config, weights, MAXLEN, VOCAB).predict(ROWS)
    assert np.abs(answers.reshape(-1) - reference).max() < 1e-6


def test_int8_calibrated_on_rows_of_one_label_answers_the_other_label_wrong():
    """Why int8 calibration rows must hold texts of every label: the converter fits each tensor's int8 range to them.

    Rows that all score P(positive) >= 0.5 give the logits a range of [0, max], so
    every text scoring below 0.5 reads 0.5 or more (on a label-sorted file of
    Chinese reviews, the first 300 fitting reviews were all positive: 50.3% label
    agreement); rows of both labels keep the file within its tolerance.
    """
    config, weights = _model("gru", "dictionary", ("negative", "positive"))
    reference = NumpySentimentModel(config, weights, MAXLEN, VOCAB)
    pool = _rows(600, seed=7)
    positive_rows = pool[reference.predict(pool) >= 0.5][: len(CALIBRATION)]
    expected = reference.predict(ROWS)
    negative = expected < 0.5
    assert len(positive_rows) == len(CALIBRATION) and 0.25 < negative.mean() < 0.75
    one_label = _run(convert.convert_tflite(config, weights, "int8", MAXLEN, VOCAB, positive_rows), ROWS)[0]
    both_labels = _run(convert.convert_tflite(config, weights, "int8", MAXLEN, VOCAB, CALIBRATION), ROWS)[0]
    assert np.all(one_label.reshape(-1)[negative] >= 0.5)
    assert compare(expected, both_labels.reshape(-1))["agreement"] >= TOLERANCES.for_precision("int8").min_agreement
