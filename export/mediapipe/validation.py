"""The MediaPipe file's check (export_package calls it in place of the runtime's): the clients' way of running it."""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sentilite.runtime.tokenizer import OOV_ID, PAD_ID, Tokenizer, normalize_text
from sentilite.shared.files import sha256_bytes

from ..errors import ExportValidationError
from ..validate import (Evaluation, Tolerance, WrittenFile, accuracy_change_limit, check_accuracy_change, compare,
                        top_label_accuracy, top_labels)
from .client import client_answers, emulate_client, find_client, run_client
from .file import MAX_FILE_BYTES
from .metadata import LABEL_FILE, VOCAB_FILE
from .reader import MediapipeFile, describe_mediapipe
from .regex_tokenizer import client_rows, mediapipe_regex_tokens

log = logging.getLogger("sentilite.export")

RUNTIME_REFERENCE = "model.int8.tflite"  # the sentilite file the client is compared with
# Label agreement with the runtime's int8 file, and accuracy change against Keras, unless the
# ValidationConfig has a "mediapipe" entry: the int8 floor, and at least 0.5 points.
MIN_ACCURACY_CHANGE = 0.005
# The emulation must give the client's answers; more than this is a broken assumption, not rounding.
EMULATION_TOLERANCE = 1e-5
EMULATED = "emulated: the RegexTokenizer and vocab.txt reproduced in Python, the file run by ai-edge-litert"


def tolerance_for(validation):
    if "mediapipe" in validation.tolerances:
        return validation.tolerances["mediapipe"]
    int8 = validation.for_precision("int8")
    return Tolerance(max_abs_diff=None, min_agreement=int8.min_agreement,
                     max_accuracy_change=max(MIN_ACCURACY_CHANGE, int8.max_accuracy_change or 0.0))


def check_structure(path: str | os.PathLike, shown_as: str, max_bytes: int = MAX_FILE_BYTES) -> dict:
    """What the clients require of the file (raises ExportValidationError); returns describe_mediapipe's fields."""
    file = MediapipeFile.read(path)
    info = describe_mediapipe(path)
    problems = []
    if len(file.content) > max_bytes:
        problems.append(f"{len(file.content):,} bytes, over {max_bytes:,}")
    if info["subgraphs"] != 1:
        problems.append(f"{info['subgraphs']} subgraphs (MediaPipe reads one)")
    inputs, outputs = info["inputs"], info["outputs"]
    if len(inputs) != 1 or inputs[0]["dtype"] != "int32" or len(inputs[0]["shape"]) != 2 or inputs[0]["shape"][0] != 1:
        problems.append(f"input {inputs} is not one int32 [1, L]")
    classes = len(file.labels()) if LABEL_FILE in file.files else 2
    if len(outputs) != 1 or outputs[0]["dtype"] != "float32" or outputs[0]["shape"] != [1, classes]:
        problems.append(f"output {outputs} is not one float32 [1, {classes}]")
    if file.compressed:
        problems.append(f"compressed associated files {file.compressed} (MediaPipe reads stored ones only)")
    missing = {VOCAB_FILE, LABEL_FILE} - set(file.files)
    if missing:
        problems.append(f"no {sorted(missing)} packed")
    if "WHILE" in info["ops"] or any(op.startswith("CUSTOM") for op in info["ops"]):
        problems.append(f"operators the clients cannot run in one subgraph: {info['ops']}")
    if problems:
        raise ExportValidationError(f"{shown_as}: " + "; ".join(problems))
    return info


def _front_rows(client: np.ndarray, maxlen: int) -> np.ndarray:
    """What the graph makes of client rows: the last maxlen real ids, front-padded."""
    out = np.zeros((len(client), maxlen), np.int32)
    counts = (client != PAD_ID).sum(axis=1)
    for r, k in enumerate(counts):
        kept = client[r, max(0, k - maxlen): k]
        out[r, maxlen - len(kept):] = kept
    return out


def explain_differences(texts: Sequence[str], sentilite_ids: np.ndarray, vocabulary: dict[str, int], length: int,
                        tokenizer: Tokenizer, same_label: np.ndarray) -> dict:
    """Why a review's row differs from the sentilite row, by cause, with label agreement per cause.

    identical: the model sees the same ids (what is left is int8 rounding);
    truncated: more than L tokens, the client keeps the first L (the
    sentilite tokenizer the last maxlen words); vocabulary: the same once
    every casing of every word is in vocab.txt, so the file's size limit is
    the cause; tokenizer: the rest (Unicode normalization, letters the
    sentilite tokenizer joins differently).
    """
    maxlen = sentilite_ids.shape[1]
    client = _front_rows(client_rows(texts, vocabulary, length), maxlen)
    cause = np.empty(len(texts), dtype=object)
    words = dict(tokenizer._ids)
    for r, text in enumerate(texts):
        if np.array_equal(client[r], sentilite_ids[r]):
            cause[r] = "identical"
            continue
        tokens = mediapipe_regex_tokens(text)
        if len(tokens) > length:
            cause[r] = "truncated"
            continue
        every_form = [words.get(normalize_text(t, tokenizer.config), OOV_ID) for t in tokens]
        full = np.zeros(maxlen, np.int32)
        kept = every_form[-maxlen:]
        full[maxlen - len(kept):] = kept
        cause[r] = "vocabulary" if np.array_equal(full, sentilite_ids[r]) else "tokenizer"
    out = {}
    for name in ("identical", "vocabulary", "truncated", "tokenizer"):
        mask = cause == name
        out[name] = {"reviews": int(mask.sum()),
                     "agreement": round(float(same_label[mask].mean()), 6) if mask.any() else None,
                     "disagreeing": int((~same_label[mask]).sum())}
    return out


