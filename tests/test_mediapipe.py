"""model.mediapipe.tflite, run by the clients app developers use: MediaPipe's TextClassifier and NLClassifier.

The clients live in their own venv (export/mediapipe/client_venv.py; `make
mediapipe-client`), created here if it is missing: about 20 s with a cold
pip cache.
"""
import json
import os
import subprocess
import tomllib
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, SEED_MODEL_VALIDATION, small_config
from sentilite.export.mediapipe import client_venv
from sentilite.export.mediapipe.client import CLIENT_SCRIPT, DEFAULT_VENV, VENV_ENV, emulate_client, run_client
from sentilite.export.mediapipe.file import MAX_FILE_BYTES, build_file
from sentilite.export.mediapipe.metadata import METADATA_NAME, MIN_PARSER_VERSION
from sentilite.export.mediapipe.reader import MediapipeFile
from sentilite.export.mediapipe.regex_tokenizer import DELIMITER_PATTERN, MIN_MOBILE_LENGTH, mediapipe_regex_tokens
from sentilite.export.mediapipe.validation import EMULATION_TOLERANCE, MIN_ACCURACY_CHANGE
from sentilite.runtime.recurrence import dictionary_groups

pytestmark = pytest.mark.integration

CELLS = ("rnn", "lstm", "gru")
CLIENT_REVIEWS = 300
# Texts where the two tokenizers could part: casing, typographic apostrophes, HTML breaks, quotes,
# apostrophes at word edges, non-ASCII letters, underscores, empty text, and more tokens than L.
EDGE_TEXTS = [
    "The movie was GREAT! I loved it.",
    "Don\u2019t watch it. Terrible<br /><br />acting, the worst<BR>ever. It's `bad`.",
    "'Quoted' words, the students' essays and rock 'n' roll''s end'",
    "na\u00efve caf\u00e9, \u00c9COLE, \u00dcber \u2014 \u00e9migr\u00e9s; \uff37\uff49\uff44\uff45 letters",
    "snake_case and 3D, 1990s, 9/10, 10/10!!!",
    "",
    "!!! ??? ...",
    "good " * 9000 + "awful awful awful",
]


@pytest.fixture(scope="session")
def client():
    """(the client venv's Python, its setup stamp): $SENTILITE_MEDIAPIPE_VENV or .venv-mediapipe, made if missing."""
    folder = Path(os.environ.get(VENV_ENV) or ROOT / DEFAULT_VENV)
    stamp = client_venv.setup(folder, quiet=True)
    return client_venv.venv_python(folder), stamp


@pytest.fixture(scope="module")
def reviews(imdb):
    from sentilite.train.data import subset

    return subset(imdb.test, CLIENT_REVIEWS, seed=11)


def _artifact(manifest):
    found = [a for a in manifest["artifacts"] if a.get("client") == "mediapipe"]
    assert len(found) == 1, [a["file"] for a in manifest["artifacts"]]
    return found[0]


