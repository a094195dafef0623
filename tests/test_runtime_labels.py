"""The runtime on models of three to fifty labels, and models of two answering exactly as before.

Unit tests on tiny .npz files of random weights (no training): the
tokenizer of test_hostile_files, a GRU with an n-gram branch whose head has
one logit per label; ONNX and TFLite files of the same weights where their
engines are installed. The bundled model and a file as sentilite 0.3 wrote
it are held to the answers the runtime gave before it read N labels.
"""
import json
import subprocess
import sys

import numpy as np
import pytest

from sentilite.runtime.architecture import ModelConfig
from sentilite.runtime.backends import Backend, NumpyBackend
from sentilite.runtime.embedded import key
from sentilite.runtime.model import NO_KNOWN_WORDS, NO_TEXT, SentimentModel, load, run_batches, to_probabilities
from sentilite.runtime.numpy_model import NumpySentimentModel, expected_shapes
from sentilite.shared.errors import ConfigError, ModelFileError

from test_hostile_files import MAXLEN, VOCAB, _tokenizer_json, write_manifest

CLI = [sys.executable, "-m", "sentilite.cli"]
THREE = ("negative", "neutral", "positive")
FIVE = ("1", "2", "3", "4", "5")
TEXTS = ["w1 w2 w3", "w7", "", "w30 w31 w32 w33 w34 w35 w36 w37 w2 w3 w4 w5 w6 w9", "w5 w5 w9 w12",
         "nothing known", "w3 w3 w3 w3 w3 w3 w3 w3 w3 w3 w3 w3 w3 w3 w3 w3 w3 w3 w3 w3 w8", "w20 w21"]


def config_of(labels) -> ModelConfig:
    return ModelConfig(cell="gru", embedding_dim=4, units=4, window=8, ngram_buckets=7, labels=tuple(labels))


def weights_of(config: ModelConfig, seed: int = 0) -> dict:
    """Random weights of the shapes a file of ``config`` holds; large enough that the labels' answers differ."""
    rng = np.random.default_rng(seed)
    weights = {k: rng.normal(0, 0.8, s).astype(np.float32) for k, s in expected_shapes(config, VOCAB).items()}
    weights["ngram_weights"][0] = 0.0  # padding reads no weight (recurrence.ngram_rows)
    return weights


def metadata_of(config: ModelConfig, labels=None) -> dict:
    """The metadata export writes for ``config``; ``labels`` in place of its labels."""
    from sentilite.export.file_metadata import embedded_metadata

    return embedded_metadata(_tokenizer_json(), config, "fp32", "numpy", config.labels if labels is None else labels,
                             MAXLEN, VOCAB, "tiny")


def write_labelled_npz(path, labels, seed: int = 0, metadata: dict | None = None):
    from sentilite.export.to_numpy import export_numpy

    config = config_of(labels)
    return export_numpy(weights_of(config, seed), path, metadata=metadata_of(config) if metadata is None else metadata)


def reference(labels, seed: int = 0) -> NumpySentimentModel:
    config = config_of(labels)
    return NumpySentimentModel(config, weights_of(config, seed), MAXLEN, VOCAB)


@pytest.fixture(params=[THREE, FIVE], ids=["3 labels", "5 labels"])
def labelled(request, tmp_path):
    """(labels, the loaded .npz, the numpy reference of the same weights)."""
    labels = request.param
    return labels, load(write_labelled_npz(tmp_path / "model.fp32.npz", labels)), reference(labels)


