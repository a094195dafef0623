"""Fit one model and save everything a later export needs into one folder.

With an n-gram branch, fitting has three short stages:
1. the branch is fitted as a logistic regression (``train.ngrams``) on the
   fitting reviews and their short crops, and again on all training reviews
   for the final model;
2. the cell is trained on its own (reviews and crops, early stopping on the
   validation reviews);
3. the two logits are blended with weights fitted on the validation reviews,
   using the branch fitted without them, and the weights are folded into the
   model so the exported graph is a plain sum (``train.blend``).

Two labels keep one logit and a sigmoid (labels 0/1, binary cross-entropy);
three or more have one logit per label and a softmax (labels are class
indexes, sparse categorical cross-entropy), in every stage. The labels are
the data's (``TrainingData.label_names``).

``set_up_training`` makes what stage 2 starts from (the splits, the
tokenizer, the cropped rows and the fitted branch); ``train.levers`` starts
from the same.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sentilite.runtime.metrics import ClassificationMetrics, classification_metrics, predicted_classes
from sentilite.runtime.recurrence import softmax
from sentilite.runtime.tokenizer import PAD_ID, Tokenizer
from sentilite.shared.files import atomic_write_json, make_staging_dir

from .blend import Blend, fit_blend, logits_of
from .config import RunConfig
from .data import TrainingData, Reviews, load_imdb, movie_disjoint_split, subset, train_validation_split
from .evaluate import SHORT_TEXT_WORDS, accuracy, negation_accuracy, short_texts
from .ngrams import NgramBranch, NgramBranches
from .readers import stratified_split
from .vocab import build_tokenizer

MODEL_FILE = "model.keras"
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"
CURVES_FILE = "training_curves.png"
CONFUSION_FILE = "confusion_matrix.png"  # of the test texts
log = logging.getLogger("sentilite.train")


@dataclass(frozen=True)
class EncodedSplits:
    """Ids and labels for fitting / validation / test, all made by the one tokenizer."""

    tokenizer: Tokenizer
    test: Reviews  # all 25,000 test reviews, or the subset a quick run evaluates on
    x_fit: np.ndarray
    y_fit: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def split_training_reviews(config: RunConfig, data: TrainingData) -> tuple[Reviews, Reviews]:
    """(fit, validation) reviews for a config: the same ones every time, never a test review.

    The data's validation split when it has one; else IMDB's movie-disjoint
    (or random) split off the training reviews, and for other data a seeded
    stratified split (``validation_split_kind`` names which).
    """
    train = data.train
    t = config.training
    if t.train_subset:
        train = subset(train, t.train_subset, t.seed)
    if data.validation is not None:
        return train, data.validation
    if not data.imdb:
        fit_idx, val_idx = stratified_split(train.labels, t.validation_fraction, t.seed,
                                            label_names=data.label_names, source=data.source,
                                            holdout="validation")
    elif t.validation_split == "movies" and train.ids is not None:
        fit_idx, val_idx = movie_disjoint_split(train.labels, train.ids, t.validation_fraction, t.seed)
    else:
        fit_idx, val_idx = train_validation_split(train.labels, t.validation_fraction, t.seed)
    return train.take(fit_idx), train.take(val_idx)


def validation_split_kind(config: RunConfig, data: TrainingData) -> str:
    """How ``split_training_reviews`` finds validation: "given", "stratified", or IMDB's "movies" / "random"."""
    if data.validation is not None:
        return "given"
    return config.training.validation_split if data.imdb else "stratified"


def label_array(labels: np.ndarray, outputs: int) -> np.ndarray:
    """Labels as the cell's loss takes them: float32 0/1 for one output, int32 class indexes for N."""
    return labels.astype("float32") if outputs == 1 else labels.astype("int32")