@pytest.mark.parametrize("cell", CELLS)
def test_file_is_listed_and_is_what_the_clients_need(exported, cell):
    from sentilite.runtime.flatbuffer import read_tflite_metadata

    folder, manifest = exported[cell]
    a = _artifact(manifest)
    content = (folder / "model.mediapipe.tflite").read_bytes()
    assert a["file"] == "model.mediapipe.tflite" and a["format"] == "tflite" and a["precision"] == "int8"
    assert a["bytes"] == len(content) <= MAX_FILE_BYTES
    assert a["subgraphs"] == 1 and "WHILE" not in a["ops"]
    assert a["inputs"] == [{"name": "ids", "dtype": "int32", "shape": [1, MIN_MOBILE_LENGTH]}]
    assert a["outputs"] == [{"name": "probabilities", "dtype": "float32", "shape": [1, 2]}]
    assert {"GATHER (subgraph 0)", "DEQUANTIZE (subgraph 0)"} <= set(a["quantized_nodes"])
    by_type = a["size"]["weights_by_type"]
    # every float matrix and table is int8; a learned dictionary adds its uint8 fingerprints and int16 displacements
    model = small_config(cell).model
    if model.ngram_dictionary:
        assert by_type["UINT8"] == model.ngram_buckets
        assert by_type["INT16"] == 2 * dictionary_groups(model.ngram_buckets)
    assert by_type["INT8"] + by_type.get("UINT8", 0) + by_type.get("INT16", 0) > 0.9 * a["size"]["weights"]
    files = a["associated_files"]
    assert files == {"vocab.txt": {"bytes": files["vocab.txt"]["bytes"], "stored": True},
                     "labels.txt": {"bytes": 18, "stored": True}}
    assert read_tflite_metadata(content)[METADATA_NAME][4:8] == b"M001"
    file = MediapipeFile.read(folder / "model.mediapipe.tflite")
    assert file.files["labels.txt"] == b"negative\npositive\n"
    vocab = file.vocabulary()
    assert vocab["<PAD>"] == 0 and vocab["<UNKNOWN>"] == 1 and "<START>" not in vocab
    assert vocab["the"] == vocab["The"] == vocab["THE"]


@pytest.mark.parametrize("cell", CELLS)
def test_manifest_records_parity_with_the_runtime_and_keras(exported, cell):
    _, manifest = exported[cell]
    ev = _artifact(manifest)["eval"]
    limit = SEED_MODEL_VALIDATION.for_precision("int8")
    assert ev["n"] == 2000 and ev["split"] == "test" and len(ev["short_text"]["accuracy"]) == 3
    assert ev["runtime"]["file"] == "model.int8.tflite" and ev["runtime"]["n"] == 2000
    assert ev["runtime"]["agreement"] >= limit.min_agreement
    assert abs(ev["accuracy"] - manifest["source"]["test_accuracy"]) <= max(MIN_ACCURACY_CHANGE,
                                                                            limit.max_accuracy_change)
    causes = ev["runtime"]["differences"]
    assert sum(c["reviews"] for c in causes.values()) == 2000
    assert causes["identical"]["reviews"] >= 0.95 * 2000  # the whole vocabulary fits a test model
    if ev["emulation_max_abs_diff"] is not None:  # the real client ran in the export
        assert ev["engine"].startswith("mediapipe==") and ev["emulation_max_abs_diff"] <= EMULATION_TOLERANCE
        if ev["nlclassifier"] is not None:
            assert ev["nlclassifier"]["n"] == 2000 and ev["nlclassifier"]["max_abs_diff"] <= 1e-5


def test_clients_classify_real_reviews_as_the_sentilite_runtime_does(client, exported, reviews):
    """Every cell's file in MediaPipe (and NLClassifier): categories, agreement with the runtime, the emulation."""
    from sentilite.runtime import load

    python, stamp = client
    texts = list(reviews.texts) + EDGE_TEXTS
    models = [str(exported[cell][0] / "model.mediapipe.tflite") for cell in CELLS]
    result = run_client(models, texts, python, engines=stamp["engines"])
    assert result["categories"]["mediapipe"] == ["negative", "positive"]
    assert result["max_sum_error"]["mediapipe"] < 1e-5
    for cell, model in zip(CELLS, models):
        by_mediapipe = result["positive"]["mediapipe"][model]
        runtime = load(exported[cell][0], format="tflite", precision="int8")
        by_runtime = runtime.predict_proba(texts[:CLIENT_REVIEWS])[:, 1]
        agreement = np.mean((by_mediapipe[:CLIENT_REVIEWS] >= 0.5) == (by_runtime >= 0.5))
        assert agreement >= 0.98, (cell, agreement)
        # the emulation the export evaluates with gives the client's answers, edge texts included
        assert np.abs(emulate_client(model, texts) - by_mediapipe).max() <= EMULATION_TOLERANCE, cell
        if "nlclassifier" in stamp["engines"]:
            assert np.abs(result["positive"]["nlclassifier"][model] - by_mediapipe).max() <= 1e-5, cell
    if "nlclassifier" not in stamp["engines"]:
        pytest.skip(f"NLClassifier not checked: {stamp.get('nlclassifier_missing')}")


