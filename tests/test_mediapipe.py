"""model.mediapipe.tflite, run by the clients app developers use: MediaPipe's TextClassifier and NLClassifier.

The clients live in their own venv (export/mediapipe_client.py; `make
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
from sentilite.export import mediapipe_client
from sentilite.export import to_mediapipe as mp
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
    folder = Path(os.environ.get(mp.VENV_ENV) or ROOT / mp.DEFAULT_VENV)
    stamp = mediapipe_client.setup(folder, quiet=True)
    return mediapipe_client.venv_python(folder), stamp


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
    assert a["bytes"] == len(content) <= mp.MAX_FILE_BYTES
    assert a["subgraphs"] == 1 and "WHILE" not in a["ops"]
    assert a["inputs"] == [{"name": "ids", "dtype": "int32", "shape": [1, mp.MIN_MOBILE_LENGTH]}]
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
    assert read_tflite_metadata(content)[mp.METADATA_NAME][4:8] == b"M001"
    file = mp.MediapipeFile.read(folder / "model.mediapipe.tflite")
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
    assert abs(ev["accuracy"] - manifest["source"]["test_accuracy"]) <= max(mp.MIN_ACCURACY_CHANGE,
                                                                            limit.max_accuracy_change)
    causes = ev["runtime"]["differences"]
    assert sum(c["reviews"] for c in causes.values()) == 2000
    assert causes["identical"]["reviews"] >= 0.95 * 2000  # the whole vocabulary fits a test model
    if ev["emulation_max_abs_diff"] is not None:  # the real client ran in the export
        assert ev["engine"].startswith("mediapipe==") and ev["emulation_max_abs_diff"] <= mp.EMULATION_TOLERANCE
        if ev["nlclassifier"] is not None:
            assert ev["nlclassifier"]["n"] == 2000 and ev["nlclassifier"]["max_abs_diff"] <= 1e-5


def test_clients_classify_real_reviews_as_the_sentilite_runtime_does(client, exported, reviews):
    """Every cell's file in MediaPipe (and NLClassifier): categories, agreement with the runtime, the emulation."""
    from sentilite.runtime import load

    python, stamp = client
    texts = list(reviews.texts) + EDGE_TEXTS
    models = [str(exported[cell][0] / "model.mediapipe.tflite") for cell in CELLS]
    result = mp.run_client(models, texts, python, engines=stamp["engines"])
    assert result["categories"]["mediapipe"] == ["negative", "positive"]
    assert result["max_sum_error"]["mediapipe"] < 1e-5
    for cell, model in zip(CELLS, models):
        by_mediapipe = result["positive"]["mediapipe"][model]
        runtime = load(exported[cell][0], format="tflite", precision="int8")
        by_runtime = runtime.predict_proba(texts[:CLIENT_REVIEWS])[:, 1]
        agreement = np.mean((by_mediapipe[:CLIENT_REVIEWS] >= 0.5) == (by_runtime >= 0.5))
        assert agreement >= 0.98, (cell, agreement)
        # the emulation the export evaluates with gives the client's answers, edge texts included
        assert np.abs(mp.emulate_client(model, texts) - by_mediapipe).max() <= mp.EMULATION_TOLERANCE, cell
        if "nlclassifier" in stamp["engines"]:
            assert np.abs(result["positive"]["nlclassifier"][model] - by_mediapipe).max() <= 1e-5, cell
    if "nlclassifier" not in stamp["engines"]:
        pytest.skip(f"NLClassifier not checked: {stamp.get('nlclassifier_missing')}")


def test_tflite_support_reads_the_metadata(client, exported):
    python, stamp = client
    if "nlclassifier" not in stamp["engines"]:
        pytest.skip(f"tflite-support unavailable: {stamp.get('nlclassifier_missing')}")
    model = exported["gru"][0] / "model.mediapipe.tflite"
    out = subprocess.run([str(python), str(mp.CLIENT_SCRIPT), "describe", str(model)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    described = json.loads(out.stdout)
    assert described["associated_files"] == ["labels.txt", "vocab.txt"]
    meta = described["metadata"]
    assert meta["min_parser_version"] == mp.MIN_PARSER_VERSION
    graph = meta["subgraph_metadata"][0]
    unit = graph["input_tensor_metadata"][0]["process_units"][0]
    assert unit["options_type"] == "RegexTokenizerOptions"
    assert unit["options"]["delim_regex_pattern"] == mp.DELIMITER_PATTERN
    assert unit["options"]["vocab_file"][0] == {"name": "vocab.txt", "description": unit["options"]["vocab_file"][0][
        "description"], "type": "VOCABULARY"}
    labels = graph["output_tensor_metadata"][0]["associated_files"][0]
    assert labels["name"] == "labels.txt" and labels["type"] == "TENSOR_AXIS_LABELS"


def test_client_tokens_are_the_sentilite_words_before_lower_casing(exported, reviews):
    from sentilite.runtime import Tokenizer
    from sentilite.runtime.tokenizer import normalize_text

    tokenizer = Tokenizer.from_file(exported["gru"][0] / "tokenizer.json")

    def as_sentilite(text):
        return [normalize_text(t, tokenizer.config) for t in mp.client_tokens(text)]

    same = [as_sentilite(t) == tokenizer.words(t) for t in reviews.texts]
    assert np.mean(same) >= 0.99
    for text in EDGE_TEXTS[:3] + EDGE_TEXTS[4:]:
        assert as_sentilite(text) == tokenizer.words(text), text


def test_vocabulary_gives_way_to_the_size_limit(trained_models, imdb):
    """Under a tighter byte limit the rarest ids and forms go, the file still fits and still classifies."""
    from sentilite.export.package import read_model_folder
    from sentilite.export.registry import ExportContext
    from sentilite.export.weights import extract_weights
    from sentilite.train.fit import MODEL_FILE, split_training_reviews
    from sentilite.train.model import load_keras_model

    folder = trained_models["gru"][0]
    run_config, tokenizer_bytes, tokenizer = read_model_folder(folder)
    weights = extract_weights(load_keras_model(folder / MODEL_FILE), run_config.model)
    fit_part, _ = split_training_reviews(run_config, imdb)
    ctx = ExportContext(weights=weights, model=run_config.model, maxlen=tokenizer.config.maxlen,
                        vocab_size=tokenizer.config.vocab_size, name=run_config.name,
                        calibration_ids=np.zeros((1, 1), np.int32), tokenizer_json=tokenizer_bytes,
                        labels=("negative", "positive"), training_texts=tuple(fit_part.texts))
    free, free_vocab = mp.build_file(ctx)
    tight, tight_vocab = mp.build_file(ctx, max_bytes=len(free) - 40_000)
    assert len(tight) <= len(free) - 40_000
    assert tight_vocab.kept_ids < free_vocab.kept_ids or len(tight_vocab.lines) < len(free_vocab.lines)
    assert 0.9 < tight_vocab.coverage < free_vocab.coverage


def test_pyproject_extra_pins_what_the_client_venv_installs():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["mediapipe"] == list(mediapipe_client.CLIENT_REQUIREMENTS)
