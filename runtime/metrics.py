"""Classification metrics of a model's probabilities: accuracy, macro-F1, per-class figures and the confusion matrix.

numpy only, so `sentilite evaluate` scores a file on a runtime-only install.
The figures are scikit-learn's: a class never predicted has precision 0 and
F1 0 (its ``zero_division=0``), and macro-F1 is the plain mean over the
classes named, those absent from the data included (each scores 0 then).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sentilite.shared.errors import SentiliteError


class MetricsError(SentiliteError, ValueError):
    """Labels and probabilities that cannot be scored together (shapes, label indices, label names)."""


@dataclass(frozen=True)
class ClassMetrics:
    """One class: precision and recall of predicting it, their F1, and how many rows truly are it."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int

    def to_dict(self) -> dict:
        return {"label": self.label, "precision": self.precision, "recall": self.recall, "f1": self.f1,
                "support": self.support}

    @classmethod
    def from_dict(cls, data: dict) -> ClassMetrics:
        return cls(str(data["label"]), float(data["precision"]), float(data["recall"]), float(data["f1"]),
                   int(data["support"]))


@dataclass(frozen=True)
class ClassificationMetrics:
    """A model on one labeled set. ``confusion[i][j]``: rows of true class i predicted as class j."""

    accuracy: float
    macro_f1: float
    per_class: tuple[ClassMetrics, ...]
    confusion: tuple[tuple[int, ...], ...]
    label_names: tuple[str, ...]

    @property
    def rows(self) -> int:
        return int(sum(sum(row) for row in self.confusion))

    def to_dict(self) -> dict:
        return {"accuracy": self.accuracy, "macro_f1": self.macro_f1, "rows": self.rows,
                "label_names": list(self.label_names), "per_class": [c.to_dict() for c in self.per_class],
                "confusion": [list(row) for row in self.confusion]}

    @classmethod
    def from_dict(cls, data: dict) -> ClassificationMetrics:
        return cls(accuracy=float(data["accuracy"]), macro_f1=float(data["macro_f1"]),
                   per_class=tuple(ClassMetrics.from_dict(c) for c in data["per_class"]),
                   confusion=tuple(tuple(int(n) for n in row) for row in data["confusion"]),
                   label_names=tuple(str(name) for name in data["label_names"]))


def predicted_classes(probabilities: np.ndarray) -> np.ndarray:
    """The top class of each row of (n, N) probabilities; ties go to the first class, as numpy's argmax.

    Two labels keep the rule of the runtime's ``predict`` and of validation,
    P(labels[1]) >= 0.5, so a row [0.5, 0.5] is class 1 (argmax would say 0).
    """
    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 2 or probabilities.shape[1] < 2:
        raise MetricsError(f"probabilities must be (rows, classes) with 2 or more classes, got shape "
                           f"{probabilities.shape}")
    if probabilities.shape[1] == 2:
        return (probabilities[:, 1] >= 0.5).astype(np.int64)
    return np.argmax(probabilities, axis=1).astype(np.int64)


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray,
                           label_names: Sequence[str]) -> ClassificationMetrics:
    """Score (n, N) probabilities in ``label_names`` order against the true class indices ``labels`` (n,).

    The prediction is each row's top class (two labels: P(label_names[1]) >= 0.5, as the runtime's ``predict``).
    """
    names = tuple(str(name) for name in label_names)
    probabilities = np.asarray(probabilities)
    labels = np.asarray(labels)
    if len(names) < 2 or len(set(names)) != len(names):
        raise MetricsError(f"label_names must be 2 or more distinct names, got {list(names)}")
    if probabilities.ndim != 2 or probabilities.shape[1] != len(names):
        raise MetricsError(f"probabilities of shape {probabilities.shape} do not match {len(names)} labels "
                           f"{list(names)}: expected (rows, {len(names)})")
    if labels.ndim != 1 or labels.shape[0] != probabilities.shape[0]:
        raise MetricsError(f"labels of shape {labels.shape} do not match {probabilities.shape[0]} rows of "
                           f"probabilities")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise MetricsError(f"labels must be class indices (integers), got {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= len(names)):
        bad = labels[(labels < 0) | (labels >= len(names))][0]
        raise MetricsError(f"label index {int(bad)} is outside the {len(names)} labels {list(names)}")
    predicted = predicted_classes(probabilities) if labels.size else np.zeros(0, dtype=np.int64)
    classes = len(names)
    confusion = np.bincount(labels.astype(np.int64) * classes + predicted,
                            minlength=classes * classes).reshape(classes, classes)
    true_positive = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted_count = confusion.sum(axis=0)
    precision = np.divide(true_positive, predicted_count, out=np.zeros(classes), where=predicted_count > 0)
    recall = np.divide(true_positive, support, out=np.zeros(classes), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros(classes), where=both > 0)
    accuracy = float(true_positive.sum() / labels.size) if labels.size else 0.0
    per_class = tuple(ClassMetrics(name, float(p), float(r), float(f), int(s))
                      for name, p, r, f, s in zip(names, precision, recall, f1, support))
    return ClassificationMetrics(accuracy=accuracy, macro_f1=float(f1.mean()), per_class=per_class,
                                 confusion=tuple(tuple(int(n) for n in row) for row in confusion),
                                 label_names=names)


def format_metrics(metrics: ClassificationMetrics, max_confusion_labels: int = 12) -> str:
    """Accuracy and macro-F1, a per-class table and the confusion matrix (rows true, columns predicted)."""
    lines = [f"accuracy {metrics.accuracy:.4f}, macro-F1 {metrics.macro_f1:.4f} on {metrics.rows:,} rows"]
    width = max(8, *(len(name) for name in metrics.label_names))
    lines.append(f"{'label':<{width}}  precision  recall      f1  support")
    for c in metrics.per_class:
        lines.append(f"{c.label:<{width}}  {c.precision:9.4f}  {c.recall:6.4f}  {c.f1:6.4f}  {c.support:7,}")
    classes = len(metrics.label_names)
    if classes <= max_confusion_labels:
        cell = max(6, *(len(name) for name in metrics.label_names),
                   *(len(f"{n:,}") for row in metrics.confusion for n in row))
        lines.append("confusion (rows: true label, columns: predicted)")
        lines.append(" " * width + "".join(f"  {name:>{cell}}" for name in metrics.label_names))
        for name, row in zip(metrics.label_names, metrics.confusion):
            lines.append(f"{name:<{width}}" + "".join(f"  {n:>{cell},}" for n in row))
    else:
        lines.append(f"confusion: {classes} labels, too many to print here (see --json, or the chart)")
    return "\n".join(lines)