def prepare_splits(config: RunConfig, data: TrainingData, test_reviews: int | None = None) -> EncodedSplits:
    fit_part, val_part = split_training_reviews(config, data)
    test = data.test if test_reviews is None else subset(data.test, test_reviews, seed=0)
    # The vocabulary sees the fitting reviews only: not validation, never test.
    tokenizer = build_tokenizer(fit_part.texts, config.tokenizer)
    outputs = config.model.outputs
    return EncodedSplits(
        tokenizer=tokenizer, test=test,
        x_fit=tokenizer.encode_batch(fit_part.texts), y_fit=label_array(fit_part.labels, outputs),
        x_val=tokenizer.encode_batch(val_part.texts), y_val=label_array(val_part.labels, outputs),
        x_test=tokenizer.encode_batch(test.texts), y_test=label_array(test.labels, outputs),
    )


def crop_rows(ids: np.ndarray, low: int, high: int, rng: np.random.Generator) -> np.ndarray:
    """Each left-padded row cut to its last k ids, k drawn log-uniformly from [low, high]: a short text."""
    keep = np.exp(rng.uniform(np.log(low), np.log(high + 1), len(ids))).astype(np.int64)
    cut = ids.copy()
    columns = np.arange(ids.shape[1])
    cut[columns[None, :] < (ids.shape[1] - keep)[:, None]] = PAD_ID
    return cut


def with_crops(ids: np.ndarray, labels: np.ndarray, config: RunConfig, rng) -> tuple[np.ndarray, np.ndarray]:
    t = config.training
    parts = [ids] + [crop_rows(ids, t.crop_min_words, t.crop_max_words, rng) for _ in range(t.crops_per_review)]
    return np.concatenate(parts), np.concatenate([labels] * len(parts))


@dataclass(frozen=True)
class TrainingSetup:
    """What the cell is trained from, made the same way for a model (``train_model``) and for the levers.

    ``x_fit`` and ``x_val`` hold each split's reviews followed by their crops;
    ``config`` has the tokenizer section as built (its vocabulary may be
    smaller than asked on tiny data); ``ngrams`` is None without a branch.
    """

    config: RunConfig
    splits: EncodedSplits
    x_fit: np.ndarray
    y_fit: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    ngrams: NgramBranches | None = None

    @property
    def steps(self) -> int:
        """How many of a row's last ids the cell reads."""
        return self.config.model.steps(self.config.tokenizer.maxlen)

    def window(self, ids: np.ndarray) -> np.ndarray:
        return ids[:, -self.steps:]


def set_up_training(config: RunConfig, data: TrainingData, test_reviews: int | None = None) -> TrainingSetup:
    """Seed everything, split and tokenize the reviews, crop them, and fit the n-gram branch (stage 1).

    The model's labels become the data's (IMDB: negative, positive, as ever).
    """
    import keras
    import tensorflow as tf

    config = config.replace(model={"labels": tuple(data.label_names)})
    keras.utils.set_random_seed(config.training.seed)
    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(config.training.seed)
    splits = prepare_splits(config, data, test_reviews)
    config = config.replace(tokenizer=splits.tokenizer.config)  # vocab may be smaller on tiny data
    log.info("tokenized: %d fit / %d validation / %d test reviews, vocabulary %d, length %d",
             len(splits.x_fit), len(splits.x_val), len(splits.x_test), len(splits.tokenizer), config.tokenizer.maxlen)
    x_fit, y_fit = with_crops(splits.x_fit, splits.y_fit, config, rng)
    x_val, y_val = with_crops(splits.x_val, splits.y_val, config, rng)
    setup = TrainingSetup(config, splits, x_fit, y_fit, x_val, y_val)
    if config.model.ngram_buckets:
        setup = dataclasses.replace(setup, ngrams=fit_ngram_branch(config, setup))
    return setup


