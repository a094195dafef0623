"""The evaluation protocol every number in the README comes from: IMDB test reviews, whole and short; any labeled file.

Short texts are what edge apps mostly see. The short-text check keeps the
last K words of every test review (K = 10, 20, 40 by default): the end of a
review usually holds its verdict, and the words are those the tokenizer
finds, so every model and every format is judged on the same texts.

On a user's labeled file (``evaluate_labeled_file``) a model is scored by
``runtime.metrics``: accuracy, macro-F1, per class, the confusion matrix.
Nothing here imports TensorFlow: `sentilite evaluate` runs on a runtime-only
install.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from sentilite.runtime.metrics import ClassificationMetrics, MetricsError, classification_metrics, format_metrics
from sentilite.runtime.tokenizer import TokenizerConfig, split_words

SHORT_TEXT_WORDS = (10, 20, 40)
_WORDS = TokenizerConfig()


def last_words(text: str, k: int) -> str:
    """The last k words of a text, as the tokenizer's default rules find them, joined by spaces."""
    return " ".join(split_words(text, _WORDS)[-k:])


def short_texts(texts: Sequence[str], k: int) -> list[str]:
    return [last_words(t, k) for t in texts]


def accuracy(positive: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean((np.asarray(positive).reshape(-1) >= 0.5) == (np.asarray(labels).reshape(-1) >= 0.5)))


def evaluate_predictions(predict_positive: Callable[[list[str]], np.ndarray], texts: Sequence[str],
                         labels: np.ndarray, words: Sequence[int] = SHORT_TEXT_WORDS) -> dict:
    """{"n", "accuracy", "short_text": {"words", "n", "accuracy"}} for P(positive) of a list of texts."""
    full = accuracy(predict_positive(list(texts)), labels)
    short = [accuracy(predict_positive(short_texts(texts, k)), labels) for k in words]
    return {"n": len(texts), "accuracy": round(full, 6),
            "short_text": {"words": list(words), "n": len(texts), "accuracy": [round(a, 6) for a in short]}}


def evaluate_model(model, reviews, words: Sequence[int] = SHORT_TEXT_WORDS) -> dict:
    """A loaded runtime model (sentilite.runtime.load) on reviews (train.data.Reviews)."""
    return evaluate_predictions(lambda texts: model.predict_proba(texts)[:, 1], reviews.texts, reviews.labels, words)


def format_evaluation(name: str, result: dict) -> str:
    short = result["short_text"]
    parts = ", ".join(f"last {k} words {a:.4f}" for k, a in zip(short["words"], short["accuracy"]))
    return f"{name}: test accuracy {result['accuracy']:.4f} on {result['n']:,} reviews; {parts}"


@dataclass(frozen=True)
class LabeledEvaluation:
    """A model scored on one labeled file: what was read (``LabeledTexts.summary()``) and the metrics."""

    model: str
    data: dict
    metrics: ClassificationMetrics

    def to_dict(self) -> dict:
        return {"model": self.model, "data": self.data, "metrics": self.metrics.to_dict()}


def evaluate_labeled(model, texts) -> ClassificationMetrics:
    """A loaded runtime model on labeled texts (train.readers.LabeledTexts) whose labels index ``model.labels``."""
    if tuple(texts.label_names) != tuple(model.labels):
        raise MetricsError(f"the texts' labels {list(texts.label_names)} are not the model's {list(model.labels)}; "
                         "read them with labels=model.labels")
    return classification_metrics(texts.labels, model.predict_proba(list(texts.texts)), model.labels)


def read_for_model(path: str | os.PathLike, model_labels: Sequence[str], model_name: str, **read_options):
    """A labeled file read with the model's labels as its classes, in the model's order.

    The file may lack some of the model's labels (a test file without a rare
    class); a label the model does not know stops it, with that label's rows
    and first line (``readers.LabelSetError``).
    """
    from .readers import read_labeled

    return read_labeled(path, labels=tuple(model_labels), require_all_labels=False,
                        labels_source=f"the labels of the model {model_name}", **read_options)


def evaluate_labeled_file(model, model_name: str, path: str | os.PathLike, **read_options) -> LabeledEvaluation:
    """Read ``path`` (train.readers.read_labeled's options) and score ``model`` on every row of it."""
    texts = read_for_model(path, model.labels, model_name, **read_options)
    return LabeledEvaluation(model=model_name, data=texts.summary(), metrics=evaluate_labeled(model, texts))


def format_labeled_evaluation(result: LabeledEvaluation) -> str:
    data = result.data
    skipped = f", {data['skipped_rows']:,} bad rows skipped" if data.get("skipped_rows") else ""
    return (f"{result.model} on {data['source']} ({data['rows']:,} rows{skipped}):\n"
            + format_metrics(result.metrics))


# Hand-written negations: where word order matters most and a bag of n-grams is weakest.
# (text, label: 1 = positive). Small and written by us, so it shows a direction, not a rate.
NEGATION_PROBES = (
    ("not bad at all", 1), ("not bad", 1), ("I was not disappointed.", 1), ("It is not a bad movie.", 1),
    ("Never boring, not for a second.", 1), ("I didn't expect to like it, but I loved it.", 1),
    ("Nothing bad to say about it.", 1), ("It wasn't terrible; it was great.", 1), ("I have no complaints.", 1),
    ("Not a single dull moment.", 1), ("I wouldn't change a thing.", 1), ("Far from boring.", 1),
    ("You won't regret watching it.", 1), ("Not as bad as the critics said; I liked it.", 1),
    ("I can't think of a better film this year.", 1),
    ("not good", 0), ("not good at all", 0), ("I did not like this movie.", 0), ("It wasn't funny.", 0),
    ("Not worth watching.", 0), ("I would not recommend it.", 0), ("Not my cup of tea.", 0),
    ("The acting was not convincing.", 0), ("It never gets interesting.", 0),
    ("Not even the actors could save it.", 0), ("I can't recommend it.", 0), ("No redeeming qualities.", 0),
    ("It is not a good film.", 0), ("Don't waste your time.", 0), ("I didn't enjoy a minute of it.", 0),
)


def negation_accuracy(predict_positive: Callable[[list[str]], np.ndarray]) -> float:
    texts = [t for t, _ in NEGATION_PROBES]
    labels = np.array([y for _, y in NEGATION_PROBES])
    return accuracy(predict_positive(texts), labels)
