"""The reference every cell is measured against: TF-IDF of word unigrams and bigrams, logistic regression.

A bag-of-n-grams model trained in under a minute; the sentilite models must
beat it on the test texts (and, for IMDB, on their last 10 / 20 / 40 words).
It reads the same words as the one tokenizer (each Han, Hiragana or Katakana
character a word when the model's rule says so), without a vocabulary cap,
on the model's own splits, and is scored by the same metrics
(``runtime.metrics``): with N labels the regression is multinomial. It is a
yardstick, not a product: it is not exported.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sentilite.runtime.metrics import classification_metrics
from sentilite.runtime.tokenizer import TokenizerConfig, split_words
from sentilite.shared.files import atomic_write_json

from .data import Reviews, TrainingData
from .evaluate import SHORT_TEXT_WORDS, accuracy, short_texts

METRICS_FILE = "metrics.json"
log = logging.getLogger("sentilite.baseline")
_WORDS = TokenizerConfig()


def unigrams_and_bigrams(text: str) -> list[str]:
    words = split_words(text, _WORDS)
    return words + [f"{a} {b}" for a, b in zip(words, words[1:])]


@dataclass(frozen=True)
class NgramAnalyzer:
    """unigrams_and_bigrams under another word rule (``TokenizerConfig.character_words``); picklable, for the bench."""

    character_words: str = "none"

    def __call__(self, text: str) -> list[str]:
        words = split_words(text, TokenizerConfig(character_words=self.character_words))
        return words + [f"{a} {b}" for a, b in zip(words, words[1:])]


def analyzer_for(character_words: str = "none"):
    """The vectorizer's analyzer for a tokenizer rule: unigrams_and_bigrams itself for the default rule."""
    return unigrams_and_bigrams if character_words == "none" else NgramAnalyzer(character_words)


def regression_solver(classes: int) -> str:
    """liblinear for two labels (the reference's numbers as ever); lbfgs, a multinomial regression, for N.

    scikit-learn's liblinear fits two classes only.
    """
    return "liblinear" if classes == 2 else "lbfgs"


def fit_reference(texts, labels, c: float, min_df: int, character_words: str = "none", classes: int = 2):
    """(vectorizer, regression) fitted on texts."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(analyzer=analyzer_for(character_words), min_df=min_df, sublinear_tf=True)
    features = vectorizer.fit_transform(texts)
    regression = LogisticRegression(C=c, solver=regression_solver(classes), max_iter=5000).fit(features, labels)
    return vectorizer, regression


def reference_probabilities(vectorizer, regression, texts, classes: int) -> np.ndarray:
    """(n, classes) probabilities in label order; a label the fit never saw gets 0."""
    known = regression.predict_proba(vectorizer.transform(texts))
    out = np.zeros((known.shape[0], classes), dtype=np.float64)
    out[:, regression.classes_.astype(np.int64)] = known
    return out


def fit_and_validation(data: TrainingData, config=None) -> tuple[Reviews, Reviews]:
    """The model's (fit, validation) texts: the given validation split, else split as training splits IMDB."""
    if data.validation is not None:
        return data.train, data.validation
    from .config import preset_config
    from .fit import split_training_reviews

    return split_training_reviews(config or preset_config("default", "gru"), data)


def train_baseline(data: TrainingData, out_dir: str | os.PathLike, c: float = 10.0, min_df: int = 2,
                   config=None) -> dict:
    """Fit, score and write metrics.json on the model's splits; return what it wrote.

    ``validation``: fitted on the fitting texts only, scored on validation.
    ``test``: fitted on every training text (fitting and validation; for IMDB
    all 25,000 training reviews, as ever), scored on the test texts.
    ``config`` (a RunConfig): the model's, for its validation split and its
    word rule; the default preset's when None.
    """
    names = tuple(data.label_names)
    classes = len(names)
    character_words = config.tokenizer.character_words if config is not None else "none"
    fit, validation = fit_and_validation(data, config)
    vectorizer, regression = fit_reference(fit.texts, fit.labels, c, min_df, character_words, classes)
    validation_metrics = classification_metrics(
        validation.labels, reference_probabilities(vectorizer, regression, validation.texts, classes), names)
    everything = data.train if data.validation is None else Reviews(
        list(data.train.texts) + list(data.validation.texts),
        np.concatenate([data.train.labels, data.validation.labels]).astype(np.int32))
    started = time.time()  # the time of the fit whose test numbers are reported
    vectorizer, regression = fit_reference(everything.texts, everything.labels, c, min_df, character_words, classes)
    seconds = time.time() - started

    def probabilities(texts):
        return reference_probabilities(vectorizer, regression, texts, classes)

    # two labels: P(labels[1]) >= 0.5, as every two-label number here (runtime.metrics.predicted_classes)
    test_metrics = classification_metrics(data.test.labels, probabilities(data.test.texts), names)
    test_accuracy = test_metrics.accuracy
    metrics = {
        "name": "tfidf-logreg",
        "model": f"TF-IDF (sublinear tf, min_df {min_df}) of word unigrams and bigrams, logistic regression (C={c:g})"
                 + ("" if classes == 2 else f", multinomial ({regression_solver(classes)})")
                 + (f"; words: tokenizer rule character_words={character_words}" if character_words != "none" else ""),
        "features": int(len(vectorizer.vocabulary_)),
        "test_accuracy": round(test_accuracy, 6),
        "test_reviews": len(data.test),
        "data": data.describe(),
    }
    if data.imdb:
        short = [round(accuracy(probabilities(short_texts(data.test.texts, k))[:, 1], data.test.labels), 6)
                 for k in SHORT_TEXT_WORDS]
        metrics["short_text"] = {"words": list(SHORT_TEXT_WORDS), "n": len(data.test), "accuracy": short}
    metrics["train_seconds"] = round(seconds, 1)
    metrics["label_names"] = list(names)
    metrics["split_note"] = data.split_note or None
    metrics["validation"] = {"fitted_on": len(fit), **validation_metrics.to_dict()}
    metrics["test"] = {"fitted_on": len(everything), **test_metrics.to_dict()}
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(out_dir) / METRICS_FILE, metrics)
    if data.imdb:
        log.info("baseline %s: test accuracy %.4f; last %s words %s (%d features, %.0f s)", metrics["name"],
                 test_accuracy, "/".join(map(str, SHORT_TEXT_WORDS)),
                 "/".join(f"{a:.4f}" for a in metrics["short_text"]["accuracy"]), metrics["features"], seconds)
    else:
        log.info("baseline %s: test accuracy %.4f, macro-F1 %.4f (%d features, %.0f s)", metrics["name"],
                 test_metrics.accuracy, test_metrics.macro_f1, metrics["features"], seconds)
    log.info("baseline %s: validation accuracy %.4f, macro-F1 %.4f (fitted on %d texts)", metrics["name"],
             validation_metrics.accuracy, validation_metrics.macro_f1, len(fit))
    return metrics


def read_baseline(folder: str | os.PathLike) -> dict | None:
    """metrics.json of a baseline folder, or None when there is none."""
    import json

    path = Path(folder) / METRICS_FILE
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return data if isinstance(data, dict) and data.get("name") == "tfidf-logreg" else None


