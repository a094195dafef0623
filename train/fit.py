"""Fit one model and save everything a later export needs into one folder."""
from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sentilite.runtime._io import atomic_write_json, make_staging_dir
from sentilite.runtime.tokenizer import Tokenizer

from .config import RunConfig
from .data import ImdbData, load_imdb, subset, train_validation_split
from .vocab import build_tokenizer

MODEL_FILE = "model.keras"
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"
CURVES_FILE = "training_curves.png"


@dataclass(frozen=True)
class EncodedSplits:
    """Ids and labels for train / validation / test, all made by the one tokenizer."""

    tokenizer: Tokenizer
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    val_texts: list[str]


def split_training_reviews(config: RunConfig, data: ImdbData):
    """(fit, validation) reviews for a config: the same ones every time, never a test review."""
    train = data.train
    if config.training.train_subset:
        train = subset(train, config.training.train_subset, config.training.seed)
    fit_idx, val_idx = train_validation_split(train.labels, config.training.validation_fraction, config.training.seed)
    return train.take(fit_idx), train.take(val_idx)


def prepare_splits(config: RunConfig, data: ImdbData) -> EncodedSplits:
    fit_part, val_part = split_training_reviews(config, data)
    # The vocabulary sees the fitting reviews only: not validation, never test.
    tokenizer = build_tokenizer(fit_part.texts, config.tokenizer)
    return EncodedSplits(
        tokenizer=tokenizer,
        x_train=tokenizer.encode_batch(fit_part.texts),
        y_train=fit_part.labels.astype("float32"),
        x_val=tokenizer.encode_batch(val_part.texts),
        y_val=val_part.labels.astype("float32"),
        x_test=tokenizer.encode_batch(data.test.texts),
        y_test=data.test.labels.astype("float32"),
        val_texts=val_part.texts,
    )


def train_model(
    config: RunConfig,
    out_dir: str | os.PathLike,
    data: ImdbData | str | os.PathLike | None = None,
    *,
    verbose: int | None = None,
) -> dict:
    """Train per ``config`` and write the model folder; returns the metrics.

    The folder is built under a temporary name and swapped in at the end, so
    an interrupted run leaves the previous model folder as it was.
    """
    import keras
    import tensorflow as tf

    from .model import build_model, count_weights

    out_dir = Path(out_dir)
    if verbose is None:
        verbose = 1 if sys.stderr.isatty() else 2
    started = time.time()
    keras.utils.set_random_seed(config.training.seed)
    tf.config.experimental.enable_op_determinism()

    if not isinstance(data, ImdbData):
        data = load_imdb(data)
    _log(f"[sentilite] data: {data.source} ({len(data.train)} train, {len(data.test)} test reviews)")
    splits = prepare_splits(config, data)
    config = config.replace(tokenizer=splits.tokenizer.config)  # vocab may be smaller on tiny data
    _log(
        f"[sentilite] tokenized: {len(splits.x_train)} fit / {len(splits.x_val)} validation / "
        f"{len(splits.x_test)} test, vocabulary {len(splits.tokenizer)}, length {config.tokenizer.maxlen}"
    )

    model = build_model(config.model, config.tokenizer)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=config.training.learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    stop = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=config.training.patience, restore_best_weights=True
    )
    callbacks = [stop]
    if config.training.reduce_lr_factor:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=config.training.reduce_lr_factor, patience=0, min_lr=1e-5))
    history = model.fit(
        splits.x_train,
        splits.y_train,
        validation_data=(splits.x_val, splits.y_val),
        batch_size=config.training.batch_size,
        epochs=config.training.max_epochs,
        callbacks=callbacks,
        shuffle=True,
        verbose=verbose,
    )
    fit_seconds = time.time() - started
    val_loss, val_acc = model.evaluate(splits.x_val, splits.y_val, batch_size=512, verbose=0)
    test_probs = model.predict(splits.x_test, batch_size=512, verbose=0).reshape(-1)
    test_acc = float(np.mean((test_probs >= 0.5) == (splits.y_test >= 0.5)))
    epochs_run = len(history.history["loss"])
    best_epoch = int(np.argmin(history.history["val_loss"])) + 1
    metrics = {
        "name": config.name,
        "cell": config.model.cell,
        "input": config.model.input,
        "preset": config.preset,
        "test_accuracy": round(test_acc, 6),
        "test_reviews": int(len(splits.y_test)),
        "validation_accuracy": round(float(val_acc), 6),
        "validation_loss": round(float(val_loss), 6),
        "epochs_run": epochs_run,
        "best_epoch": best_epoch,
        "weights": count_weights(model),
        "train_seconds": round(fit_seconds, 1),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }
    history_dict = {k: [float(v) for v in vals] for k, vals in history.history.items()}

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = make_staging_dir(out_dir)
    try:
        model.save(staging / MODEL_FILE)
        splits.tokenizer.save(staging / TOKENIZER_FILE)
        atomic_write_json(staging / CONFIG_FILE, config.to_dict())
        atomic_write_json(staging / HISTORY_FILE, history_dict)
        atomic_write_json(staging / METRICS_FILE, metrics)
        plot_history(history_dict, staging / CURVES_FILE, title=f"{config.name}: test accuracy {test_acc:.4f}")
        _swap_in(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _log(
        f"[sentilite] {config.name}: test accuracy {test_acc:.4f} on {len(splits.y_test)} reviews, "
        f"{epochs_run} epochs (best {best_epoch}), {fit_seconds:.0f} s -> {out_dir}"
    )
    return metrics


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


def plot_history(history: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, history["loss"], "o-", label="train")
    ax_loss.plot(epochs, history["val_loss"], "o-", label="validation")
    ax_loss.set(xlabel="epoch", ylabel="binary cross-entropy", title="loss")
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


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
