"""Validation, kept apart from export: each file against the Keras model, with tolerances as data.

Tolerances live in a frozen ``ValidationConfig`` that the caller passes in
(tests pass looser agreement floors for seconds-trained models), and the
manifest records the tolerance each file was held to.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from sentilite.runtime.metrics import predicted_classes
from sentilite.runtime.model import to_probabilities
from sentilite.shared.files import sha256_bytes

from .errors import ExportValidationError


@dataclass(frozen=True)
class Tolerance:
    """Limits against the Keras model: probability difference, label agreement, accuracy drop."""

    max_abs_diff: float | None
    min_agreement: float
    # |file accuracy - Keras accuracy| on the test reviews (0.003 = 0.3 points), either way
    max_accuracy_change: float | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _default_tolerances() -> dict[str, Tolerance]:
    return {
        "fp32": Tolerance(max_abs_diff=1e-4, min_agreement=1.0),
        "fp16": Tolerance(max_abs_diff=None, min_agreement=0.999),
        "dynamic-int8": Tolerance(max_abs_diff=None, min_agreement=0.995, max_accuracy_change=0.003),
        "int8": Tolerance(max_abs_diff=None, min_agreement=0.99, max_accuracy_change=0.003),
    }


@dataclass(frozen=True)
class ValidationConfig:
    """Per-precision tolerances; ``for_precision`` is the one place they are looked up."""

    tolerances: dict[str, Tolerance] = field(default_factory=_default_tolerances)

    def for_precision(self, precision: str) -> Tolerance:
        try:
            return self.tolerances[precision]
        except KeyError:
            raise ExportValidationError(f"no validation tolerance for precision {precision!r}") from None

    def replace(self, precision: str, **limits) -> "ValidationConfig":
        """A copy with some limits of one precision changed."""
        changed = dataclasses.replace(self.for_precision(precision), **limits)
        return ValidationConfig({**self.tolerances, precision: changed})


def top_labels(outputs: np.ndarray) -> np.ndarray:
    """Each row's label index by the runtime's rule, for raw answers of either kind: (n,) P(labels[1]) or (n, N)."""
    outputs = np.asarray(outputs)
    classes = 2 if outputs.ndim == 1 or (outputs.ndim == 2 and outputs.shape[1] == 1) else outputs.shape[-1]
    return predicted_classes(to_probabilities(outputs, classes))


def top_label_accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(top_labels(outputs) == np.asarray(labels).reshape(-1))) if len(labels) else 0.0


def compare(reference: np.ndarray, probs: np.ndarray) -> dict:
    """Max |difference| over every probability, and the share of the same predicted label.

    A model of two labels answers P(labels[1]) per row, (n,); one of N labels
    answers (n, N), compared label by label.
    """
    reference = np.asarray(reference, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    if reference.ndim <= 1 or reference.shape[-1] == 1:
        reference, probs = reference.reshape(-1), probs.reshape(-1)
    if reference.shape != probs.shape:
        raise ValueError(f"shape mismatch: {reference.shape} vs {probs.shape}")
    n = int(reference.shape[0])
    return {
        "n": n,
        "max_abs_diff": float(np.max(np.abs(reference - probs))) if reference.size else 0.0,
        "agreement": float(np.mean(top_labels(reference) == top_labels(probs))) if n else 1.0,
    }


def check_parity(file: str, precision: str, stats: dict, split: str, tolerance: Tolerance) -> None:
    """Raise ExportValidationError naming the file, the numbers and the limit that failed."""
    problems = []
    if tolerance.max_abs_diff is not None and stats["max_abs_diff"] > tolerance.max_abs_diff:
        problems.append(f"max |probability difference| {stats['max_abs_diff']:.3g} > tolerance "
                        f"{tolerance.max_abs_diff:g}")
    if stats["agreement"] < tolerance.min_agreement:
        problems.append(f"label agreement {stats['agreement']:.4%} < tolerance {tolerance.min_agreement:.2%}")
    if problems:
        raise ExportValidationError(
            f"{file}: {precision} export does not match the Keras model on {stats['n']} {split} reviews: "
            + "; ".join(problems)
        )


def accuracy_change_limit(tolerance: Tolerance, n: int, disagreeing: int = 0) -> float | None:
    """The accuracy change a file may show: the tolerance, or more on a small test set.

    A file that disagrees with the Keras model on ``disagreeing`` of ``n``
    texts moves the accuracy by (texts it gains - texts it loses) / n; when
    quantization flips labels without favouring right or wrong ones, that
    change has a standard deviation of sqrt(disagreeing) / n. Two of those
    can exceed 0.3 points on a set of a thousand texts (SST-2's 872-sentence
    dev set: 5 flips make 0.51 points) but not on IMDB's 25,000 reviews
    (125 flips: 0.09 points), so the limit is the larger of the two.
    """
    if tolerance.max_accuracy_change is None:
        return None
    noise = 2.0 * math.sqrt(disagreeing) / n if n else 0.0
    return max(tolerance.max_accuracy_change, noise)


def check_accuracy_change(file: str, precision: str, keras_accuracy: float, file_accuracy: float, n: int,
                          tolerance: Tolerance, disagreeing: int = 0) -> None:
    limit = accuracy_change_limit(tolerance, n, disagreeing)
    if limit is None:
        return
    change = file_accuracy - keras_accuracy
    if abs(change) > limit + 1e-12:
        noise = f"; {disagreeing} texts disagree" if limit > tolerance.max_accuracy_change else ""
        raise ExportValidationError(
            f"{file}: {precision} test accuracy {file_accuracy:.4f} is {abs(change) * 100:.2f} points "
            f"{'below' if change < 0 else 'above'} the Keras model's {keras_accuracy:.4f} on {n} test texts "
            f"(tolerance {limit * 100:.2f} points either way{noise})"
        )


@dataclass(frozen=True)
class EvaluationSet:
    """Ids of the texts every file is run on, with the Keras model's answers ((n,) or (n, N))."""

    name: str
    ids: np.ndarray
    labels: np.ndarray
    keras: np.ndarray
    texts: tuple[str, ...] = ()  # for files whose client tokenizes the text itself