def fit_ngram_branch(config: RunConfig, rows: TrainingSetup) -> NgramBranches:
    """Stage 1: the branch ``config`` describes, fitted without the validation reviews and with them (kept).

    Only the rows of ``rows`` are read, so the levers fit other branches on
    the same rows. With a learned dictionary, each of the two fits chooses its
    own dictionary from the rows it sees, so the blend is fitted on a branch
    that never saw a validation review. With ``training.subword_ngrams``
    "if-better" the first fit is made with and without characters inside
    words, and the kept branch follows the one more accurate on validation.
    """
    from .ngrams import (SubwordChoice, fit_ngram_weights, fold_subwords, learn_dictionary, ngram_logits,
                         ngram_matrix, refit_ngram_weights, subword_matrix, with_subwords)

    x_fit, y_fit, x_val, y_val = rows.x_fit, rows.y_fit, rows.x_val, rows.y_val
    vocab, buckets, c = config.tokenizer.vocab_size, config.model.ngram_buckets, config.training.ngram_c
    classes = config.model.classes
    class_weight = None if config.training.class_weight == "none" else config.training.class_weight
    started = time.time()
    reviews_fit = np.zeros(len(y_fit), bool)
    reviews_fit[: len(rows.splits.y_fit)] = True
    reviews_val = np.zeros(len(y_val), bool)
    reviews_val[: len(rows.splits.y_val)] = True
    n_val = len(rows.splits.y_val)
    subwords = (None if config.training.subword_ngrams == "none"
                else subword_matrix(rows.splits.tokenizer.vocabulary, vocab))

    def dictionary_of(ids, labels, reviews):
        if not config.model.ngram_dictionary:
            return None
        return learn_dictionary(ids, labels, reviews, vocab, buckets, c, classes, class_weight)

    def fitted_weights(matrix, use_subwords: bool):
        wide = with_subwords(matrix, subwords, vocab) if use_subwords else matrix
        weights, bias = fit_ngram_weights(wide, y_fit, c, ratio_rows=reviews_fit, classes=classes,
                                          class_weight=class_weight)
        return (fold_subwords(weights, subwords, vocab) if use_subwords else weights), bias

    dictionary = dictionary_of(x_fit, y_fit, reviews_fit)
    m_fit, m_val = (ngram_matrix(x, vocab, buckets, dictionary) for x in (x_fit, x_val))
    choice = None
    use_subwords = config.training.subword_ngrams == "always"
    weights, bias = fitted_weights(m_fit, use_subwords)
    val_logits = ngram_logits(m_val, weights, bias)
    if config.training.subword_ngrams == "if-better":
        with_weights, with_bias = fitted_weights(m_fit, True)
        with_logits = ngram_logits(m_val, with_weights, with_bias)
        without, with_ = (logit_accuracy(v[:n_val], y_val[:n_val]) for v in (val_logits, with_logits))
        choice = SubwordChoice(kept=with_ > without, accuracy_without=without, accuracy_with=with_)
        log.info("n-gram branch: characters inside words %s (validation accuracy %.4f with, %.4f without)",
                 "kept" if choice.kept else "left out", with_, without)
        use_subwords = choice.kept
        if use_subwords:
            weights, bias, val_logits = with_weights, with_bias, with_logits
    fitted = NgramBranch(weights, bias, dictionary, vocab, buckets)
    crops = (f", {logit_accuracy(val_logits[n_val:], y_val[n_val:]):.4f} on their crops"
             if len(y_val) > n_val else "")
    log.info("n-gram branch: fitted on %d rows (%.0f s); validation accuracy %.4f on reviews%s",
             len(y_fit), time.time() - started, logit_accuracy(val_logits[:n_val], y_val[:n_val]), crops)
    if config.model.ngram_dictionary:
        dictionary = dictionary_of(np.concatenate([x_fit, x_val]), np.concatenate([y_fit, y_val]),
                                   np.concatenate([reviews_fit, reviews_val]))
        m_fit, m_val = (ngram_matrix(x, vocab, buckets, dictionary) for x in (x_fit, x_val))
    if use_subwords:
        m_fit, m_val = (with_subwords(m, subwords, vocab) for m in (m_fit, m_val))
    all_weights, all_bias = refit_ngram_weights((m_fit, m_val), (y_fit, y_val), (reviews_fit, reviews_val), c,
                                                classes, class_weight)
    if use_subwords:
        all_weights = fold_subwords(all_weights, subwords, vocab)
    log.info("n-gram branch: refitted on every training review and crop (%d rows, %.0f s in all)",
             len(y_fit) + len(y_val), time.time() - started)
    return NgramBranches(fitted=fitted, kept=NgramBranch(all_weights, all_bias, dictionary, vocab, buckets),
                         val_logits=val_logits, subwords=choice)


