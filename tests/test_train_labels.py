"""Training with three or more labels: the one-vs-rest n-gram table, the softmax blend, and brief real runs."""
import json
from pathlib import Path

import numpy as np
import pytest

from sentilite.runtime.recurrence import ngram_logit, softmax
from sentilite.train.blend import Blend, fit_blend, logits_of
from sentilite.train.ngrams import (
    NgramBranch,
    exact_ngram_weights,
    fit_ngram_weights,
    learn_dictionary,
    ngram_logits,
    fold_subwords,
    ngram_matrix,
    subword_grams,
    subword_matrix,
    weight_strength,
    with_subwords,
)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
VOCAB = 12


def three_label_rows(repeat: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Left-padded id rows where word 3, 4 or 5 tells the label (0, 1, 2) and words 1 and 2 tell nothing."""
    rows, labels = [], []
    for label, telling in enumerate((3, 4, 5)):
        for shared in ([1, 2], [2, 1], [1, 1]):
            rows.append([0, 0, *shared, telling, 6 + label])
            labels.append(label)
    return np.array(rows * repeat, np.int32), np.array(labels * repeat, np.int32)


def test_one_vs_rest_table_has_a_column_per_label_each_the_two_label_fit_of_that_label():
    pytest.importorskip("sklearn")
    ids, labels = three_label_rows()
    matrix = ngram_matrix(ids, VOCAB, 7)
    weights, bias = fit_ngram_weights(matrix, labels, 10.0, classes=3)
    assert weights.shape == (VOCAB + 7, 3) and weights.dtype == np.float32
    assert bias.shape == (3,) and np.all(weights[0] == 0)  # padding reads nothing, for every label
    for k in range(3):
        alone, alone_bias = fit_ngram_weights(matrix, (labels == k).astype(np.float32), 10.0)
        np.testing.assert_array_equal(weights[:, k], alone)
        assert bias[k] == pytest.approx(alone_bias, abs=1e-6)
    # each label's telling word weighs most for it; the shared words weigh the same for every row
    assert [int(np.argmax(weights[[3, 4, 5], k])) for k in range(3)] == [0, 1, 2]
    np.testing.assert_array_equal(np.argmax(ngram_logits(matrix, weights, bias), axis=1), labels)


def test_balanced_class_weight_moves_the_bias_toward_a_rare_label():
    pytest.importorskip("sklearn")
    ids, labels = three_label_rows()
    keep = (labels != 2) | (np.arange(len(labels)) % 10 == 0)  # label 2 becomes rare: 3 rows of 63
    ids, labels = ids[keep], labels[keep]
    matrix = ngram_matrix(ids, VOCAB, 7)
    _, plain = fit_ngram_weights(matrix, labels, 1.0, classes=3)
    _, balanced = fit_ngram_weights(matrix, labels, 1.0, classes=3, class_weight="balanced")
    assert balanced[2] > plain[2]


def test_the_multinomial_branch_is_the_runtime_ngram_logit_of_its_table():
    """A learned dictionary of three labels, its table and biases: train and runtime read the same logits."""
    pytest.importorskip("sklearn")
    ids, labels = three_label_rows()
    slots = 11
    dictionary = learn_dictionary(ids, labels, None, VOCAB, slots, 10.0, classes=3)
    matrix = ngram_matrix(ids, VOCAB, slots, dictionary)
    weights, bias = fit_ngram_weights(matrix, labels, 10.0, classes=3)
    branch = NgramBranch(weights, bias, dictionary, VOCAB, slots)
    logits = branch.logit(ids)
    assert logits.shape == (len(ids), 3)
    np.testing.assert_allclose(logits, ngram_logit(ids, weights, VOCAB, slots, dictionary) + bias, atol=1e-6)
    np.testing.assert_allclose(logits, ngram_logits(matrix, weights, bias), atol=1e-5)


def test_subword_grams_are_the_marked_words_character_2_to_5_grams():
    assert subword_grams("fun") == sorted(["<f", "fu", "un", "n>", "<fu", "fun", "un>", "<fun", "fun>"])
    assert subword_grams("a") == ["<a", "a>"]  # "<a>" is the word itself
    assert subword_grams("ab", (3, 3)) == ["<ab", "ab>"]


def test_subword_matrix_rows_are_words_and_padding_and_oov_have_none():
    vocabulary = ["<pad>", "<oov>", "fun", "funny", "dull"]
    subwords = subword_matrix(vocabulary, 6)  # a vocab_size past the list: the last id has no word
    assert subwords.shape[0] == 6 and subwords[:2].nnz == 0 and subwords[5].nnz == 0
    for word_id, word in enumerate(vocabulary[2:], 2):
        row = subwords[word_id]
        grams = subword_grams(word)
        assert row.nnz == len(grams)
        np.testing.assert_allclose(row.data, 2.0 / np.sqrt(len(grams)), rtol=1e-6)
    # "fun" and "funny" share "<f", "<fu", "<fun", "fu", "fun", "un"; "dull" shares nothing with "fun"
    shared = (subwords[2] > 0).multiply(subwords[3] > 0).nnz
    assert shared == 6 and (subwords[2] > 0).multiply(subwords[4] > 0).nnz == 0


@pytest.mark.parametrize("classes", [2, 3])
def test_folded_subword_weights_give_the_logits_of_the_wider_regression(classes):
    pytest.importorskip("sklearn")
    ids, labels = three_label_rows()
    if classes == 2:
        labels = (labels == 1).astype(np.int32)
    vocabulary = ["<pad>", "<oov>"] + [f"w{i}" for i in range(2, VOCAB)]
    subwords = subword_matrix(vocabulary, VOCAB)
    matrix = ngram_matrix(ids, VOCAB, 7)
    wide = with_subwords(matrix, subwords, VOCAB)
    assert wide.shape == (len(ids), VOCAB + 7 + subwords.shape[1])
    weights, bias = fit_ngram_weights(wide, labels, 10.0, classes=classes)
    folded = fold_subwords(weights, subwords, VOCAB)
    assert folded.shape == ((VOCAB + 7,) if classes == 2 else (VOCAB + 7, classes)) and np.all(folded[0] == 0)
    np.testing.assert_allclose(ngram_logits(matrix, folded, bias), ngram_logits(wide, weights, bias), atol=1e-5)
    # the runtime reads the folded table as any other
    np.testing.assert_allclose(NgramBranch(folded, bias, None, VOCAB, 7).logit(ids),
                               ngram_logits(wide, weights, bias), atol=1e-5)


def test_subword_ngrams_setting_is_checked_and_left_out_of_config_json_when_none():
    from sentilite.shared.errors import ConfigError
    from sentilite.train.config import TrainConfig

    assert "subword_ngrams" not in TrainConfig().to_dict()
    assert TrainConfig(subword_ngrams="if-better").to_dict()["subword_ngrams"] == "if-better"
    with pytest.raises(ConfigError, match="subword_ngrams must be one of.*'yes'"):
        TrainConfig(subword_ngrams="yes")


def test_dictionary_codes_rank_by_their_largest_weight_over_the_labels():
    pytest.importorskip("sklearn")
    ids, labels = three_label_rows()
    codes, weights = exact_ngram_weights(ids, labels, None, VOCAB, 10.0, classes=3)
    assert weights.shape == (len(codes), 3) and codes.min() >= 0
    np.testing.assert_array_equal(weight_strength(weights), np.abs(weights).max(axis=1))
    np.testing.assert_array_equal(weight_strength(weights[:, 0]), np.abs(weights[:, 0]))
    strength = dict(zip(codes.tolist(), weight_strength(weights).tolist()))
    # bigram (2, 5) occurs with label 2 only, (1, 2) with every label: the first earns its slot sooner
    assert strength[2 * VOCAB + 5] > strength[1 * VOCAB + 2]


def test_softmax_blend_finds_the_scales_and_biases_the_labels_were_drawn_with():
    pytest.importorskip("scipy")
    rng = np.random.default_rng(0)
    rows, classes = 4000, 4
    ngram, cell = rng.normal(size=(rows, classes)), rng.normal(size=(rows, classes))
    truth = Blend(ngram_scale=1.5, cell_scale=0.5, bias=(0.4, -0.2, 0.1, -0.3), rows=rows)
    p = softmax(truth.logit(ngram, cell))
    labels = (p.cumsum(axis=1) < rng.uniform(size=(rows, 1))).sum(axis=1)
    blend = fit_blend(ngram, cell, labels)
    assert blend.rows == rows and len(blend.bias) == classes
    assert blend.ngram_scale == pytest.approx(1.5, abs=0.15) and blend.cell_scale == pytest.approx(0.5, abs=0.1)
    assert sum(blend.bias) == pytest.approx(0.0, abs=1e-5)  # centred: the softmax is the same
    np.testing.assert_allclose(blend.bias, np.array(truth.bias) - np.mean(truth.bias), atol=0.15)
    assert json.loads(json.dumps(blend.to_dict()))["bias"] == list(blend.bias)


def test_logits_of_a_softmax_are_its_log_probabilities_and_of_two_labels_the_logit():
    p = np.array([[0.7, 0.2, 0.1], [0.0, 0.5, 0.5]])
    np.testing.assert_allclose(logits_of(p), np.log(np.clip(p, 1e-7, 1.0)))
    np.testing.assert_allclose(softmax(logits_of(p[:1])), p[:1])  # the cell's logits up to a constant per row
    np.testing.assert_allclose(logits_of(np.array([[0.5], [0.8]])), [0.0, np.log(4.0)])


@pytest.mark.parametrize("labels", [("negative", "positive"), ("a", "b", "c")])
def test_the_folded_blend_is_the_blend_of_the_two_logits(labels):
    keras = pytest.importorskip("keras")
    from sentilite.runtime.architecture import ModelConfig
    from sentilite.runtime.tokenizer import TokenizerConfig
    from sentilite.train.keras_model import build_model
    from sentilite.train.ngrams import place_keys

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    config = ModelConfig(cell="gru", embedding_dim=4, units=4, window=6, ngram_buckets=23, ngram_lookup="dictionary",
                         labels=labels)
    tokenizer = TokenizerConfig(vocab_size=VOCAB, maxlen=10)
    model, cell_model = build_model(config, tokenizer)
    ids = rng.integers(0, VOCAB, size=(16, 10)).astype(np.int32)
    ids[:4, :6] = 0  # short texts, padded in front
    dictionary, _ = place_keys(rng.choice(10 ** 6, 18, replace=False), 23)
    shape = (VOCAB + 23,) if config.outputs == 1 else (VOCAB + 23, config.outputs)
    weights = rng.normal(size=shape).astype(np.float32)
    weights[0] = 0.0
    bias = 0.3 if config.outputs == 1 else np.array([0.3, -0.1, 0.2], np.float32)
    branch = NgramBranch(weights, bias, dictionary, VOCAB, 23)
    blend = Blend(ngram_scale=0.7, cell_scale=1.3, bias=-0.2 if config.outputs == 1 else (0.1, -0.25, 0.15), rows=16)
    cell = logits_of(cell_model.predict(ids[:, -6:], verbose=0))
    blended = blend.logit(branch.logit(ids), cell)
    expected = 1 / (1 + np.exp(-blended)) if config.outputs == 1 else softmax(blended)
    blend.fold_into(model, branch)
    np.testing.assert_allclose(model.predict(ids, verbose=0).reshape(expected.shape), expected, atol=1e-5)


def test_balanced_weights_are_scikit_learns_and_the_setting_is_checked():
    from sentilite.shared.errors import ConfigError
    from sentilite.train.config import TrainConfig
    from sentilite.train.fit import balanced_weights

    labels = np.array([0, 0, 0, 1, 2, 2])
    np.testing.assert_allclose(balanced_weights(labels, 3), [6 / 9] * 3 + [2.0] + [1.0] * 2)
    assert TrainConfig().class_weight == "none" and TrainConfig(class_weight="balanced").class_weight == "balanced"
    with pytest.raises(ConfigError, match="class_weight must be one of.*'balance'"):
        TrainConfig(class_weight="balance")


# -- brief runs on real subsets ------------------------------------------------------------------------------------
def _per_label(texts, labels, per_label: int, skip: int = 0):
    """The ``skip``-th to ``skip + per_label``-th rows of each label, in file order."""
    from sentilite.train.data import Reviews

    index = np.sort(np.concatenate([np.flatnonzero(labels == k)[skip: skip + per_label]
                                    for k in range(labels.max() + 1)]))
    return Reviews([texts[i] for i in index], np.asarray(labels[index], np.int32))


def _tiny_config(cell: str, **training):
    from sentilite.train.config import preset_config

    return preset_config("default", cell).replace(
        tokenizer={"vocab_size": 600, "maxlen": 40},
        model={"embedding_dim": 8, "units": 8, "window": 16, "ngram_buckets": 3001},
        training={"max_epochs": 1, "batch_size": 32, "learning_rate": 3e-3, **training})


@pytest.fixture(scope="module")
def label_runs(tmp_path_factory):
    """Two brief runs: airline (3 labels, a given validation split, balanced class weights), SST-5 (5 labels)."""
    from sentilite.train.data import TrainingData
    from sentilite.train.fit import train_model
    from sentilite.train.readers import read_labeled

    airline, sst5 = SHARED_DATA / "airline" / "Tweets.csv", SHARED_DATA / "sst5"
    if not airline.exists() or not sst5.exists():
        pytest.skip(f"the shared labeled sets are not in {SHARED_DATA}")
    root = tmp_path_factory.mktemp("labels")
    tweets = read_labeled(airline, text_column="text", label_column="airline_sentiment")
    three = TrainingData(train=_per_label(tweets.texts, tweets.labels, 80),
                         validation=_per_label(tweets.texts, tweets.labels, 30, skip=80),
                         test=_per_label(tweets.texts, tweets.labels, 40, skip=110), source=str(airline),
                         label_names=tweets.label_names, split_note="train, validation, test: rows of each label",
                         imdb=False)
    train, test = read_labeled(sst5 / "sst_train.txt"), read_labeled(sst5 / "sst_test.txt")
    five = TrainingData(train=_per_label(train.texts, train.labels, 60), test=_per_label(test.texts, test.labels, 40),
                        source=str(sst5), label_names=train.label_names, split_note="first rows of each label",
                        imdb=False)
    runs = {}
    for name, cell, data, training in (("three", "lstm", three, {"class_weight": "balanced"}),
                                       ("five", "gru", five, {"subword_ngrams": "if-better"})):
        out = root / name
        runs[name] = (out, data, train_model(_tiny_config(cell, **training), out, data, verbose=0))
    return runs


@pytest.mark.integration
@pytest.mark.parametrize("run", ["three", "five"])
def test_the_saved_model_answers_the_numpy_reference_and_its_recorded_figures(run, label_runs):
    from sentilite.export.weights import extract_weights
    from sentilite.runtime import Tokenizer
    from sentilite.runtime.numpy_model import NumpySentimentModel
    from sentilite.train.config import RunConfig
    from sentilite.train.keras_model import load_keras_model

    out, data, metrics = label_runs[run]
    classes = len(data.label_names)
    config = RunConfig.from_dict(json.loads((out / "config.json").read_text()))
    assert config.model.labels == data.label_names and config.model.outputs == classes
    model = load_keras_model(out / "model.keras")
    assert model.output.shape[-1] == classes and model.layers[-1].name == "probabilities"
    ids = Tokenizer.from_file(out / "tokenizer.json").encode_batch(data.test.texts)
    keras_p = model.predict(ids, verbose=0)
    reference = NumpySentimentModel(config.model, extract_weights(model, config.model), config.tokenizer.maxlen,
                                    config.tokenizer.vocab_size)
    numpy_p = reference.predict(ids)
    assert numpy_p.shape == (len(ids), classes)
    np.testing.assert_allclose(numpy_p, keras_p, atol=1e-5)
    np.testing.assert_allclose(keras_p.sum(axis=1), 1.0, atol=1e-5)
    # the recorded test figures are the saved model's
    predicted = np.argmax(keras_p, axis=1)
    assert metrics["test_accuracy"] == pytest.approx(float(np.mean(predicted == data.test.labels)), abs=1e-6)
    confusion = np.zeros((classes, classes), int)
    np.add.at(confusion, (data.test.labels, predicted), 1)
    assert metrics["test"]["confusion"] == confusion.tolist()
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(metrics))


@pytest.mark.integration
def test_metrics_json_has_each_splits_figures_and_no_imdb_checks(label_runs):
    for name, (out, data, metrics) in label_runs.items():
        names = list(data.label_names)
        assert metrics["label_names"] == names and metrics["split_note"] == data.split_note
        for split, rows in (("validation", metrics["validation_reviews"]), ("test", len(data.test))):
            figures = metrics[split]
            assert figures["label_names"] == names and figures["rows"] == rows
            assert [c["label"] for c in figures["per_class"]] == names
            assert sum(map(sum, figures["confusion"])) == rows and len(figures["confusion"]) == len(names)
            assert 0 <= figures["macro_f1"] <= 1 and metrics[f"{split}_macro_f1"] == round(figures["macro_f1"], 6)
        assert metrics["validation_accuracy"] == pytest.approx(metrics["validation"]["accuracy"], abs=1e-6)
        assert "short_text" not in metrics and "negation_probes" not in metrics  # IMDB's checks
        assert set(metrics["ablation"]["ngrams_only"]) == {"test_accuracy", "test_macro_f1"}
        assert len(metrics["blend"]["bias"]) == len(names)
        assert (out / metrics["confusion_chart"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert sorted(p.name for p in out.iterdir()) == ["config.json", "confusion_matrix.png", "history.json",
                                                         "metrics.json", "model.keras", "tokenizer.json",
                                                         "training_curves.png"]
    three, five = label_runs["three"][2], label_runs["five"][2]
    # the given validation rows, or a stratified fifth of the training rows (60 of each label: 12)
    assert (three["validation_split"], three["validation_reviews"]) == ("given", 90)
    assert (five["validation_split"], five["validation_reviews"]) == ("stratified", 60)
    # SST-5's branch was fitted with and without characters inside words; the model holds the better one
    choice = five["subword_ngrams"]
    assert set(choice) == {"kept", "validation_accuracy_without", "validation_accuracy_with"}
    assert choice["kept"] == (choice["validation_accuracy_with"] > choice["validation_accuracy_without"])
    assert "subword_ngrams" not in three
    assert json.loads((label_runs["five"][0] / "config.json").read_text())["training"]["subword_ngrams"] == "if-better"
    config = json.loads((label_runs["three"][0] / "config.json").read_text())
    assert config["training"]["class_weight"] == "balanced" and config["model"]["labels"] == ["negative", "neutral",
                                                                                              "positive"]