# -- N labels --------------------------------------------------------------------------------------------------
def test_predict_proba_is_the_numpy_reference_in_label_order(labelled):
    labels, model, numpy_model = labelled
    assert model.labels == labels and model.backend.outputs == len(labels)
    proba = model.predict_proba(TEXTS)
    assert proba.dtype == np.float32 and proba.shape == (len(TEXTS), len(labels))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    expected = numpy_model.predict(model.tokenizer.encode_batch(TEXTS))  # whole padded rows, one batch
    np.testing.assert_allclose(proba, expected, atol=1e-6)
    assert len(set(np.argmax(proba, axis=1).tolist())) >= 2  # the weights make the texts disagree
    # one text at a time (its cut row), in small batches, in reverse: the same rows
    np.testing.assert_allclose(np.concatenate([model.predict_proba([t]) for t in TEXTS]), proba, atol=1e-6)
    model.batch_size = 3
    np.testing.assert_allclose(model.predict_proba(TEXTS), proba, atol=1e-6)
    np.testing.assert_array_equal(model.predict_proba(TEXTS[::-1]), model.predict_proba(TEXTS)[::-1])
    assert model.predict_proba([]).shape == (0, len(labels))
    raw = model.predict_ids(model.tokenizer.encode_batch(TEXTS))  # the raw answer of a file of N labels is (n, N)
    assert raw.shape == (len(TEXTS), len(labels))
    np.testing.assert_array_equal(to_probabilities(raw, len(labels)), raw)


def test_predict_and_predictions_give_the_most_probable_label(labelled):
    labels, model, _ = labelled
    proba = model.predict_proba(TEXTS)
    top = [labels[k] for k in np.argmax(proba, axis=1)]
    assert model.predict(TEXTS) == top
    predictions = model.predictions(TEXTS)
    assert [p.label for p in predictions] == top
    for p, row in zip(predictions, proba):
        assert p.probabilities == tuple(row.tolist())  # label order, float32's values
        assert p.score == max(p.probabilities) == p.probabilities[labels.index(p.label)]
    assert [p.warning for p in predictions][2:6] == [NO_TEXT, None, None, NO_KNOWN_WORDS]
    assert [p.known_words for p in predictions][:3] == [3, 1, 0]
    assert list(model.iter_predict(TEXTS)) == [(p.label, p.score) for p in predictions]
    assert predictions[0]._fields == ("label", "score", "known_words", "warning", "probabilities")


def test_a_model_takes_only_labels_its_file_answers(labelled):
    labels, model, _ = labelled
    with pytest.raises(ConfigError, match=f"^2 labels for a file of {len(labels)} labels$"):
        SentimentModel(model.backend, model.tokenizer, ("negative", "positive"))
    with pytest.raises(ConfigError, match=r"^3 labels for a file of one output \(two labels\)$"):
        SentimentModel(_AnsweringBackend([0.5], 1), model.tokenizer, THREE)
    assert SentimentModel(model.backend, model.tokenizer, list(labels)).labels == labels


def test_run_batches_keeps_input_order_for_n_labels(labelled):
    labels, model, numpy_model = labelled
    rng = np.random.default_rng(5)
    ids = np.zeros((9, MAXLEN), np.int32)
    for row, n in enumerate([12, 0, 3, 11, 1, 7, 12, 2, 5]):
        ids[row, MAXLEN - n:] = rng.integers(1, VOCAB, n)
    backend = model.backend
    assert isinstance(backend, NumpyBackend) and backend.variable_length
    whole = numpy_model.predict(ids)
    alone = np.concatenate([backend.run(row[None]) for row in ids])
    assert whole.shape == alone.shape == (9, len(labels))
    for batch_size in (1, 2, 4, 64):
        np.testing.assert_allclose(run_batches(backend, ids, batch_size), whole, atol=1e-6)
        np.testing.assert_allclose(run_batches(backend, ids, batch_size, cut=False), whole, atol=1e-6)
    np.testing.assert_allclose(alone, whole, atol=1e-6)
    assert run_batches(backend, ids[:0], 4).shape == (0, len(labels))


class _AnsweringBackend(Backend):
    def __init__(self, values, outputs):
        self.values, self.outputs, self._source = np.asarray(values, dtype=np.float32), outputs, "tiny.onnx"

    def _run(self, ids):
        return self.values