def train_cell(setup: TrainingSetup, cell_model, verbose: int):
    """Stage 2: the cell alone on the last ids of the fitting rows, early stopping on the validation rows."""
    import keras

    t = setup.config.training
    log.info("training the %s cell on the last %d ids of %d rows (%d reviews + crops)",
             setup.config.model.cell, setup.steps, len(setup.x_fit), len(setup.splits.x_fit))
    loss = "binary_crossentropy" if setup.config.model.outputs == 1 else "sparse_categorical_crossentropy"
    cell_model.compile(optimizer=keras.optimizers.Adam(learning_rate=t.learning_rate), loss=loss,
                       metrics=["accuracy"])
    callbacks = [keras.callbacks.EarlyStopping(monitor="val_loss", patience=t.patience, restore_best_weights=True)]
    if t.reduce_lr_factor:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=t.reduce_lr_factor, patience=0, min_lr=1e-5))
    weighting = {}
    if t.class_weight == "balanced":
        weighting["sample_weight"] = balanced_weights(setup.y_fit, setup.config.model.classes)
    return cell_model.fit(
        setup.window(setup.x_fit), setup.y_fit, validation_data=(setup.window(setup.x_val), setup.y_val),
        batch_size=t.batch_size, epochs=t.max_epochs, callbacks=callbacks, shuffle=True, verbose=verbose,
        **weighting,
    )


def balanced_weights(labels: np.ndarray, classes: int) -> np.ndarray:
    """One weight per row, rows / (classes x rows of its label): scikit-learn's class_weight="balanced"."""
    labels = np.asarray(labels).astype(np.int64)
    counts = np.bincount(labels, minlength=classes)
    return (len(labels) / (classes * np.maximum(counts, 1)))[labels].astype(np.float32)


