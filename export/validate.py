"""Validation, kept apart from export: each file against the Keras model, with tolerances as data.

Tolerances live in a frozen ``ValidationConfig`` that the caller passes in
(tests pass looser agreement floors for seconds-trained models), and the
manifest records the tolerance each file was held to.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

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


def compare(reference: np.ndarray, probs: np.ndarray) -> dict:
    """Max |difference| of P(positive), and the share of the same predicted label."""
    reference = np.asarray(reference, dtype=np.float64).reshape(-1)
    probs = np.asarray(probs, dtype=np.float64).reshape(-1)
    if reference.shape != probs.shape:
        raise ValueError(f"shape mismatch: {reference.shape} vs {probs.shape}")
    return {
        "n": int(reference.size),
        "max_abs_diff": float(np.max(np.abs(reference - probs))) if reference.size else 0.0,
        "agreement": float(np.mean((reference >= 0.5) == (probs >= 0.5))) if reference.size else 1.0,
    }


def check_parity(file: str, precision: str, stats: dict, split: str, tolerance: Tolerance) -> None:
    """Raise ExportValidationError naming the file, the numbers and the limit that failed."""
    problems = []
    if tolerance.max_abs_diff is not None and stats["max_abs_diff"] > tolerance.max_abs_diff:
        problems.append(f"max |P(positive) difference| {stats['max_abs_diff']:.3g} > tolerance "
                        f"{tolerance.max_abs_diff:g}")
    if stats["agreement"] < tolerance.min_agreement:
        problems.append(f"label agreement {stats['agreement']:.4%} < tolerance {tolerance.min_agreement:.2%}")
    if problems:
        raise ExportValidationError(
            f"{file}: {precision} export does not match the Keras model on {stats['n']} {split} reviews: "
            + "; ".join(problems)
        )


def check_accuracy_change(file: str, precision: str, keras_accuracy: float, file_accuracy: float, n: int,
                          tolerance: Tolerance) -> None:
    if tolerance.max_accuracy_change is None:
        return
    change = file_accuracy - keras_accuracy
    if abs(change) > tolerance.max_accuracy_change + 1e-12:
        raise ExportValidationError(
            f"{file}: {precision} test accuracy {file_accuracy:.4f} is {abs(change) * 100:.2f} points "
            f"{'below' if change < 0 else 'above'} the Keras model's {keras_accuracy:.4f} on {n} test reviews "
            f"(tolerance {tolerance.max_accuracy_change * 100:.1f} points either way)"
        )


@dataclass(frozen=True)
class EvaluationSet:
    """Ids of the reviews every file is run on, with the Keras model's answers."""

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
    short_sets: tuple[EvaluationSet, ...]
    keras_accuracy: float  # the Keras model's accuracy on test_set


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
    from sentilite.train.evaluate import SHORT_TEXT_WORDS, accuracy

    content = file.path.read_bytes()
    backend = create_backend(file.format, content, file.shown_as)
    tolerance = evaluation.validation.for_precision(file.precision)
    validation_set, test_set = evaluation.validation_set, evaluation.test_set
    val_stats = compare(validation_set.keras, run_batches(backend, validation_set.ids, 256))
    check_parity(file.shown_as, file.precision, val_stats, "validation", tolerance)
    file_test = run_batches(backend, test_set.ids, 256)
    test_stats = compare(test_set.keras, file_test)
    file_accuracy = accuracy(file_test, test_set.labels)
    check_accuracy_change(file.shown_as, file.precision, evaluation.keras_accuracy, file_accuracy,
                          len(test_set.labels), tolerance)
    short = [round(accuracy(run_batches(backend, s.ids, 256), s.labels), 6) for s in evaluation.short_sets]
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
                 "short_text": {"words": list(SHORT_TEXT_WORDS), "n": len(test_set.labels), "accuracy": short}},
    }