@dataclass(frozen=True)
class Evaluation:
    """What every file of a package is held to and measured on, built once per package."""

    validation: ValidationConfig
    validation_set: EvaluationSet
    test_set: EvaluationSet
    short_sets: tuple[EvaluationSet, ...]  # IMDB models only: the last few words of each test review
    keras_accuracy: float  # the Keras model's accuracy on test_set
    label_names: tuple[str, ...] = ("negative", "positive")


@dataclass(frozen=True)
class WrittenFile:
    """One file an exporter wrote, waiting for its check."""

    path: Path  # where it was written (the staging folder)
    shown_as: str  # where it will be once the package is complete: the name every message uses
    format: str  # the runtime format that loads it (onnx, tflite, numpy)
    precision: str
    metadata: dict[str, str]  # what the file carries (embedded_metadata)


class Validator(Protocol):
    """Checks one written file against the Keras model; returns its manifest fields (bytes, sha256, eval, ...)."""

    def __call__(self, file: WrittenFile, evaluation: Evaluation) -> dict: ...


def validate_with_runtime(file: WrittenFile, evaluation: Evaluation) -> dict:
    """Load the file with the runtime, run it as the runtime runs, hold it to its tolerance, evaluate it."""
    from sentilite.runtime.backends import create_backend
    from sentilite.runtime.model import run_batches
    from sentilite.runtime.metrics import classification_metrics
    from sentilite.runtime.model import to_probabilities
    from sentilite.train.evaluate import SHORT_TEXT_WORDS

    content = file.path.read_bytes()
    backend = create_backend(file.format, content, file.shown_as)
    tolerance = evaluation.validation.for_precision(file.precision)
    validation_set, test_set = evaluation.validation_set, evaluation.test_set
    val_stats = compare(validation_set.keras, run_batches(backend, validation_set.ids, 256))
    check_parity(file.shown_as, file.precision, val_stats, "validation", tolerance)
    file_test = run_batches(backend, test_set.ids, 256)
    test_stats = compare(test_set.keras, file_test)
    file_accuracy = top_label_accuracy(file_test, test_set.labels)
    disagreeing = round((1.0 - test_stats["agreement"]) * test_stats["n"])
    check_accuracy_change(file.shown_as, file.precision, evaluation.keras_accuracy, file_accuracy,
                          len(test_set.labels), tolerance, disagreeing)
    short = [round(top_label_accuracy(run_batches(backend, s.ids, 256), s.labels), 6) for s in evaluation.short_sets]
    metrics = classification_metrics(test_set.labels, to_probabilities(file_test, len(evaluation.label_names)),
                                     evaluation.label_names)
    short_text = {"short_text": {"words": list(SHORT_TEXT_WORDS), "n": len(test_set.labels), "accuracy": short}} \
        if evaluation.short_sets else {}
    return {
        "bytes": len(content),
        # the tokenizer, labels and settings each file carries (a fixed cost, not weights)
        "embedded_metadata_bytes": len(json.dumps(file.metadata, separators=(",", ":"))),
        "sha256": sha256_bytes(content),
        "backend": backend.name,
        "input": {"name": "ids", "dtype": "int32",
                  "shape": [None, None if backend.variable_length else test_set.ids.shape[1]],
                  "variable_length": backend.variable_length},
        "validation": {"split": "validation", **val_stats, "tolerance": tolerance.to_dict()},
        "eval": {"split": "test", "n": len(test_set.labels), "accuracy": round(file_accuracy, 6),
                 "agreement": round(test_stats["agreement"], 6), "max_abs_diff": test_stats["max_abs_diff"],
                 "macro_f1": round(metrics.macro_f1, 6),
                 "accuracy_change_limit": accuracy_change_limit(tolerance, len(test_set.labels), disagreeing),
                 **short_text},
    }