def train_model(
    config: RunConfig,
    out_dir: str | os.PathLike,
    data: TrainingData | str | os.PathLike | None = None,
    *,
    verbose: int | None = None,
    test_reviews: int | None = None,
) -> dict:
    """Train per ``config`` and write the model folder; returns the metrics.

    Every number is measured on all the test texts (IMDB: 25,000 reviews),
    or on a seeded, class-balanced subset of ``test_reviews`` (quick runs and
    tests). The model's labels are the data's.

    The folder is built under a temporary name and swapped in at the end, so
    an interrupted run leaves the previous model folder as it was.
    """
    from .keras_model import build_model

    out_dir = Path(out_dir)
    if verbose is None:
        verbose = 1 if sys.stderr.isatty() else 2
    started = time.time()
    if not isinstance(data, TrainingData):
        data = load_imdb(data)
    log.info("data: %s (%s)", data.source, data.describe())
    if data.split_note:
        log.info("splits: %s", data.split_note)
    setup = set_up_training(config, data, test_reviews)
    # Built after stage 1, it draws the initial weights it would draw before: Keras seeds its
    # initializers from Python's random, stage 1's liblinear draws from numpy's global generator.
    model, cell_model = build_model(setup.config.model, setup.config.tokenizer)
    history = train_cell(setup, cell_model, verbose).history
    cell_val = logits_of(cell_model.predict(setup.window(setup.x_val), batch_size=1024, verbose=0))
    blend = None
    # The saved model and the cell share the cell's Dense, which the fold rescales and shifts by the
    # branch's biases: "cell alone" is a copy of the cell as trained. Two labels keep measuring the
    # shared cell after the fold, the figure the README's ablation tables were made with.
    cell_alone = cell_model if setup.config.model.outputs == 1 else unfolded_copy(cell_model)
    if setup.ngrams is not None:
        blend = fit_blend(setup.ngrams.val_logits, cell_val, setup.y_val)
        if isinstance(blend.bias, float):
            log.info("blend on %d validation rows: n-gram x %.3f + cell x %.3f + %.3f", len(setup.y_val),
                     blend.ngram_scale, blend.cell_scale, blend.bias)
        else:
            log.info("blend on %d validation rows: n-gram x %.3f + cell x %.3f + a bias per label (%s)",
                     len(setup.y_val), blend.ngram_scale, blend.cell_scale, ", ".join(f"{b:.3f}" for b in blend.bias))
        blend.fold_into(model, setup.ngrams.kept)
    fit_seconds = time.time() - started

    predict = _keras_predictor(model, setup.splits.tokenizer)
    test_texts, test_labels = setup.splits.test.texts, setup.splits.y_test
    test_outputs = predict(test_texts)
    test_acc = top_label_accuracy(test_outputs, test_labels)
    short = negation = None
    if data.imdb:  # the end of a review holds its verdict; a tweet or a sentence is short already
        short = {k: accuracy(predict(short_texts(test_texts, k)), test_labels) for k in SHORT_TEXT_WORDS}
        negation = negation_accuracy(predict)
    names = setup.config.model.labels
    validation_logits = blended_validation_logits(setup, cell_val, blend)
    validation_metrics = classification_metrics(setup.splits.y_val.astype(np.int64),
                                                label_probabilities(validation_logits, logits=True), names)
    test_metrics = classification_metrics(test_labels.astype(np.int64), label_probabilities(test_outputs), names)
    metrics = _metrics(setup, data, model, history, test_acc, short, negation,
                       top_label_accuracy(validation_logits, setup.splits.y_val, logits=True), fit_seconds)
    if setup.ngrams is not None:
        metrics["blend"] = blend.to_dict()
        if setup.ngrams.subwords is not None:
            metrics["subword_ngrams"] = setup.ngrams.subwords.to_dict()
        metrics["ablation"] = ablation(setup.splits, setup.ngrams.kept, cell_alone, setup.steps, names, data.imdb)
    metrics.update(classification_sections(data, validation_metrics, test_metrics))
    history_dict = {k: [float(v) for v in vals] for k, vals in history.items()}
    _write_model_folder(out_dir, setup, model, history_dict, metrics,
                        title=f"{setup.config.name}: cell training; test accuracy of the model {test_acc:.4f}",
                        test_metrics=test_metrics)
    if data.imdb:
        log.info("%s: test accuracy %.4f on %d reviews; last %s words %s; %.0f s -> %s", setup.config.name, test_acc,
                 len(test_labels), "/".join(map(str, SHORT_TEXT_WORDS)),
                 "/".join(f"{short[k]:.4f}" for k in SHORT_TEXT_WORDS), fit_seconds, out_dir)
    else:
        log.info("%s: test accuracy %.4f, macro-F1 %.4f on %d texts (validation %.4f, macro-F1 %.4f); %.0f s -> %s",
                 setup.config.name, test_acc, test_metrics.macro_f1, len(test_labels), validation_metrics.accuracy,
                 validation_metrics.macro_f1, fit_seconds, out_dir)
    return metrics


def unfolded_copy(cell_model):
    """A copy of the cell with its weights as they are now, which the blend's fold leaves as they are."""
    import keras

    copy = keras.models.clone_model(cell_model)
    copy.set_weights(cell_model.get_weights())
    return copy