@pytest.mark.parametrize("values, message", [
    (np.full(5, 0.2), "tiny.onnx: the file gives 5 values for 2 rows of 3 labels"),
    (np.full((2, 2), 0.5), "tiny.onnx: the file gives 4 values for 2 rows of 3 labels"),
    ([[0.2, 0.3, 0.5], [0.1, float("nan"), 0.9]], "tiny.onnx: the file computed a non-finite probability"),
    ([[0.2, 0.3, float("inf")], [0.1, 0.0, 0.9]], "tiny.onnx: the file computed a non-finite probability"),
])
def test_backend_run_checks_the_count_and_the_values_of_n_labels(values, message):
    rows = np.ones((2, 4), dtype=np.int32)
    with pytest.raises(ModelFileError, match=message):
        _AnsweringBackend(values, 3).run(rows)
    good = [[0.2, 0.3, 0.5], [0.1, 0.0, 0.9]]
    assert _AnsweringBackend(good, 3).run(rows).tolist() == np.float32(good).tolist()
    # a flat answer of n x N values (an engine that drops the shape) is read row by row
    assert _AnsweringBackend(np.ravel(good), 3).run(rows).shape == (2, 3)


def test_to_probabilities_of_either_answer():
    p = np.float32([0.25, 0.9, 1e-8, 0.5])
    two = to_probabilities(p, 2)
    assert two.dtype == np.float32 and two.shape == (4, 2)
    np.testing.assert_array_equal(two[:, 1], p)
    np.testing.assert_array_equal(two[:, 0], np.float32(1.0) - p)
    np.testing.assert_array_equal(to_probabilities(p[:, None], 2), two)  # an engine's (n, 1)
    three = np.float32([[0.2, 0.3, 0.5]])
    assert to_probabilities(three, 3) is three
    with pytest.raises(ValueError, match=r"a model of 3 labels, \(n, 3\), got shape \(4,\)"):
        to_probabilities(p, 3)
    with pytest.raises(ValueError, match=r"a model of 2 labels, \(n,\) or \(n, 2\), got shape \(1, 3\)"):
        to_probabilities(three, 2)


def test_fifty_labels_load_and_answer(tmp_path):
    labels = tuple(f"class {i}" for i in range(50))
    model = load(write_labelled_npz(tmp_path / "m.npz", labels))
    proba = model.predict_proba(TEXTS)
    assert model.labels == labels and proba.shape == (len(TEXTS), 50)
    np.testing.assert_allclose(proba, reference(labels).predict(model.tokenizer.encode_batch(TEXTS)), atol=1e-6)


def test_a_package_of_n_labels_loads_and_answers(tmp_path, labelled):
    labels, single, _ = labelled
    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "tokenizer.json").write_bytes(_tokenizer_json())
    write_labelled_npz(folder / "model.fp32.npz", labels)
    write_manifest(folder, [("model.fp32.npz", "numpy", "fp32")], labels=list(labels))
    model = load(folder)
    assert model.labels == labels
    np.testing.assert_array_equal(model.predict_proba(TEXTS), single.predict_proba(TEXTS))