def validate_mediapipe(file: WrittenFile, evaluation: Evaluation) -> dict:
    """Check and evaluate model.mediapipe.tflite as its clients run it; the manifest fields.

    The test reviews go through MediaPipe's TextClassifier itself, in the
    client venv (one subprocess), and are compared with the sentilite
    runtime's int8 file and with Keras. The validation and short-text
    reviews, and the run without a client venv, use ``emulate_client``,
    which must give the client's answers on the test reviews to within
    EMULATION_TOLERANCE. The evaluation sets must carry their texts.
    """
    path, shown_as, validation = file.path, file.shown_as, evaluation.validation
    validation_set, test_set, short_sets = evaluation.validation_set, evaluation.test_set, evaluation.short_sets
    keras_accuracy = evaluation.keras_accuracy
    from sentilite.runtime.backends import create_backend
    from sentilite.runtime.model import run_batches
    from sentilite.train.evaluate import SHORT_TEXT_WORDS

    started = time.time()
    if any(len(s.texts) != len(s.labels) for s in (validation_set, test_set, *short_sets)):
        raise ExportValidationError(f"{shown_as}: the MediaPipe check needs the reviews as text (EvaluationSet.texts)")
    info = check_structure(path, shown_as)
    length = info["inputs"][0]["shape"][1]
    tolerance = tolerance_for(validation)
    test_texts = list(test_set.texts)
    emulated = emulate_client(path, test_texts)
    client = find_client()
    engine, emulation_diff, nlclassifier = EMULATED, None, None
    if client is None:
        log.warning("%s: no MediaPipe client venv (make mediapipe-client); evaluating with the emulation", shown_as)
        answers = emulated
    else:
        python, stamp = client
        result = run_client([path], test_texts, python, engines=stamp.get("engines", ["mediapipe"]))
        answers = client_answers(result, "mediapipe", path)
        engine = f"{stamp['requirements'][0]} TextClassifier ({result['texts_per_second']['mediapipe']:.0f} texts/s)"
        emulation_diff = float(np.max(np.abs(answers - emulated))) if len(answers) else 0.0
        if emulation_diff > EMULATION_TOLERANCE:
            raise ExportValidationError(f"{shown_as}: the emulated client differs from MediaPipe by "
                                        f"{emulation_diff:.3g} on the test reviews: mediapipe_regex_tokens no longer "
                                        f"matches the RegexTokenizer")
        if "nlclassifier" in result["probabilities"]:  # the TFLite Task Library, against MediaPipe
            nlclassifier = {"engine": f"{stamp['requirements'][1]} NLClassifier",
                            **compare(answers, client_answers(result, "nlclassifier", path))}
    test_stats = compare(test_set.keras, answers)
    file_accuracy = top_label_accuracy(answers, test_set.labels)
    disagreeing = round((1.0 - test_stats["agreement"]) * test_stats["n"])
    check_accuracy_change(shown_as, "mediapipe", keras_accuracy, file_accuracy, len(test_set.labels), tolerance,
                          disagreeing)
    runtime = None
    reference_file = Path(path).parent / RUNTIME_REFERENCE
    if reference_file.exists():
        reference = run_batches(create_backend("tflite", reference_file.read_bytes(), str(reference_file)),
                                test_set.ids, 256)
        runtime = {"file": RUNTIME_REFERENCE, **compare(reference, answers)}
        if runtime["agreement"] < tolerance.min_agreement:
            raise ExportValidationError(
                f"{shown_as}: labels agree with the sentilite runtime's {RUNTIME_REFERENCE} on "
                f"{runtime['agreement']:.4%} of {runtime['n']:,} test reviews (floor {tolerance.min_agreement:.2%})")
        # the package's tokenizer.json, beside where the file will be moved (shown_as)
        tokenizer = Tokenizer.from_file(Path(shown_as).parent / "tokenizer.json")
        runtime["differences"] = explain_differences(test_texts, test_set.ids, MediapipeFile.read(path).vocabulary(),
                                                     length, tokenizer, top_labels(reference) == top_labels(answers))
    else:
        log.warning("%s: no %s beside it to compare with; export the tflite format too", shown_as, RUNTIME_REFERENCE)
    val_answers = emulate_client(path, list(validation_set.texts))
    short = [round(top_label_accuracy(emulate_client(path, list(s.texts)), s.labels), 6) for s in short_sets]
    short_text = {"short_text": {"words": list(SHORT_TEXT_WORDS), "n": len(test_set.labels), "accuracy": short,
                                 "engine": "emulated"}} if short_sets else {}
    content = Path(path).read_bytes()
    log.info("%s: MediaPipe check in %.0f s", shown_as, time.time() - started)
    return {
        "bytes": len(content),
        "sha256": sha256_bytes(content),
        "backend": engine,
        "weights": "int8", "activations": "float32",
        "input": {"name": "ids", "dtype": "int32", "shape": [1, length], "variable_length": False,
                  "tokenizer": "RegexTokenizer (metadata)", "padding": "post, moved to the front in the graph"},
        "validation": {"split": "validation", **compare(validation_set.keras, val_answers), "engine": "emulated"},
        "eval": {"split": "test", "n": len(test_set.labels), "accuracy": round(file_accuracy, 6),
                 "agreement": round(test_stats["agreement"], 6), "max_abs_diff": test_stats["max_abs_diff"],
                 "engine": engine, "emulation_max_abs_diff": emulation_diff, "runtime": runtime,
                 "nlclassifier": nlclassifier, "tolerance": tolerance.to_dict(),
                 "accuracy_change_limit": accuracy_change_limit(tolerance, len(test_set.labels), disagreeing),
                 **short_text},
    }
