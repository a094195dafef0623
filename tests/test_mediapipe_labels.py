"""model.mediapipe.tflite of three labels, and the models that get no MediaPipe file.

A tiny 3-label GRU (random weights, seeded) with a vocabulary of real
tweets (the shared airline set, read in place) is written as the MediaPipe
file; its structure, the emulated client and, in the integration test,
MediaPipe's own TextClassifier (the client venv, made if missing: about
20 s with a cold pip cache) are held to the numpy reference.
"""
import csv
import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from sentilite.export.mediapipe import unsupported_reason
from sentilite.runtime.architecture import ModelConfig
from sentilite.runtime.tokenizer import TokenizerConfig

AIRLINE = Path(os.environ.get("SENTILITE_SHARED_DATA", ROOT.parent / "shared" / "data")) / "airline" / "Tweets.csv"
LABELS = ("negative", "neutral", "positive")
TWEETS, MAXLEN, VOCAB = 400, 40, 300


def _tweets(n: int) -> list[str]:
    if not AIRLINE.exists():
        pytest.skip(f"no {AIRLINE}")
    with AIRLINE.open(encoding="utf-8", newline="") as f:
        return [row["text"] for _, row in zip(range(n), csv.DictReader(f))]


def _tiny_model(labels: tuple[str, ...], vocab_size: int, seed: int = 0):
    """(ModelConfig, exported weights) of a seeded tiny GRU with a random n-gram table (row 0 zero)."""
    import keras

    from sentilite.export.weights import extract_weights
    from sentilite.train.keras_model import build_model

    keras.utils.set_random_seed(seed)
    config = ModelConfig(cell="gru", embedding_dim=8, units=8, window=16, ngram_buckets=101, labels=labels)
    model, _ = build_model(config, TokenizerConfig(vocab_size=vocab_size, maxlen=MAXLEN))
    layer = model.get_layer("ngrams")
    table = np.random.default_rng(seed).normal(0, 3, layer.weights[0].shape).astype(np.float32)
    table[0] = 0.0
    layer.set_weights([table])
    return config, extract_weights(model, config)


def _write_file(tmp: Path, labels: tuple[str, ...], texts: list[str]):
    """(path of the written MediaPipe file, the tokenizer, the numpy reference)."""
    from sentilite.export.mediapipe.file import build_file
    from sentilite.export.registry import ExportContext
    from sentilite.runtime.numpy_model import NumpySentimentModel
    from sentilite.train.vocab import build_tokenizer

    tokenizer = build_tokenizer(texts, TokenizerConfig(vocab_size=VOCAB, maxlen=MAXLEN))
    config, weights = _tiny_model(labels, tokenizer.config.vocab_size)
    ctx = ExportContext(weights=weights, model=config, maxlen=MAXLEN, vocab_size=tokenizer.config.vocab_size,
                        name="tiny", calibration_ids=np.zeros((1, 1), np.int32),
                        tokenizer_json=tokenizer.to_json().encode("utf-8"), labels=labels,
                        training_texts=tuple(texts))
    data, _ = build_file(ctx)
    path = tmp / "model.mediapipe.tflite"
    path.write_bytes(data)
    return path, tokenizer, NumpySentimentModel(config, weights, MAXLEN, tokenizer.config.vocab_size)


@pytest.fixture(scope="module")
def tweets():
    return _tweets(TWEETS)


@pytest.fixture(scope="module")
def three_labels(tmp_path_factory, tweets):
    pytest.importorskip("tensorflow")
    return _write_file(tmp_path_factory.mktemp("mediapipe3"), LABELS, tweets)


def test_a_three_label_file_has_three_columns_and_three_label_lines(three_labels):
    from sentilite.export.mediapipe.metadata import METADATA_NAME
    from sentilite.export.mediapipe.reader import MediapipeFile
    from sentilite.export.mediapipe.validation import check_structure
    from sentilite.runtime.flatbuffer import read_tflite_metadata

    path, _, _ = three_labels
    info = check_structure(path, "model.mediapipe.tflite")
    assert info["outputs"] == [{"name": "probabilities", "dtype": "float32", "shape": [1, 3]}]
    assert info["subgraphs"] == 1 and "SOFTMAX" in info["ops"]
    file = MediapipeFile.read(path)
    assert file.files["labels.txt"] == b"negative\nneutral\npositive\n" and file.labels() == LABELS
    metadata = read_tflite_metadata(path.read_bytes())[METADATA_NAME]
    assert b"negative, neutral, positive" in metadata and b"Text classification into 3 labels" in metadata