def test_tflite_support_reads_the_metadata(client, exported):
    python, stamp = client
    if "nlclassifier" not in stamp["engines"]:
        pytest.skip(f"tflite-support unavailable: {stamp.get('nlclassifier_missing')}")
    model = exported["gru"][0] / "model.mediapipe.tflite"
    out = subprocess.run([str(python), str(CLIENT_SCRIPT), "describe", str(model)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    described = json.loads(out.stdout)
    assert described["associated_files"] == ["labels.txt", "vocab.txt"]
    meta = described["metadata"]
    assert meta["min_parser_version"] == MIN_PARSER_VERSION
    graph = meta["subgraph_metadata"][0]
    unit = graph["input_tensor_metadata"][0]["process_units"][0]
    assert unit["options_type"] == "RegexTokenizerOptions"
    assert unit["options"]["delim_regex_pattern"] == DELIMITER_PATTERN
    assert unit["options"]["vocab_file"][0] == {"name": "vocab.txt", "description": unit["options"]["vocab_file"][0][
        "description"], "type": "VOCABULARY"}
    labels = graph["output_tensor_metadata"][0]["associated_files"][0]
    assert labels["name"] == "labels.txt" and labels["type"] == "TENSOR_AXIS_LABELS"


def test_mediapipe_regex_tokens_are_the_sentilite_words_before_lower_casing(exported, reviews):
    from sentilite.runtime import Tokenizer
    from sentilite.runtime.tokenizer import normalize_text

    tokenizer = Tokenizer.from_file(exported["gru"][0] / "tokenizer.json")

    def as_sentilite(text):
        return [normalize_text(t, tokenizer.config) for t in mediapipe_regex_tokens(text)]

    same = [as_sentilite(t) == tokenizer.words(t) for t in reviews.texts]
    assert np.mean(same) >= 0.99
    for text in EDGE_TEXTS[:3] + EDGE_TEXTS[4:]:
        assert as_sentilite(text) == tokenizer.words(text), text


# Run in the client venv: each text's id row as MediaPipe's TextClassifier feeds it to the model, read
# back from a probe file that outputs its input row (one category per position, id * 2**-16 as the score).
_PROBE_CLIENT = """
import json, sys
from mediapipe.tasks.python.core import base_options
from mediapipe.tasks.python.text import text_classifier

model, texts_file, out_file = sys.argv[1:]
options = text_classifier.TextClassifierOptions(base_options=base_options.BaseOptions(model_asset_path=model))
classifier = text_classifier.TextClassifier.create_from_options(options)
rows = [{c.category_name: c.score for c in classifier.classify(text).classifications[0].categories}
        for text in json.load(open(texts_file, encoding="utf-8"))]
classifier.close()
json.dump(rows, open(out_file, "w"))
"""
PROBE_LENGTH = 512
PROBE_SCALE = 2.0 ** -16


def _probe_file(path, vocabulary: dict[str, int]):
    """A MediaPipe text classifier whose PROBE_LENGTH scores are its input ids: the file's metadata, another graph."""
    import tensorflow as tf

    from sentilite.export.mediapipe.metadata import LABEL_FILE, VOCAB_FILE, attach_metadata, metadata_flatbuffer

    @tf.function(input_signature=[tf.TensorSpec([1, PROBE_LENGTH], tf.int32, name="ids")])
    def row(ids):
        return tf.cast(ids, tf.float32) * PROBE_SCALE

    converter = tf.lite.TFLiteConverter.from_concrete_functions([row.get_concrete_function()], row)
    metadata = metadata_flatbuffer(name="probe", description="The input row.", version="1", input_name="ids",
                                   output_name="probabilities", delimiter=DELIMITER_PATTERN,
                                   labels_description="one label per position")
    vocab = "".join(f"{token} {i}\n" for token, i in vocabulary.items()).encode("utf-8")
    labels = "".join(f"p{k}\n" for k in range(PROBE_LENGTH)).encode("utf-8")
    path.write_bytes(attach_metadata(converter.convert(), metadata, {VOCAB_FILE: vocab, LABEL_FILE: labels}))
    return path


def test_mediapipe_regex_tokens_are_what_mediapipe_tokenizes(client, reviews, tmp_path):
    """The real client's id rows equal client_rows over mediapipe_regex_tokens, every token its own id."""
    from sentilite.export.mediapipe.regex_tokenizer import client_rows

    python, _ = client
    texts = list(reviews.texts) + EDGE_TEXTS
    tokens = sorted({t for text in texts for t in mediapipe_regex_tokens(text)})
    vocabulary = {"<PAD>": 0, "<UNKNOWN>": 1, **{t: i for i, t in enumerate(tokens, 2)}}
    assert len(vocabulary) < 1 / PROBE_SCALE
    model = _probe_file(tmp_path / "probe.tflite", vocabulary)
    texts_file, out_file = tmp_path / "texts.json", tmp_path / "rows.json"
    texts_file.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    out = subprocess.run([str(python), "-c", _PROBE_CLIENT, str(model), str(texts_file), str(out_file)],
                         capture_output=True, text=True, timeout=600, env={**os.environ, "GLOG_minloglevel": "2"})
    assert out.returncode == 0, out.stderr[-2000:]
    scores = json.loads(out_file.read_text())
    by_mediapipe = np.array([[round(row.get(f"p{k}", 0.0) / PROBE_SCALE) for k in range(PROBE_LENGTH)]
                             for row in scores], np.int32)
    emulated = client_rows(texts, vocabulary, PROBE_LENGTH)
    assert (emulated == 1).sum() == 0  # every emulated token is in the vocabulary
    for text, ours, theirs in zip(texts, emulated, by_mediapipe):
        assert np.array_equal(ours, theirs), text[:200]


def test_vocabulary_gives_way_to_the_size_limit(trained_models, imdb):
    """Under a tighter byte limit the rarest ids and forms go, the file still fits and still classifies."""
    from sentilite.export.package import read_model_folder
    from sentilite.export.registry import ExportContext
    from sentilite.export.weights import extract_weights
    from sentilite.train.fit import MODEL_FILE, split_training_reviews
    from sentilite.train.keras_model import load_keras_model

    folder = trained_models["gru"][0]
    run_config, tokenizer_bytes, tokenizer = read_model_folder(folder)
    weights = extract_weights(load_keras_model(folder / MODEL_FILE), run_config.model)
    fit_part, _ = split_training_reviews(run_config, imdb)
    ctx = ExportContext(weights=weights, model=run_config.model, maxlen=tokenizer.config.maxlen,
                        vocab_size=tokenizer.config.vocab_size, name=run_config.name,
                        calibration_ids=np.zeros((1, 1), np.int32), tokenizer_json=tokenizer_bytes,
                        labels=("negative", "positive"), training_texts=tuple(fit_part.texts))
    free, free_vocab = build_file(ctx)
    tight, tight_vocab = build_file(ctx, max_bytes=len(free) - 40_000)
    assert len(tight) <= len(free) - 40_000
    assert tight_vocab.kept_ids < free_vocab.kept_ids or len(tight_vocab.lines) < len(free_vocab.lines)
    assert 0.9 < tight_vocab.coverage < free_vocab.coverage


def test_pyproject_extra_pins_what_the_client_venv_installs():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["mediapipe"] == list(client_venv.CLIENT_REQUIREMENTS)
