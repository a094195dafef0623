"""runtime.metrics against scikit-learn, by hand on tiny cases, and the confusion chart."""
from __future__ import annotations

import json

import numpy as np
import pytest

from sentilite.runtime.metrics import (
    ClassificationMetrics,
    ClassMetrics,
    MetricsError,
    classification_metrics,
    format_metrics,
    predicted_classes,
)


def _one_hot(predicted, classes):
    probabilities = np.full((len(predicted), classes), 0.1 / classes, dtype=np.float32)
    probabilities[np.arange(len(predicted)), predicted] = 0.9
    return probabilities


@pytest.mark.parametrize("classes,rows,seed", [(2, 50, 0), (3, 200, 1), (5, 31, 2), (12, 400, 3), (50, 300, 4)])
def test_matches_sklearn_on_random_data(classes, rows, seed):
    metrics_module = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, rows)
    probabilities = rng.random((rows, classes)).astype(np.float32)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    names = [f"c{i}" for i in range(classes)]
    result = classification_metrics(labels, probabilities, names)
    predicted = predicted_classes(probabilities)
    everyone = list(range(classes))
    assert result.accuracy == pytest.approx(metrics_module.accuracy_score(labels, predicted), abs=1e-12)
    # sklearn's macro over the classes named: those absent from a small random set count as F1 0 too
    assert result.macro_f1 == pytest.approx(
        metrics_module.f1_score(labels, predicted, average="macro", labels=everyone, zero_division=0), abs=1e-12)
    precision, recall, f1, support = metrics_module.precision_recall_fscore_support(
        labels, predicted, labels=everyone, zero_division=0)
    np.testing.assert_allclose([c.precision for c in result.per_class], precision, atol=1e-12)
    np.testing.assert_allclose([c.recall for c in result.per_class], recall, atol=1e-12)
    np.testing.assert_allclose([c.f1 for c in result.per_class], f1, atol=1e-12)
    assert [c.support for c in result.per_class] == support.tolist()
    assert np.array_equal(np.array(result.confusion), metrics_module.confusion_matrix(labels, predicted,
                                                                                     labels=everyone))
    assert result.rows == rows


def test_sklearn_default_macro_when_every_class_occurs():
    """With every class in the data, sklearn's plain f1_score(average="macro") is the same number."""
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(7)
    labels = np.concatenate([np.arange(4), rng.integers(0, 4, 96)])
    probabilities = rng.random((100, 4))
    result = classification_metrics(labels, probabilities, "abcd")
    assert result.macro_f1 == pytest.approx(
        sklearn_metrics.f1_score(labels, np.argmax(probabilities, axis=1), average="macro"), abs=1e-12)


def test_tiny_case_by_hand():
    # true: a a b b c ; predicted: a b b b a  -> class c never predicted, so its precision and F1 are 0
    labels = np.array([0, 0, 1, 1, 2])
    result = classification_metrics(labels, _one_hot([0, 1, 1, 1, 0], 3), ("a", "b", "c"))
    assert result.confusion == ((1, 1, 0), (0, 2, 0), (1, 0, 0))
    assert result.accuracy == pytest.approx(3 / 5)
    a, b, c = result.per_class
    assert (a.precision, a.recall, a.support) == (pytest.approx(0.5), pytest.approx(0.5), 2)
    assert (b.precision, b.recall, b.f1) == (pytest.approx(2 / 3), 1.0, pytest.approx(0.8))
    assert c == ClassMetrics("c", 0.0, 0.0, 0.0, 1)
    assert result.macro_f1 == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert result.label_names == ("a", "b", "c")


def test_two_labels_use_the_runtime_rule():
    """Two labels: P(labels[1]) >= 0.5 is labels[1], so [0.5, 0.5] is positive (argmax would say negative)."""
    probabilities = np.array([[0.5, 0.5], [0.6, 0.4], [0.2, 0.8]], dtype=np.float32)
    assert predicted_classes(probabilities).tolist() == [1, 0, 1]
    result = classification_metrics(np.array([1, 0, 1]), probabilities, ("negative", "positive"))
    assert result.accuracy == 1.0 and result.macro_f1 == 1.0
    assert result.confusion == ((1, 0), (0, 2))


def test_round_trip_through_json():
    result = classification_metrics(np.array([0, 1, 2, 2]), _one_hot([0, 2, 2, 1], 3), ("neg", "neu", "pos"))
    data = json.loads(json.dumps(result.to_dict()))
    assert data["rows"] == 4 and data["confusion"] == [[1, 0, 0], [0, 0, 1], [0, 1, 1]]
    assert ClassificationMetrics.from_dict(data) == result