def test_check_structure_wants_one_column_a_label(three_labels, tmp_path):
    import zipfile

    from sentilite.export.errors import ExportValidationError
    from sentilite.export.mediapipe.metadata import LABEL_FILE, VOCAB_FILE, attach_metadata
    from sentilite.export.mediapipe.reader import MediapipeFile
    from sentilite.export.mediapipe.validation import check_structure

    path, _, _ = three_labels
    file = MediapipeFile.read(path)
    graph = file.content[: file.flatbuffer_bytes]
    assert zipfile.is_zipfile(path)
    four = tmp_path / "four.tflite"
    four.write_bytes(attach_metadata(graph, b"", {VOCAB_FILE: file.files[VOCAB_FILE], LABEL_FILE: b"a\nb\nc\nd\n"}))
    with pytest.raises(ExportValidationError, match=r"is not one float32 \[1, 4\]"):
        check_structure(four, "four.tflite")


def test_the_emulated_client_answers_like_the_numpy_reference(three_labels, tweets):
    from sentilite.export.mediapipe.client import emulate_client
    from sentilite.export.validate import ValidationConfig, compare

    path, tokenizer, reference = three_labels
    answers = emulate_client(path, tweets)
    expected = reference.predict(tokenizer.encode_batch(tweets))
    assert answers.shape == expected.shape == (TWEETS, 3)
    stats = compare(expected, answers)
    # the file's only loss is its int8 weights; the vocabulary holds every form the tweets show
    assert stats["max_abs_diff"] < 0.05, stats
    assert stats["agreement"] >= ValidationConfig().for_precision("int8").min_agreement, stats


def test_a_two_label_file_still_answers_p_positive(tmp_path, tweets):
    pytest.importorskip("tensorflow")
    from sentilite.export.mediapipe.client import emulate_client

    path, tokenizer, reference = _write_file(tmp_path, ("negative", "positive"), tweets[:100])
    answers = emulate_client(path, tweets[:100])
    assert answers.shape == (100,)
    assert np.abs(answers - reference.predict(tokenizer.encode_batch(tweets[:100]))).max() < 0.05


@pytest.mark.integration
def test_mediapipe_classifies_a_three_label_file_as_the_numpy_reference_does(three_labels, tweets):
    from sentilite.export.mediapipe import client_venv
    from sentilite.export.mediapipe.client import DEFAULT_VENV, VENV_ENV, client_answers, emulate_client, run_client
    from sentilite.export.validate import compare

    folder = Path(os.environ.get(VENV_ENV) or ROOT / DEFAULT_VENV)
    stamp = client_venv.setup(folder, quiet=True)
    path, tokenizer, reference = three_labels
    result = run_client([path], tweets, client_venv.venv_python(folder), engines=stamp["engines"])
    assert result["categories"]["mediapipe"] == sorted(LABELS)
    assert result["max_sum_error"]["mediapipe"] < 1e-5
    assert result["positive"]["mediapipe"] == {}  # a P(positive) only for files of two labels
    by_mediapipe = client_answers(result, "mediapipe", path)
    assert by_mediapipe.shape == (TWEETS, 3)
    assert np.abs(by_mediapipe - emulate_client(path, tweets)).max() <= 1e-5
    stats = compare(reference.predict(tokenizer.encode_batch(tweets)), by_mediapipe)
    assert stats["agreement"] >= 0.99, stats
    if "nlclassifier" in stamp["engines"]:
        assert np.abs(client_answers(result, "nlclassifier", path) - by_mediapipe).max() <= 1e-5


def test_the_client_script_reads_the_label_file_the_exporter_writes():
    from sentilite.export.mediapipe import client_venv, metadata

    assert client_venv.LABEL_FILE == metadata.LABEL_FILE


# -- the models that get no MediaPipe file --------------------------------------------------------------
def _run_config(**model):
    from sentilite.train.config import RunConfig

    config = RunConfig(name="m", preset="p")
    return dataclasses.replace(config, model=dataclasses.replace(config.model, **model)) if model else config


def test_a_model_of_words_gets_a_file():
    assert unsupported_reason(_run_config()) is None
    assert unsupported_reason(_run_config(labels=tuple("abcde"), ngram_buckets=150_000,
                                          ngram_lookup="dictionary")) is None


def test_characters_as_words_get_no_file():
    config = dataclasses.replace(_run_config(), tokenizer=TokenizerConfig(character_words="cjk"))
    assert unsupported_reason(config) == (
        "the tokenizer makes single characters words (character_words='cjk'); MediaPipe's RegexTokenizer splits "
        "text only at delimiters, never between two letters")


def test_an_n_gram_table_over_the_size_limit_gets_no_file():
    reason = unsupported_reason(_run_config(labels=tuple("abcdefg"), ngram_buckets=150_000, ngram_lookup="dictionary"))
    assert reason == ("its n-gram table alone (150,000 buckets x 7 logits) is 1,275,002 bytes at 8 bits, over the "
                      "file's 1,048,576")