def blended_validation_logits(setup: TrainingSetup, cell_val: np.ndarray, blend: Blend | None) -> np.ndarray:
    """The model's logits of the validation reviews (not their crops), held out from everything fitted on them.

    That is the cell, or its blend with the n-gram branch fitted without the
    validation reviews (the kept branch has seen them). (n,) for two labels,
    (n, N) for N.
    """
    n_val = len(setup.splits.y_val)
    return cell_val[:n_val] if blend is None else blend.logit(setup.ngrams.val_logits[:n_val], cell_val[:n_val])


def validation_accuracy(setup: TrainingSetup, cell_val: np.ndarray, blend: Blend | None) -> float:
    """Top-label accuracy of ``blended_validation_logits``."""
    return top_label_accuracy(blended_validation_logits(setup, cell_val, blend), setup.splits.y_val, logits=True)


def label_probabilities(outputs: np.ndarray, logits: bool = False) -> np.ndarray:
    """(n, N) probabilities in label order of the model's outputs: P(labels[1]) (n,) or (n, 1), or (n, N).

    ``logits``: the outputs are logits (the blend's), turned into
    probabilities by the sigmoid or the softmax the model applies.
    """
    outputs = np.asarray(outputs, np.float64)
    if outputs.ndim == 2 and outputs.shape[1] > 1:
        return softmax(outputs) if logits else outputs
    positive = outputs.reshape(-1)
    if logits:
        positive = 1 / (1 + np.exp(-positive))
    return np.stack([1 - positive, positive], axis=1)


def top_label_accuracy(outputs: np.ndarray, labels: np.ndarray, logits: bool = False) -> float:
    """The share of rows whose top label is the true one, by the runtime's rule (runtime.metrics)."""
    predicted = predicted_classes(label_probabilities(outputs, logits))
    return float(np.mean(predicted == np.asarray(labels).reshape(-1).astype(np.int64)))


def logit_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return top_label_accuracy(logits, labels, logits=True)


def classification_sections(data: TrainingData, validation: ClassificationMetrics,
                            test: ClassificationMetrics) -> dict:
    """metrics.json's keys for any labels: the labels, how the splits were made, each split's figures.

    ``validation`` and ``test``: accuracy, macro-F1, per-label precision,
    recall and F1, and the confusion matrix (rows: true label); the same keys
    as the reference's metrics.json (``train.baseline``).
    """
    sections = {"label_names": list(validation.label_names), "split_note": data.split_note or None,
                "validation": validation.to_dict(), "test": test.to_dict(),
                "validation_macro_f1": round(validation.macro_f1, 6), "test_macro_f1": round(test.macro_f1, 6),
                "confusion_chart": CONFUSION_FILE}
    if data.summary is not None:
        sections["data_summary"] = data.summary.to_dict()
    return sections


def _metrics(setup: TrainingSetup, data: TrainingData, model, history: dict, test_acc: float, short: dict | None,
             negation: float | None, val_acc: float, fit_seconds: float) -> dict:
    """metrics.json without the n-gram branch's parts. ``short`` and ``negation``: IMDB only (else None, left out)."""
    import keras
    import tensorflow as tf

    from .keras_model import count_weights

    config, test_labels = setup.config, setup.splits.y_test
    metrics = {
        "name": config.name,
        "cell": config.model.cell,
        "input": config.model.input,
        "preset": config.preset,
        "test_accuracy": round(test_acc, 6),
        "test_reviews": int(len(test_labels)),
        "data": data.describe(),
    }
    if short is not None:
        metrics["short_text"] = {"words": list(SHORT_TEXT_WORDS), "n": int(len(test_labels)),
                                 "accuracy": [round(short[k], 6) for k in SHORT_TEXT_WORDS]}
    if negation is not None:
        metrics["negation_probes"] = round(negation, 6)
    metrics.update({
        "validation_accuracy": round(val_acc, 6),
        "validation_reviews": int(len(setup.splits.y_val)),
        "validation_split": validation_split_kind(config, data),
        "epochs_run": len(history["loss"]),
        "best_epoch": int(np.argmin(history["val_loss"])) + 1,
        "weights": count_weights(model),
        "train_seconds": round(fit_seconds, 1),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    })
    return metrics