def test_an_onnx_file_of_n_labels_answers_as_the_npz(tmp_path):
    """Parity of two formats through the runtime: ONNX (output ``probabilities`` [n, N]) and numpy."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from sentilite.export.onnx import export_onnx
    from sentilite.export.registry import ExportContext

    config = config_of(THREE)
    rows = np.random.default_rng(1).integers(1, VOCAB, (16, MAXLEN)).astype(np.int32)
    ctx = ExportContext(weights_of(config), config, MAXLEN, VOCAB, "tiny", rows, _tokenizer_json(), THREE)
    path = export_onnx(ctx, "fp32", tmp_path / "m.onnx", metadata={**metadata_of(config), key("format"): "onnx"})
    model = load(path)
    assert model.info["backend"] == "onnxruntime" and model.labels == THREE and model.backend.outputs == 3
    numpy_ = load(write_labelled_npz(tmp_path / "m.npz", THREE))
    np.testing.assert_allclose(model.predict_proba(TEXTS), numpy_.predict_proba(TEXTS), atol=1e-5)
    assert model.predict(TEXTS) == numpy_.predict(TEXTS)


@pytest.mark.slow  # two conversions: ~13 s on 2 cores once TensorFlow is imported (~20 s more when it is not)
def test_tflite_files_of_n_labels_load_and_answer_as_the_npz(tmp_path):
    """The runtime's verifier takes the softmax; an int8 file's int8 answer is dequantized per probability."""
    pytest.importorskip("tensorflow")
    pytest.importorskip("ai_edge_litert")
    from sentilite.export.tflite.convert import add_metadata, convert_tflite

    config = config_of(THREE)
    rows = np.random.default_rng(1).integers(1, VOCAB, (16, MAXLEN)).astype(np.int32)
    numpy_ = load(write_labelled_npz(tmp_path / "m.npz", THREE)).predict_proba(TEXTS)
    for precision, tolerance in (("fp32", 1e-5), ("int8", 0.1)):
        data = convert_tflite(config, weights_of(config), precision, MAXLEN, VOCAB, rows)
        path = tmp_path / f"m.{precision}.tflite"
        path.write_bytes(add_metadata(data, {**metadata_of(config), key("format"): "tflite",
                                             key("precision"): precision}))
        model = load(path)
        assert model.info["backend"] == "litert" and model.labels == THREE and model.backend.outputs == 3
        proba = model.predict_proba(TEXTS)
        assert proba.dtype == np.float32 and proba.shape == (len(TEXTS), 3)
        np.testing.assert_allclose(proba, numpy_, atol=tolerance)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=tolerance)


# -- the commands ------------------------------------------------------------------------------------------------
def test_cli_predict_prints_every_labels_probability(tmp_path):
    path = write_labelled_npz(tmp_path / "model.fp32.npz", THREE)
    texts = ["w1 w2 w3", "", "nothing known", "w30 w31 w2"]
    result = subprocess.run([*CLI, "predict", "--quiet", "--model", str(path), *texts], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    model = load(path)
    expected = []
    for p in model.predictions(texts):
        record = {"label": p.label, "score": round(p.score, 6),
                  "probabilities": {label: round(x, 6) for label, x in zip(THREE, p.probabilities)}}
        if p.warning:
            record["warning"] = p.warning
        expected.append(record)
    assert rows == expected
    assert all(list(r["probabilities"]) == list(THREE) for r in rows)  # every label, in the model's order
    assert [r.get("warning") for r in rows] == [None, NO_TEXT, NO_KNOWN_WORDS, None]

    info = subprocess.run([*CLI, "info", str(path)], capture_output=True, text=True, timeout=120)
    assert info.returncode == 0, info.stderr
    assert "labels negative, neutral, positive" in info.stdout
    described = json.loads(subprocess.run([*CLI, "info", "--json", str(path)], capture_output=True, text=True,
                                          timeout=120).stdout)
    assert described["labels"] == list(THREE)


# -- hostile labels -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("labels, reason", [
    ([f"c{i}" for i in range(51)], "51 labels"),
    (["a", "b", "a"], "'a' appears twice"),
    (["a", "", "c"], "label 1 is empty"),
    (["a", "b", 3], "label 2 is not a string"),
    ({"a": 1, "b": 2, "c": 3}, "not a list but dict"),
])
def test_bad_labels_of_n_are_refused(tmp_path, labels, reason):
    meta = metadata_of(config_of(THREE))
    meta[key("labels")] = json.dumps(labels)  # sentilite.labels as the file holds it
    path = write_labelled_npz(tmp_path / "m.npz", THREE, metadata=meta)
    with pytest.raises(ModelFileError, match=rf"m.npz: metadata sentilite.labels: labels must be 2 to 50 distinct "
                                             rf"non-empty strings of at most 100 characters \({reason}\)"):
        load(path)


def test_labels_that_differ_from_the_model_json_are_refused(tmp_path):
    path = write_labelled_npz(tmp_path / "m.npz", THREE, metadata=metadata_of(config_of(THREE), ["a", "b", "c"]))
    with pytest.raises(ModelFileError, match=r"m.npz: metadata sentilite.labels \['a', 'b', 'c'\] differs from the "
                                             r"labels of its sentilite.model \['negative', 'neutral', 'positive'\]"):
        load(path)
    # the same names in another order are other labels: the outputs would be read as the wrong classes
    shuffled = metadata_of(config_of(THREE), ["positive", "neutral", "negative"])
    with pytest.raises(ModelFileError, match="differs from the labels of its sentilite.model"):
        load(write_labelled_npz(tmp_path / "m2.npz", THREE, metadata=shuffled))
    # a model JSON without labels is a model of two: three labels in the file cannot be its
    meta = metadata_of(config_of(THREE))
    model_json = json.loads(meta[key("model")])
    del model_json["labels"]
    meta[key("model")] = json.dumps(model_json)
    binary = config_of(("negative", "positive"))
    from sentilite.export.to_numpy import export_numpy

    path = export_numpy(weights_of(binary), tmp_path / "m3.npz", metadata=meta)
    with pytest.raises(ModelFileError, match="m3.npz: metadata sentilite.labels names 3 labels, but its "
                                             "sentilite.model carries no labels: a model of two"):
        load(path)
    # labels in the model JSON are checked as a ModelConfig's: the file is refused, not half-read
    meta = metadata_of(config_of(THREE))
    meta[key("model")] = meta[key("model")].replace('"neutral"', '"negative"')
    with pytest.raises(ModelFileError, match="ModelConfig.labels must be 2 to 50 distinct"):
        load(write_labelled_npz(tmp_path / "m4.npz", THREE, metadata=meta))


def test_a_manifest_whose_labels_are_not_the_files_is_refused(tmp_path):
    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "tokenizer.json").write_bytes(_tokenizer_json())
    write_labelled_npz(folder / "model.fp32.npz", THREE)
    write_manifest(folder, [("model.fp32.npz", "numpy", "fp32")], labels=["negative", "positive"])
    with pytest.raises(ModelFileError, match=r"model.fp32.npz: its labels \['negative', 'neutral', 'positive'\] "
                                             r"differ from the labels of .*manifest.json \['negative', 'positive'\]"):
        load(folder)


# -- models of two answer exactly as before -------------------------------------------------------------------------
# P(positive) of the bundled model's two files on BUNDLED_TEXTS, as the runtime of sentilite 0.3 (before it read N
# labels) answered them: its predict_proba(texts)[:, 1], the same for each text alone.
BUNDLED_TEXTS = [
    "A wonderful film.", "Dull.", "", "\U0001F60D", "I loved every minute of it, the acting was superb.",
    "The worst movie I have ever seen.", "not bad at all", "not good", "It was okay, nothing special.",
    "Brilliant, moving and funny: a masterpiece.", "Boring plot, wooden acting, a waste of time.",
    "crashes every time I open it", "I would watch it again tomorrow.", "The ending ruined everything.",
    "meh", "An absolute delight from start to finish!", "Terrible. Just terrible.",
    "Great cast but the script is awful.", "This film is a gem " * 40, "<br /><br />Really quite good.<br />",
]
BUNDLED_BEFORE = {
    "onnx": [0.9988995790481567, 3.7550926208496094e-06, 0.4986262619495392, 0.4986262619495392, 0.961410403251648,
             2.9295682907104492e-05, 0.02355438470840454, 0.021572023630142212, 0.026743382215499878,
             0.9995322227478027, 5.960464477539063e-08, 0.5784202218055725, 0.7019783854484558, 0.24399909377098083,
             0.4860089123249054, 0.9186980724334717, 0.00010532140731811523, 0.0002186894416809082, 1.0,
             0.6411099433898926],
    "tflite": [0.99609375, 0.0, 0.5, 0.5, 0.96875, 0.0, 0.02734375, 0.01953125, 0.03125, 0.99609375, 0.0, 0.57421875,
               0.70703125, 0.234375, 0.4765625, 0.9140625, 0.0, 0.0, 0.99609375, 0.64453125],
}
ENGINES = {"onnx": "onnxruntime", "tflite": "ai_edge_litert"}


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_the_bundled_model_answers_as_before(fmt):
    pytest.importorskip(ENGINES[fmt])
    try:
        model = load(format=fmt)
    except ModelFileError as exc:
        pytest.skip(f"no bundled model in this install ({exc})")
    assert model.labels == ("negative", "positive") and model.backend.outputs == 1
    proba = model.predict_proba(BUNDLED_TEXTS)
    before = np.array(BUNDLED_BEFORE[fmt], dtype=np.float32)
    np.testing.assert_allclose(proba[:, 1], before, atol=1e-6, rtol=0)
    assert_binary_answers(model, BUNDLED_TEXTS, proba)


def assert_binary_answers(model, texts, proba):
    """Every answer of a model of two labels, as it was: [1 - p, p] in float32, p >= 0.5 for labels[1]."""
    p = proba[:, 1]
    np.testing.assert_array_equal(proba[:, 0], np.float32(1.0) - p)
    raw = model.predict_ids(model.tokenizer.encode_batch(texts))
    assert raw.shape == (len(texts),)  # the raw answer of a model of two labels stays P(labels[1]), (n,)
    np.testing.assert_array_equal(raw, p)
    np.testing.assert_array_equal(to_probabilities(raw, 2), proba)
    np.testing.assert_array_equal(np.concatenate([model.predict_proba([t]) for t in texts]), proba)
    labels = [model.labels[int(x >= 0.5)] for x in p]
    assert model.predict(texts) == labels
    predictions = model.predictions(texts)
    assert [pr.label for pr in predictions] == labels
    assert [pr.score for pr in predictions] == [float(x) if x >= 0.5 else float(np.float32(1.0) - x) for x in p]
    assert [pr.probabilities for pr in predictions] == [tuple(row) for row in proba.tolist()]


# The tiny model of test_hostile_files as sentilite 0.3 wrote it (its model JSON names no labels), on TINY_TEXTS:
# P(positive) as the runtime answered before it read N labels.
TINY_TEXTS = ["w1 w2 w3", "w7", "", "w30 w31 w32 w33 w34 w35 w36 w37 w2 w3 w4 w5 w6 w9", "w5 w5 w9 w12",
              "nothing known"]
TINY_BEFORE = [0.43438175320625305, 0.3702223300933838, 0.5102355480194092, 0.3990376889705658, 0.46838632225990295,
               0.2823125422000885]


def test_a_file_written_by_0_3_answers_as_before(tmp_path):
    from test_hostile_files import MODEL, _metadata, _weights, write_npz

    meta = _metadata("numpy")
    model_json = json.loads(meta[key("model")])
    model_json.pop("labels", None)
    meta[key("model")] = json.dumps(model_json, separators=(",", ":"))
    model = load(write_npz(tmp_path / "m.npz", meta))
    assert model.labels == ("negative", "positive") and model.backend.outputs == 1
    proba = model.predict_proba(TINY_TEXTS)
    np.testing.assert_allclose(proba[:, 1], np.float32(TINY_BEFORE), atol=1e-6, rtol=0)
    # live: the numpy reference's P(positive) of the same weights, on the padded rows
    expected = NumpySentimentModel(MODEL, _weights(), MAXLEN, VOCAB).predict_positive(
        model.tokenizer.encode_batch(TINY_TEXTS))
    np.testing.assert_allclose(proba[:, 1], expected, atol=1e-6)
    assert_binary_answers(model, TINY_TEXTS, proba)
    # the same file with labels in its model JSON (as sentilite writes files of two labels now) answers the same
    assert np.array_equal(load(write_npz(tmp_path / "new.npz")).predict_proba(TINY_TEXTS), proba)


def test_cli_predict_of_a_model_of_two_keeps_its_fields_and_adds_probabilities(tmp_path):
    from test_hostile_files import write_npz

    path = write_npz(tmp_path / "m.npz")
    result = subprocess.run([*CLI, "predict", "--quiet", "--model", str(path), *TINY_TEXTS], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    before = [("negative", 0.565618), ("negative", 0.629778), ("positive", 0.510236), ("negative", 0.600962),
              ("negative", 0.531614), ("negative", 0.717687)]  # label and score as printed before
    assert [(r["label"], r["score"]) for r in rows] == before
    assert [r.get("warning") for r in rows] == [None, None, NO_TEXT, None, None, NO_KNOWN_WORDS]
    for row, p in zip(rows, TINY_BEFORE):
        assert list(row) == ["label", "score", "probabilities"] + (["warning"] if "warning" in row else [])
        assert row["probabilities"] == {"negative": round(float(np.float32(1.0) - np.float32(p)), 6),
                                        "positive": round(p, 6)}
