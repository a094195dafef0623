"""The reference every cell is measured against: TF-IDF of word unigrams and bigrams, logistic regression.

A bag-of-n-grams model trained in under a minute; the sentilite models must
beat it on the IMDB test reviews and on their last 10 / 20 / 40 words. It
reads the same words as the one tokenizer, without a vocabulary cap, and is
evaluated by the same protocol (``train.evaluate``). It is a yardstick, not a
product: it is not exported.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from sentilite.runtime.tokenizer import TokenizerConfig, split_words
from sentilite.shared.files import atomic_write_json

from .data import TrainingData
from .evaluate import SHORT_TEXT_WORDS, accuracy, short_texts

METRICS_FILE = "metrics.json"
log = logging.getLogger("sentilite.baseline")
_WORDS = TokenizerConfig()


def unigrams_and_bigrams(text: str) -> list[str]:
    words = split_words(text, _WORDS)
    return words + [f"{a} {b}" for a, b in zip(words, words[1:])]


def train_baseline(data: TrainingData, out_dir: str | os.PathLike, c: float = 10.0, min_df: int = 2) -> dict:
    """Fit on all 25,000 training reviews, evaluate on the test reviews; write and return metrics.json."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    started = time.time()
    vectorizer = TfidfVectorizer(analyzer=unigrams_and_bigrams, min_df=min_df, sublinear_tf=True)
    features = vectorizer.fit_transform(data.train.texts)
    regression = LogisticRegression(C=c, solver="liblinear", max_iter=5000).fit(features, data.train.labels)
    seconds = time.time() - started

    def positive(texts):
        return regression.predict_proba(vectorizer.transform(texts))[:, 1]

    test_accuracy = accuracy(positive(data.test.texts), data.test.labels)
    short = [round(accuracy(positive(short_texts(data.test.texts, k)), data.test.labels), 6) for k in SHORT_TEXT_WORDS]
    metrics = {
        "name": "tfidf-logreg",
        "model": f"TF-IDF (sublinear tf, min_df {min_df}) of word unigrams and bigrams, logistic regression (C={c:g})",
        "features": int(features.shape[1]),
        "test_accuracy": round(test_accuracy, 6),
        "test_reviews": len(data.test),
        "data": data.describe(),
        "short_text": {"words": list(SHORT_TEXT_WORDS), "n": len(data.test), "accuracy": short},
        "train_seconds": round(seconds, 1),
    }
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(out_dir) / METRICS_FILE, metrics)
    log.info("baseline %s: test accuracy %.4f; last %s words %s (%d features, %.0f s)", metrics["name"],
             test_accuracy, "/".join(map(str, SHORT_TEXT_WORDS)), "/".join(f"{a:.4f}" for a in short),
             metrics["features"], seconds)
    return metrics


def read_baseline(folder: str | os.PathLike) -> dict | None:
    """metrics.json of a baseline folder, or None when there is none."""
    import json

    path = Path(folder) / METRICS_FILE
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return data if isinstance(data, dict) and data.get("name") == "tfidf-logreg" else None


