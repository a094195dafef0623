"""The evaluation protocol every number in the README comes from: IMDB test reviews, whole and short.

Short texts are what edge apps mostly see. The short-text check keeps the
last K words of every test review (K = 10, 20, 40 by default): the end of a
review usually holds its verdict, and the words are those the tokenizer
finds, so every model and every format is judged on the same texts.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

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
