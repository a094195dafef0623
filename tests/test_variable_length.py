"""The model's arithmetic on tiny random weights: numpy reference, ONNX, TFLite and Keras agree exactly.

Rows shorter than maxlen are read as if left-padded: the cell starts from the
state the padding would reach and the n-gram branch ignores padding, so a
cut row gives what the whole row gives.
"""
import numpy as np
import pytest

from sentilite.runtime.architecture import ModelConfig
from sentilite.runtime.backends import Backend
from sentilite.runtime.model import run_batches
from sentilite.runtime.numpy_model import NumpySentimentModel
from sentilite.runtime.recurrence import NgramDictionary, Recurrence, ngram_keys, ngram_logit, ngram_rows
from sentilite.shared.errors import ModelFileError
from sentilite.train.ngrams import place_keys

CELLS = ("rnn", "lstm", "gru")
MAXLEN, VOCAB, BUCKETS = 60, 50, 97
LOOKUPS = ("hashed", "dictionary")


def random_weights(cell: str, config: ModelConfig, seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    gates, units, emb = {"rnn": 1, "lstm": 4, "gru": 3}[cell], config.units, config.embedding_dim
    weights = {
        "embedding": rng.normal(0, 0.5, (VOCAB, emb)),
        "kernel": rng.normal(0, 0.5, (emb, gates * units)),
        "recurrent_kernel": rng.normal(0, 0.25, (units, gates * units)),  # contractive: converges
        "bias": rng.normal(0, 0.1, (2, gates * units) if cell == "gru" else (gates * units,)),
        "dense_kernel": rng.normal(0, 1.0, (units, 1)),
        "dense_bias": rng.normal(0, 0.1, (1,)),
    }
    if config.ngram_buckets:
        weights["ngram_weights"] = rng.normal(0, 1.0, (VOCAB + config.ngram_buckets,))
        weights["ngram_weights"][0] = 0.0
    if config.ngram_dictionary:
        dictionary = tiny_dictionary(seed)
        weights.update(ngram_displacements=dictionary.displacements, ngram_fingerprints=dictionary.fingerprints)
    return {k: v.astype(np.float32) for k, v in weights.items()}


def tiny_dictionary(seed=0) -> NgramDictionary:
    """80 of the bigram and trigram codes of the test rows, in BUCKETS slots: rows hit and miss it."""
    keys, valid = ngram_keys(padded_rows(LENGTHS), VOCAB)
    codes = np.random.default_rng(seed).permutation(np.unique(keys[valid]))[:80]
    return place_keys(codes, BUCKETS)[0]


def dictionary_of(config, weights):
    if not config.ngram_dictionary:
        return None
    return NgramDictionary(weights["ngram_displacements"], weights["ngram_fingerprints"])


def config_for(cell, ngrams=True, window=24, lookup="hashed") -> ModelConfig:
    return ModelConfig(cell=cell, embedding_dim=8, units=6, window=window, ngram_buckets=BUCKETS if ngrams else 0,
                       ngram_lookup=lookup)


def padded_rows(lengths, seed=1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ids = np.zeros((len(lengths), MAXLEN), np.int32)
    for row, n in enumerate(lengths):
        if n:
            ids[row, MAXLEN - n:] = rng.integers(1, VOCAB, n)
    return ids


def trimmed(ids: np.ndarray) -> list[np.ndarray]:
    """Each row alone, without its leading padding (one id at least)."""
    out = []
    for row in ids:
        start = int(np.argmax(row != 0)) if row.any() else MAXLEN - 1
        out.append(row[None, start:])
    return out


def reference(cell, config, weights, ids) -> np.ndarray:
    """Straight from the definition: zero state, every id of the window, padding included."""
    cellmath = Recurrence(cell, weights["kernel"], weights["recurrent_kernel"], weights["bias"], weights["embedding"])
    window = ids[:, -config.steps(MAXLEN):]
    state = cellmath.run(window, cellmath.zero_state(len(ids)))
    logit = (state[0] @ weights["dense_kernel"] + weights["dense_bias"]).reshape(-1)
    if config.ngram_buckets:
        logit = logit + ngram_logit(ids, weights["ngram_weights"], VOCAB, config.ngram_buckets,
                                    dictionary_of(config, weights))
    return 1 / (1 + np.exp(-logit))


LENGTHS = [0, 1, 2, 3, 17, 23, 24, 25, 59, 60]


def test_ngram_rows_hash_bigrams_of_real_ids_and_count_them():
    ids = np.array([[0, 0, 5, 7, 5], [0, 0, 0, 0, 3], [0, 0, 0, 0, 0]])
    rows, count = ngram_rows(ids, vocab_size=10, buckets=7)
    # bigram (5, 7): 10 + (57 % 7 = 1) = 11; (7, 5): 10 + (75 % 7 = 5) = 15; bigrams with padding read row 0
    assert rows.tolist() == [[0, 0, 5, 7, 5, 0, 0, 11, 15], [0, 0, 0, 0, 3, 0, 0, 0, 0], [0] * 9]
    assert count.tolist() == [5, 1, 0]
    weights = np.arange(17, dtype=np.float32)
    weights[0] = 0
    np.testing.assert_allclose(ngram_logit(ids, weights, 10, 7), [(5 + 7 + 5 + 11 + 15) / np.sqrt(5), 3.0, 0.0])


@pytest.mark.parametrize("cell", CELLS)
def test_pad_states_start_at_zero_and_stop_once_converged(cell):
    w = random_weights(cell, config_for(cell))
    cellmath = Recurrence(cell, w["kernel"], w["recurrent_kernel"], w["bias"], w["embedding"])
    states = cellmath.pad_states(MAXLEN)
    assert len(states) == (2 if cell == "lstm" else 1)
    assert not states[0][0].any()  # no padding read yet: the zero state
    full = cellmath.pad_states(MAXLEN, tolerance=0.0)
    assert len(states[0]) < len(full[0]) <= MAXLEN + 1
    k = len(states[0]) - 1
    for short, whole in zip(states, full):
        np.testing.assert_array_equal(short, whole[: k + 1])
        assert np.abs(whole[k:] - short[k]).max() <= 1e-6


@pytest.mark.parametrize("ngrams, window, lookup", [(True, 24, "hashed"), (True, 24, "dictionary"),
                                                    (False, None, "hashed")])
@pytest.mark.parametrize("cell", CELLS)
def test_numpy_model_reads_short_rows_as_left_padded(cell, ngrams, window, lookup):
    config = config_for(cell, ngrams, window, lookup)
    weights = random_weights(cell, config)
    model = NumpySentimentModel(config, weights, MAXLEN, VOCAB)
    ids = padded_rows(LENGTHS)
    expected = reference(cell, config, weights, ids)
    np.testing.assert_allclose(model.predict_positive(ids), expected, atol=2e-6)
    short = np.concatenate([model.predict_positive(row) for row in trimmed(ids)])
    np.testing.assert_allclose(short, expected, atol=2e-6)
    with pytest.raises(ValueError, match="longer than the model's 60"):
        model.predict_positive(np.ones((1, MAXLEN + 1), np.int32))
    with pytest.raises(ValueError, match="ids outside 0..49"):
        model.predict_positive(np.full((1, 3), VOCAB, np.int32))


def _context(cell, config, weights):
    from sentilite.export.registry import ExportContext

    return ExportContext(weights=weights, model=config, maxlen=MAXLEN, vocab_size=VOCAB, name="test",
                         calibration_ids=padded_rows([5, 30, 60]), tokenizer_json=b"{}",
                         labels=("negative", "positive"))


@pytest.mark.parametrize("ngrams, window, lookup", [(True, 24, "hashed"), (True, 24, "dictionary"),
                                                    (False, None, "hashed")])
@pytest.mark.parametrize("cell", CELLS)
def test_onnx_graph_matches_the_reference_on_whole_and_cut_rows(cell, ngrams, window, lookup):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from sentilite.export.onnx import build_fp32

    config = config_for(cell, ngrams, window, lookup)
    weights = random_weights(cell, config)
    session = ort.InferenceSession(build_fp32(_context(cell, config, weights)).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    ids = padded_rows(LENGTHS)
    expected = reference(cell, config, weights, ids)
    np.testing.assert_allclose(session.run(None, {"ids": ids})[0].reshape(-1), expected, atol=2e-6)
    short = np.concatenate([session.run(None, {"ids": row})[0].reshape(-1) for row in trimmed(ids)])
    np.testing.assert_allclose(short, expected, atol=2e-6)


@pytest.mark.parametrize("lookup", LOOKUPS)
@pytest.mark.parametrize("cell", CELLS)
def test_tflite_graph_matches_the_reference_on_whole_and_cut_rows(cell, lookup):
    pytest.importorskip("tensorflow")
    from ai_edge_litert.interpreter import Interpreter

    from sentilite.export.tflite.convert import convert_tflite as convert

    config = config_for(cell, lookup=lookup)
    weights = random_weights(cell, config)
    interpreter = Interpreter(model_content=convert(config, weights, "fp32", MAXLEN, VOCAB))

    def run(rows):
        index = interpreter.get_input_details()[0]["index"]
        interpreter.resize_tensor_input(index, list(rows.shape))
        interpreter.allocate_tensors()
        interpreter.set_tensor(index, rows)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).reshape(-1)

    ids = padded_rows(LENGTHS)
    expected = reference(cell, config, weights, ids)
    np.testing.assert_allclose(run(ids), expected, atol=2e-6)
    np.testing.assert_allclose(np.concatenate([run(row) for row in trimmed(ids)]), expected, atol=2e-6)


@pytest.mark.parametrize("lookup", LOOKUPS)
def test_keras_ngram_layer_matches_the_reference(lookup):
    pytest.importorskip("keras")
    from sentilite.train.keras_model import NgramLogit

    config = config_for("gru", lookup=lookup)
    weights = random_weights("gru", config)
    layer = NgramLogit(VOCAB, BUCKETS, lookup)
    layer.build((None, MAXLEN))
    tables = [weights["ngram_weights"]]
    if lookup == "dictionary":
        tables += [weights["ngram_displacements"], weights["ngram_fingerprints"]]
    layer.set_weights(tables)
    ids = padded_rows(LENGTHS)
    out = np.asarray(layer(ids)).reshape(-1)
    expected = ngram_logit(ids, weights["ngram_weights"], VOCAB, BUCKETS, dictionary_of(config, weights))
    np.testing.assert_allclose(out, expected, atol=2e-6)
    np.testing.assert_allclose(np.concatenate([np.asarray(layer(row)).reshape(-1) for row in trimmed(ids)]),
                               expected, atol=2e-6)


class RecordingBackend:
    variable_length = True

    def __init__(self, model):
        self.model, self.widths = model, []

    def run(self, ids):
        self.widths.append(ids.shape)
        return self.model.predict_positive(ids)


def test_run_batches_groups_by_length_and_keeps_input_order():
    config = config_for("gru")
    model = NumpySentimentModel(config, random_weights("gru", config), MAXLEN, VOCAB)
    lengths = [60, 2, 0, 30, 3, 31, 1, 59]
    ids = padded_rows(lengths)
    backend = RecordingBackend(model)
    out = run_batches(backend, ids, batch_size=3)
    np.testing.assert_allclose(out, model.predict_positive(ids), atol=2e-6)
    # lengths 60 2 0 30 3 31 1 59 -> widths rounded up to 16s, at most 60: 60 16 16 32 16 32 16 60
    assert backend.widths == [(3, 16), (1, 16), (2, 32), (2, 60)]

    backend.widths.clear()
    run_batches(backend, padded_rows([0, 0]), batch_size=8)
    assert backend.widths == [(2, 16)]  # empty texts still get padding steps

    alone = np.concatenate([run_batches(backend, row[None], 1) for row in ids])
    # neighbours never change an answer (beyond BLAS rounding, which differs with the batch size)
    np.testing.assert_allclose(run_batches(backend, ids, 8), alone, atol=1e-6)

    backend.widths.clear()  # whole rows on request (the benchmark times the engine alone so)
    np.testing.assert_allclose(run_batches(backend, ids, batch_size=5, cut=False), model.predict_positive(ids),
                               atol=1e-6)
    assert backend.widths == [(5, 60), (3, 60)]
    backend.variable_length = False  # a fixed-length file always gets whole rows, in input order
    backend.widths.clear()
    np.testing.assert_allclose(run_batches(backend, ids, batch_size=5), model.predict_positive(ids), atol=1e-6)
    assert backend.widths == [(5, 60), (3, 60)]


@pytest.mark.parametrize("truncating", ["pre", "post"])
def test_cut_row_is_the_cut_of_the_padded_row(truncating):
    from sentilite.runtime.model import cut_row, cut_widths
    from sentilite.runtime.tokenizer import TokenizerConfig, pad_ids

    config = TokenizerConfig(vocab_size=VOCAB, maxlen=MAXLEN, truncating=truncating)
    rng = np.random.default_rng(3)
    for n in [0, 1, 15, 16, 17, 47, 59, 60, 61, 200]:
        ids = rng.integers(1, VOCAB, n).tolist()
        padded = pad_ids([ids], MAXLEN, "pre", truncating)
        width = int(cut_widths(padded)[0])
        row = cut_row(ids, config)
        assert row.dtype == np.int32
        np.testing.assert_array_equal(row, padded[:, MAXLEN - width:])


def test_one_text_is_answered_from_its_cut_row_as_in_a_batch():
    from sentilite.runtime.model import SentimentModel
    from sentilite.runtime.tokenizer import Tokenizer, TokenizerConfig

    words = ["<pad>", "<oov>"] + [f"w{i}" for i in range(2, VOCAB)]
    tokenizer = Tokenizer(TokenizerConfig(vocab_size=VOCAB, maxlen=MAXLEN), words)
    config = config_for("gru")
    backend = RecordingBackend(NumpySentimentModel(config, random_weights("gru", config), MAXLEN, VOCAB))
    model = SentimentModel(backend, tokenizer)
    rng = np.random.default_rng(4)
    texts = ["", "w3", "nothing known here"] + [
        " ".join(f"w{i}" for i in rng.integers(2, VOCAB + 5, n)) for n in (15, 16, 17, 33, 60, 75)]
    together = model.predict_proba(texts)
    for text, expected in zip(texts, together):
        backend.widths.clear()
        one = model.predict_proba([text])
        np.testing.assert_allclose(one[0], expected, atol=1e-6)
        # one text's answer is built from a Python float: still float32, and P(negative) is float32's 1 - p
        assert one.dtype == np.float32 and one.shape == (1, 2)
        assert one[0, 0] == np.float32(1.0) - one[0, 1]
        n = min(len(tokenizer.encode(text)), MAXLEN)
        assert backend.widths == [(1, min(MAXLEN, max(1, -(-n // 16)) * 16))]
        np.testing.assert_array_equal(model.encode_one(text), tokenizer.encode_batch([text])[:, -backend.widths[0][1]:])
        assert model.predict([text]) == [model.labels[int(expected[1] >= 0.5)]]
    backend.variable_length = False  # a fixed-length file gets the whole padded row
    backend.widths.clear()
    np.testing.assert_allclose(model.predict_proba([texts[4]]), together[4:5], atol=1e-6)
    assert backend.widths == [(1, MAXLEN)]
    np.testing.assert_array_equal(model.encode_one(texts[4]), tokenizer.encode_batch([texts[4]]))
    with pytest.raises(TypeError, match="at index 0"):
        model.encode_one(3)


def test_one_minus_p_via_a_python_float_is_float32_arithmetic_exactly():
    """The one-text predict_proba rounds 1 - p from float64; it must equal float32's own 1 - p bit for bit."""
    rng = np.random.default_rng(7)
    p = np.concatenate([
        rng.random(100_000, dtype=np.float32),
        np.float32(2.0) ** -np.arange(1, 150, dtype=np.float32),  # down to the smallest subnormal
        np.nextafter(np.float32(1.0), np.float32(0.0)) - np.arange(1000, dtype=np.float32) * np.float32(2.0 ** -24),
        np.array([0.0, 0.5, 1.0], dtype=np.float32),
    ])
    via_float = np.array([1.0 - x for x in p.tolist()], dtype=np.float32)
    np.testing.assert_array_equal(via_float, np.float32(1.0) - p)


class _AnsweringBackend(Backend):
    def __init__(self, values):
        self.values, self._source = np.asarray(values, dtype=np.float32), "tiny.onnx"

    def _run(self, ids):
        return self.values


@pytest.mark.parametrize("values, message", [
    ([float("nan")], "tiny.onnx: the file computed a non-finite probability"),
    ([0.5, float("inf")], "tiny.onnx: the file computed a non-finite probability"),
    ([0.5, 0.5, 0.5], "tiny.onnx: the file gives 3 values for 2 rows"),
])
def test_backend_run_refuses_non_finite_or_miscounted_answers(values, message):
    rows = np.ones((len(values) if len(values) < 3 else 2, 4), dtype=np.int32)
    with pytest.raises(ModelFileError, match=message):
        _AnsweringBackend(values).run(rows)
    assert _AnsweringBackend([0.25] * len(rows)).run(rows).tolist() == [0.25] * len(rows)