def _write_model_folder(out_dir: Path, setup: TrainingSetup, model, history: dict, metrics: dict, title: str,
                        test_metrics: ClassificationMetrics) -> None:
    """Every file of the folder, written to a staging folder that then replaces out_dir."""
    from sentilite.shared.charts import plot_confusion

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = make_staging_dir(out_dir)
    try:
        model.save(staging / MODEL_FILE)
        setup.splits.tokenizer.save(staging / TOKENIZER_FILE)
        atomic_write_json(staging / CONFIG_FILE, setup.config.to_dict())
        atomic_write_json(staging / HISTORY_FILE, history)
        atomic_write_json(staging / METRICS_FILE, metrics)
        plot_history(history, staging / CURVES_FILE, title=title, classes=setup.config.model.classes)
        plot_confusion(test_metrics, staging / CONFUSION_FILE,
                       title=f"{setup.config.name}: {len(setup.splits.y_test):,} test texts")
        _swap_in(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def ablation(splits: EncodedSplits, branch: NgramBranch, cell_model, steps: int,
             label_names: tuple[str, ...] | None = None, imdb: bool = True) -> dict:
    """Each branch alone on the test reviews (metrics.json's "ablation"): what the cell adds, and the n-grams.

    Short texts and negation probes for IMDB only; macro-F1 for any data.
    """
    def ngram_outputs(texts):
        logit = branch.logit(splits.tokenizer.encode_batch(texts))
        return 1 / (1 + np.exp(-logit)) if logit.ndim == 1 else softmax(logit)

    def cell_outputs(texts):
        return cell_model.predict(splits.tokenizer.encode_batch(texts)[:, -steps:], batch_size=1024, verbose=0)

    out = {}
    for name, predict in (("ngrams_only", ngram_outputs), ("cell_only", cell_outputs)):
        test_outputs = predict(splits.test.texts)
        out[name] = {"test_accuracy": round(top_label_accuracy(test_outputs, splits.y_test), 6)}
        if imdb:
            out[name]["short_text"] = [round(accuracy(predict(short_texts(splits.test.texts, k)), splits.y_test), 6)
                                       for k in SHORT_TEXT_WORDS]
            out[name]["negation_probes"] = round(negation_accuracy(predict), 6)
        if label_names is not None:
            out[name]["test_macro_f1"] = round(classification_metrics(
                splits.y_test.astype(np.int64), label_probabilities(test_outputs), label_names).macro_f1, 6)
    return out


def _keras_predictor(model, tokenizer: Tokenizer):
    """texts -> the model's outputs: P(labels[1]) (n,) for two labels, (n, N) probabilities for N."""
    def predict(texts):
        outputs = model.predict(tokenizer.encode_batch(texts), batch_size=1024, verbose=0)
        return outputs.reshape(-1) if outputs.shape[1] == 1 else outputs

    return predict


def _swap_in(staging: Path, out_dir: Path) -> None:
    """Replace out_dir by staging with no moment where neither exists half-written."""
    backup = None
    if out_dir.exists():
        backup = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        os.replace(out_dir, backup)
    try:
        os.replace(staging, out_dir)
    except BaseException:
        if backup is not None:
            os.replace(backup, out_dir)
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


def plot_history(history: dict, path: Path, title: str, classes: int = 2) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, history["loss"], "o-", label="train")
    ax_loss.plot(epochs, history["val_loss"], "o-", label="validation")
    ax_loss.set(xlabel="epoch", ylabel="binary cross-entropy" if classes == 2 else "cross-entropy", title="loss")
    ax_acc.plot(epochs, history["accuracy"], "o-", label="train")
    ax_acc.plot(epochs, history["val_accuracy"], "o-", label="validation")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