def test_bad_inputs_are_named():
    with pytest.raises(MetricsError, match=r"do not match 3 labels"):
        classification_metrics(np.array([0]), np.zeros((1, 2)), ("a", "b", "c"))
    with pytest.raises(MetricsError, match=r"label index 3 is outside the 3 labels"):
        classification_metrics(np.array([0, 3]), np.zeros((2, 3)), ("a", "b", "c"))
    with pytest.raises(MetricsError, match=r"do not match 2 rows"):
        classification_metrics(np.array([0, 1, 1]), np.zeros((2, 3)), ("a", "b", "c"))
    with pytest.raises(MetricsError, match=r"distinct"):
        classification_metrics(np.array([0]), np.zeros((1, 2)), ("a", "a"))


def test_format_prints_the_table_and_the_matrix():
    result = classification_metrics(np.array([0, 0, 1, 1, 2]), _one_hot([0, 1, 1, 1, 0], 3), ("a", "b", "c"))
    text = format_metrics(result)
    assert text.splitlines()[0] == "accuracy 0.6000, macro-F1 0.4333 on 5 rows"
    assert "c            0.0000  0.0000  0.0000        1" in text
    assert text.splitlines()[-1] == "c              1       0       0"


@pytest.mark.parametrize("classes", [2, 3, 50])
def test_confusion_chart_is_a_png(tmp_path, classes):
    pytest.importorskip("matplotlib")
    from sentilite.shared.charts import plot_confusion

    rng = np.random.default_rng(classes)
    labels = rng.integers(0, classes, 500)
    names = [f"label number {i}" for i in range(classes)]
    result = classification_metrics(labels, rng.random((500, classes)), names)
    path = plot_confusion(result, tmp_path / "confusion.png", "test set")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["confusion.png"]  # no temporary file left behind


# -- `sentilite evaluate MODEL --data FILE` ---------------------------------------------------------
VOCAB, MAXLEN = 40, 12
THREE = ("a", "b", "c")
# Blocked in the child: the labeled evaluation must run on a runtime-only install (numpy and an engine).
TRAINING_MODULES = ("tensorflow", "keras", "sklearn", "matplotlib", "onnx", "pyarrow", "tqdm")
_CHILD = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None
from sentilite.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _tiny_npz(path, labels=THREE):
    """A numpy-file model of random weights and ``labels`` (no training, no TensorFlow), as export writes it."""
    from sentilite.export.file_metadata import embedded_metadata
    from sentilite.export.to_numpy import export_numpy
    from sentilite.runtime.architecture import ModelConfig
    from sentilite.runtime.numpy_model import expected_shapes
    from sentilite.runtime.tokenizer import OOV_TOKEN, PAD_TOKEN, Tokenizer, TokenizerConfig

    model = ModelConfig(cell="gru", embedding_dim=4, units=4, window=8, ngram_buckets=7, labels=tuple(labels))
    words = [PAD_TOKEN, OOV_TOKEN] + [f"w{i}" for i in range(VOCAB - 2)]
    tokenizer = Tokenizer(TokenizerConfig(vocab_size=VOCAB, maxlen=MAXLEN), words).to_json().encode()
    rng = np.random.default_rng(0)
    weights = {k: rng.normal(0, 0.8, s).astype(np.float32) for k, s in expected_shapes(model, VOCAB).items()}
    metadata = embedded_metadata(tokenizer, model, "fp32", "numpy", labels, MAXLEN, VOCAB, "tiny")
    return export_numpy(weights, path, metadata=metadata)


def _labeled_csv(path, labels, rows=90, seed=1):
    rng = np.random.default_rng(seed)
    texts = [" ".join(f"w{i}" for i in rng.integers(0, VOCAB - 2, rng.integers(1, 10))) for _ in range(rows)]
    classes = rng.integers(0, len(labels), rows)
    path.write_text("text,label\n" + "".join(f"{t},{labels[c]}\n" for t, c in zip(texts, classes)))
    return texts, classes


