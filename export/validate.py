"""Tolerances, as data, and the check every exported file must pass before it is kept."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sentilite.runtime.errors import ExportValidationError


@dataclass(frozen=True)
class Tolerance:
    """Limits against the Keras model: probability difference, label agreement, accuracy drop."""

    max_abs_diff: float | None
    min_agreement: float
    max_accuracy_drop: float | None = None  # on the test reviews, in accuracy (0.005 = half a point)


TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(max_abs_diff=1e-4, min_agreement=1.0),
    "fp16": Tolerance(max_abs_diff=None, min_agreement=0.999),
    "dynamic-int8": Tolerance(max_abs_diff=None, min_agreement=0.995, max_accuracy_drop=0.005),
    "int8": Tolerance(max_abs_diff=None, min_agreement=0.99, max_accuracy_drop=0.005),
}


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


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean((np.asarray(probs).reshape(-1) >= 0.5) == (np.asarray(labels).reshape(-1) >= 0.5)))


def check_parity(file: str, precision: str, stats: dict, split: str, tolerance: Tolerance | None = None) -> None:
    """Raise ExportValidationError naming the file, the numbers and the limit that failed."""
    tol = tolerance or TOLERANCES[precision]
    problems = []
    if tol.max_abs_diff is not None and stats["max_abs_diff"] > tol.max_abs_diff:
        problems.append(f"max |P(positive) difference| {stats['max_abs_diff']:.3g} > tolerance {tol.max_abs_diff:g}")
    if stats["agreement"] < tol.min_agreement:
        problems.append(f"label agreement {stats['agreement']:.4%} < tolerance {tol.min_agreement:.2%}")
    if problems:
        raise ExportValidationError(
            f"{file}: {precision} export does not match the Keras model on {stats['n']} {split} reviews: "
            + "; ".join(problems)
        )


def check_accuracy_drop(file: str, precision: str, keras_accuracy: float, file_accuracy: float, n: int,
                        tolerance: Tolerance | None = None) -> None:
    tol = tolerance or TOLERANCES[precision]
    if tol.max_accuracy_drop is None:
        return
    drop = keras_accuracy - file_accuracy
    if drop > tol.max_accuracy_drop:
        raise ExportValidationError(
            f"{file}: {precision} test accuracy {file_accuracy:.4f} is {drop * 100:.2f} points below the Keras "
            f"model's {keras_accuracy:.4f} on {n} test reviews (tolerance {tol.max_accuracy_drop * 100:.1f} points)"
        )