def _evaluate(*args, blocked=TRAINING_MODULES):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", _CHILD.format(blocked=blocked), "evaluate", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_evaluate_a_three_label_file_without_training_modules(tmp_path):
    from sentilite.runtime import load

    model_path = _tiny_npz(tmp_path / "model.npz")
    texts, classes = _labeled_csv(tmp_path / "data.csv", THREE)
    result = _evaluate(model_path, "--data", tmp_path / "data.csv", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    model = load(model_path)
    expected = classification_metrics(classes, model.predict_proba(texts), THREE)
    assert ClassificationMetrics.from_dict(report["metrics"]) == expected
    predicted = [THREE.index(label) for label in model.predict(texts)]  # the runtime's own answer, label by label
    assert expected.accuracy == pytest.approx(np.mean(np.array(predicted) == classes))
    assert report["data"]["rows"] == 90 and report["data"]["label_names"] == list(THREE)
    assert sum(map(sum, report["metrics"]["confusion"])) == 90

    text = _evaluate(model_path, "--data", tmp_path / "data.csv")
    assert text.returncode == 0, text.stderr
    assert f"accuracy {expected.accuracy:.4f}, macro-F1 {expected.macro_f1:.4f} on 90 rows" in text.stdout
    assert "confusion (rows: true label, columns: predicted)" in text.stdout


def test_evaluate_a_two_label_file_as_the_runtime_predicts(tmp_path):
    from sentilite.runtime import load

    labels = ("negative", "positive")
    model_path = _tiny_npz(tmp_path / "model.npz", labels)
    texts, classes = _labeled_csv(tmp_path / "data.csv", labels, rows=60)
    result = _evaluate(model_path, "--data", tmp_path / "data.csv", "--json")
    assert result.returncode == 0, result.stderr
    metrics = ClassificationMetrics.from_dict(json.loads(result.stdout)["metrics"])
    predicted = np.array([labels.index(label) for label in load(model_path).predict(texts)])
    assert metrics.accuracy == pytest.approx(np.mean(predicted == classes))
    assert metrics.confusion[1][1] == int(np.sum((predicted == 1) & (classes == 1)))


def test_evaluate_names_the_labels_the_model_lacks(tmp_path):
    model_path = _tiny_npz(tmp_path / "model.npz")
    (tmp_path / "data.tsv").write_text("sentence\tlabel\nw1 w2\ta\nw3\td\nw4\td\nw5\te\n")
    result = _evaluate(model_path, "--data", tmp_path / "data.tsv")
    assert result.returncode == 2
    assert (f"{tmp_path / 'data.tsv'}: its labels do not match the labels of the model {model_path} "
            "('a', 'b', 'c'): unexpected 'd' (2 rows, first on line 3), 'e' (1 row, first on line 5)") in result.stderr
    assert "Traceback" not in result.stderr


def test_evaluate_a_file_without_some_of_the_model_labels(tmp_path):
    """A test file may lack a rare class: its row of the matrix is zeros, its F1 0."""
    model_path = _tiny_npz(tmp_path / "model.npz")
    (tmp_path / "data.jsonl").write_text("".join(json.dumps({"review": f"w{i} w{i + 1}", "class": "ab"[i % 2]}) + "\n"
                                                 for i in range(10)))
    result = _evaluate(model_path, "--data", tmp_path / "data.jsonl", "--text-column", "review",
                       "--label-column", "class", "--json")
    assert result.returncode == 0, result.stderr
    metrics = ClassificationMetrics.from_dict(json.loads(result.stdout)["metrics"])
    assert metrics.per_class[2].support == 0 and metrics.per_class[2].recall == 0.0
    assert metrics.rows == 10


def test_evaluate_confusion_chart(tmp_path):
    pytest.importorskip("matplotlib")
    model_path = _tiny_npz(tmp_path / "model.npz")
    _labeled_csv(tmp_path / "data.csv", THREE)
    result = _evaluate(model_path, "--data", tmp_path / "data.csv", "--confusion-chart", tmp_path / "c.png",
                       blocked=("tensorflow", "keras"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_imdb_copies_keep_the_imdb_evaluation(tmp_path):
    from sentilite.train.commands import _is_imdb_copy

    (tmp_path / "aclImdb" / "test" / "pos").mkdir(parents=True)
    (tmp_path / "classes" / "pos").mkdir(parents=True)
    assert _is_imdb_copy(str(tmp_path)) and _is_imdb_copy(str(tmp_path / "aclImdb"))
    assert _is_imdb_copy("aclImdb_v1.tar.gz") and _is_imdb_copy("imdb.tgz")
    assert not _is_imdb_copy(str(tmp_path / "classes"))
    assert not _is_imdb_copy("reviews.csv") and not _is_imdb_copy("reviews.tsv.gz")
