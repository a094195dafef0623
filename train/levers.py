"""`sentilite levers`: the model changes that were measured and left out, re-run by one command.

Each lever changes one thing against the kept model (``base``): how the cell
reads its window (masked max+mean pooling over the real steps, a
bidirectional cell, both), how it is trained (word dropout, AdamW, label
smoothing), its width, how the two branches are blended (a second n-gram sum
over the last words only; blend weights that depend on the text's length),
or what the n-gram branch holds (``ngram-hashed``: the earlier branch, every
bigram hashed into 524,287 buckets, instead of the learned dictionary of
bigrams and trigrams). None of them beats ``base`` on validation and test
together. This module is what the README's levers tables are printed by.

Protocol (the same as every row of that table): the n-gram branch is fitted
once, the way ``train.fit`` fits it, on the fitting reviews and their crops
(and refitted with the validation rows for the whole-model rows); every cell is trained on the
same rows with the preset's optimizer, batch and early stopping; each cell's
logit is blended with the branch's by a logistic regression on the
validation reviews and their crops. Figures are on the validation reviews
and on the test reviews, whole and cut to their last 10/20/40 words, for the
cell alone and for the blend.
"""
from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass

import numpy as np

from sentilite.runtime.architecture import ModelConfig
from sentilite.runtime.recurrence import dictionary_table_bytes
from sentilite.runtime.tokenizer import OOV_ID, PAD_ID
from sentilite.shared.errors import ConfigError

from .blend import fit_blend, logits_of
from .config import RunConfig
from .data import TrainingData
from .evaluate import SHORT_TEXT_WORDS, accuracy, short_texts
from .fit import TrainingSetup, fit_ngram_branch, set_up_training

CELL_LEVERS = ("base", "pooling", "bidirectional", "bidirectional-pooling", "word-dropout", "adamw",
               "label-smoothing", "units-64")
BLEND_LEVERS = ("tail-ngrams", "length-blend")
BRANCH_LEVERS = ("ngram-hashed",)
LEVERS = CELL_LEVERS + BLEND_LEVERS + BRANCH_LEVERS
HASHED_BUCKETS = 524_287  # the ngram-hashed lever's table: the branch the dictionary replaced
TAIL_WORDS = 32  # the tail-ngrams lever's second sum reads this many last ids: the best on validation of 16-128
WORD_DROPOUT = 0.1
log = logging.getLogger("sentilite.levers")


class LeverError(ConfigError):
    """An unknown lever, or a config the levers cannot be measured on."""


def check_levers(names) -> tuple[str, ...]:
    names = tuple(names) or LEVERS
    unknown = [n for n in names if n not in LEVERS]
    if unknown:
        raise LeverError(f"unknown lever(s) {', '.join(unknown)}; choose from {', '.join(LEVERS)}")
    return names


def build_lever_cell(lever: str, config: RunConfig):
    """The cell of one lever as a Keras model: window ids -> P(positive)."""
    import keras
    from keras import layers, ops

    from .keras_model import CellBranch, build_model

    if lever in ("base", "adamw", "label-smoothing", "units-64"):
        model_config = config.model if lever != "units-64" else config.replace(model={"units": 64}).model
        return build_model(model_config, config.tokenizer)[1]
    steps = config.model.steps(config.tokenizer.maxlen)
    ids = keras.Input(shape=(steps,), dtype="int32", name="window_ids")
    if lever == "word-dropout":
        dropped = word_dropout_layer()(WORD_DROPOUT)(ids)
        return keras.Model(ids, layers.Activation("sigmoid")(CellBranch(config.model, config.tokenizer)(dropped)))
    m = config.model
    cell_layer = {"rnn": layers.SimpleRNN, "lstm": layers.LSTM, "gru": layers.GRU}[m.cell]
    pooled = lever.endswith("pooling")
    # mask_zero: the padding in front of a short text must not reach a backward cell's state.
    x = layers.Embedding(config.tokenizer.vocab_size, m.embedding_dim, mask_zero=True)(ids)
    if m.embedding_dropout:
        x = layers.SpatialDropout1D(m.embedding_dropout)(x)
    cell = cell_layer(m.units, return_sequences=pooled)
    x = layers.Bidirectional(cell)(x) if lever.startswith("bidirectional") else cell(x)
    if pooled:
        real = ops.expand_dims(ops.cast(ops.not_equal(ids, PAD_ID), "float32"), -1)
        mean = ops.sum(x * real, axis=1) / ops.maximum(ops.sum(real, axis=1), 1.0)
        any_real = ops.minimum(ops.sum(real, axis=1), 1.0)  # an empty text pools to zeros, not to -1e4
        largest = ops.max(x * real - 1e4 * (1.0 - real), axis=1) * any_real
        x = layers.Concatenate()([mean, largest])
    if m.dropout:
        x = layers.Dropout(m.dropout)(x)
    return keras.Model(ids, layers.Dense(1, activation="sigmoid")(x))


@functools.cache
def word_dropout_layer():
    """The WordDropout layer class, defined on first use so that importing this module needs no Keras."""
    import keras

    class WordDropout(keras.layers.Layer):
        """In training, each real id becomes the out-of-vocabulary id with probability ``rate``."""

        def __init__(self, rate: float, **kwargs):
            super().__init__(**kwargs)
            self.rate = float(rate)
            self.seed = keras.random.SeedGenerator(0)

        def call(self, ids, training=None):
            if not training:
                return ids
            ops = keras.ops
            drop = keras.random.uniform(ops.shape(ids), seed=self.seed) < self.rate
            return ops.where(ops.logical_and(drop, ops.not_equal(ids, PAD_ID)), OOV_ID, ids)

        def get_config(self):
            return {**super().get_config(), "rate": self.rate}

    return WordDropout


def run_levers(config: RunConfig, data: TrainingData, levers=(), test_reviews: int | None = None,
               hashed_buckets: int = HASHED_BUCKETS) -> dict:
    """Measure each lever (default: all); returns {"rows": [...], "table": markdown, ...}."""
    levers = check_levers(levers)
    if len(data.label_names) != 2:
        raise LeverError(f"the levers are measured on data of two labels (one logit); {data.source} has "
                         f"{len(data.label_names)}: {', '.join(data.label_names)}")
    started = time.time()
    setup = set_up_training(config, data, test_reviews)
    if setup.ngrams is None:
        raise LeverError("the levers are measured against the n-gram branch; this config has none (ngram_buckets=0)")
    sets = LeverSets.of(setup)
    log.info("n-gram branch fitted on %d rows (%.0f s)", len(setup.y_fit), time.time() - started)
    rows, base_cell = measure_cell_levers(sets, levers)
    rows += measure_blend_levers(sets, levers, base_cell)
    if "ngram-hashed" in levers:
        rows += measure_branch_lever(sets, base_cell, hashed_buckets)
    order = [*levers, "base, whole model", "ngram-hashed, whole model"]
    rows.sort(key=lambda r: order.index(r["lever"]))
    ngram_scores = sets.scores(sets.ngram)
    return {"cell": setup.config.model.cell, "seed": setup.config.training.seed, "rows": rows,
            "test_reviews": len(setup.splits.y_test), "validation_reviews": len(setup.splits.y_val),
            "ngram_branch": ngram_scores, "table": levers_table(rows, ngram_scores),
            "seconds": round(time.time() - started, 1)}


@dataclass(frozen=True)
class LeverSets:
    """The id sets every lever is scored on, with the logits of the n-gram branch fitted without validation.

    The sets are the validation reviews and their crops ("validation"), the
    test reviews ("test") and the test reviews cut to their last k words
    ("last k"); accuracy on "validation" counts the reviews, not the crops.
    """

    setup: TrainingSetup
    ids: dict[str, np.ndarray]
    ngram: dict[str, np.ndarray]

    @classmethod
    def of(cls, setup: TrainingSetup) -> LeverSets:
        splits = setup.splits
        ids = {"validation": setup.x_val, "test": splits.x_test,
               **{f"last {k}": splits.tokenizer.encode_batch(short_texts(splits.test.texts, k))
                  for k in SHORT_TEXT_WORDS}}
        return cls(setup, ids, {name: setup.ngrams.fitted.logit(x) for name, x in ids.items()})

    def scores(self, logits: dict) -> dict:
        """Accuracy on the validation reviews (not their crops), the test reviews and the short texts."""
        n_val, y_val, y_test = len(self.setup.splits.y_val), self.setup.y_val, self.setup.splits.y_test
        out = {"validation": accuracy(logits["validation"][:n_val] > 0, y_val[:n_val]),
               "test": accuracy(logits["test"] > 0, y_test)}
        out["short_text"] = [accuracy(logits[f"last {k}"] > 0, y_test) for k in SHORT_TEXT_WORDS]
        return {k: (round(v, 6) if isinstance(v, float) else [round(x, 6) for x in v]) for k, v in out.items()}

    def blend(self, features: dict) -> tuple[dict, list]:
        """Each set's features weighed by a logistic regression fitted on "validation"; (logits, its weights)."""
        from sklearn.linear_model import LogisticRegression

        regression = LogisticRegression(C=100.0, max_iter=2000).fit(features["validation"],
                                                                     self.setup.y_val.astype(int))
        coef, intercept = regression.coef_.ravel(), regression.intercept_[0]
        return {name: f @ coef + intercept for name, f in features.items()}, [round(float(c), 4) for c in coef]

    def cell_logits(self, cell_model) -> dict:
        return {name: logits_of(cell_model.predict(self.setup.window(x), batch_size=1024, verbose=0))
                for name, x in self.ids.items()}


def measure_cell_levers(sets: LeverSets, levers: tuple[str, ...]) -> tuple[list[dict], dict | None]:
    """(a row for each cell lever asked for, the base cell's logits of each set), each cell blended with the branch.

    The base cell is trained even unasked when a blend or branch lever needs it.
    """
    import keras

    config = sets.setup.config
    rows, base_cell = [], None
    cell_levers = [n for n in levers if n in CELL_LEVERS]
    if any(n in BLEND_LEVERS + BRANCH_LEVERS for n in levers) and "base" not in cell_levers:
        cell_levers.insert(0, "base")  # the blend and branch levers reuse the base cell
    for index, lever in enumerate(cell_levers, 1):
        keras.utils.set_random_seed(config.training.seed)
        lever_started = time.time()
        model = build_lever_cell(lever, config)
        history = train_lever_cell(lever, model, sets.setup)
        cell = sets.cell_logits(model)
        if lever == "base":
            base_cell = cell
        blended, coef = sets.blend({name: np.stack([sets.ngram[name], cell[name]], 1) for name in sets.ids})
        if lever in levers:
            rows.append({"lever": lever, "cell_alone": sets.scores(cell), "blend": sets.scores(blended),
                         "blend_weights": coef, "epochs": len(history.history["loss"]),
                         "seconds": round(time.time() - lever_started, 1)})
        log.info("lever %s (%d/%d): blend test %.4f (%.0f s)", lever, index, len(cell_levers),
                 sets.scores(blended)["test"], time.time() - lever_started)
    return rows, base_cell


def train_lever_cell(lever: str, model, setup: TrainingSetup):
    """A lever's cell trained on the rows and with the early stopping the kept cell has; returns its History."""
    import keras

    t = setup.config.training
    optimizer = (keras.optimizers.AdamW(t.learning_rate, weight_decay=0.01) if lever == "adamw"
                 else keras.optimizers.Adam(t.learning_rate))
    loss = keras.losses.BinaryCrossentropy(label_smoothing=0.1 if lever == "label-smoothing" else 0.0)
    model.compile(optimizer=optimizer, loss=loss)
    return model.fit(setup.window(setup.x_fit), setup.y_fit, validation_data=(setup.window(setup.x_val), setup.y_val),
                     batch_size=t.batch_size, epochs=t.max_epochs, shuffle=True, verbose=0,
                     callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=t.patience,
                                                              restore_best_weights=True)])


def measure_blend_levers(sets: LeverSets, levers: tuple[str, ...], base_cell: dict | None) -> list[dict]:
    """A row for each blend lever asked for: the base cell and the branch, blended with more features."""
    rows = []
    for lever in (n for n in levers if n in BLEND_LEVERS):
        lever_started = time.time()
        if lever == "tail-ngrams":
            fitted = sets.setup.ngrams.fitted
            features = {name: np.stack([sets.ngram[name], base_cell[name], fitted.logit(tail_ids(ids))], 1)
                        for name, ids in sets.ids.items()}
        else:  # length-blend: each logit's weight is a + b / sqrt(length), plus a length-dependent bias
            features = {}
            for name, ids in sets.ids.items():
                shrink = 1.0 / np.sqrt(np.maximum((ids != PAD_ID).sum(axis=1), 1.0))
                features[name] = np.stack([sets.ngram[name], base_cell[name], sets.ngram[name] * shrink,
                                           base_cell[name] * shrink, shrink], 1)
        blended, coef = sets.blend(features)
        rows.append({"lever": lever, "cell_alone": None, "blend": sets.scores(blended), "blend_weights": coef,
                     "epochs": None, "seconds": round(time.time() - lever_started, 1)})
    return rows


def tail_ids(ids: np.ndarray) -> np.ndarray:
    """Each row with all but its last TAIL_WORDS ids made padding: what the tail-ngrams lever's second sum reads."""
    kept = ids.copy()
    kept[:, :-TAIL_WORDS] = PAD_ID
    return kept


def measure_branch_lever(sets: LeverSets, base_cell: dict, hashed_buckets: int) -> list[dict]:
    """The ngram-hashed row (the hashed branch alone), then the whole model each branch makes with the base cell."""
    setup = sets.setup
    config = setup.config
    lever_started = time.time()
    hashed = config.replace(model={"ngram_buckets": hashed_buckets, "ngram_lookup": "hashed"})
    other = fit_ngram_branch(hashed, setup)
    logits = {name: other.fitted.logit(ids) for name, ids in sets.ids.items()}
    rows = [{"lever": "ngram-hashed", "cell_alone": None, "blend": sets.scores(logits), "blend_weights": None,
             "buckets": hashed_buckets, "bytes_8bit": ngram_branch_bytes(hashed.model, config.tokenizer.vocab_size),
             "epochs": None, "seconds": round(time.time() - lever_started, 1)}]
    log.info("lever ngram-hashed: branch alone, test %.4f (%.0f s)", rows[-1]["blend"]["test"],
             time.time() - lever_started)
    # The whole model each branch makes, the way train.fit builds it: the branch refitted on
    # every training review and crop, blended with the base cell by weights fitted on
    # validation with the branch fitted without it. The base row is the kept model's recipe.
    tests = {name: ids for name, ids in sets.ids.items() if name != "validation"}
    for label, branches in (("base", setup.ngrams), ("ngram-hashed", other)):
        fitted_logits = {name: branches.fitted.logit(ids) for name, ids in sets.ids.items()}
        blend = fit_blend(fitted_logits["validation"], base_cell["validation"], setup.y_val)
        # validation: the branch fitted without it (as train.fit reports); tests: the refitted branch
        model_logits = {name: blend.logit(branches.kept.logit(ids) if name in tests else fitted_logits[name],
                                          base_cell[name])
                        for name, ids in sets.ids.items()}
        rows.append({"lever": f"{label}, whole model", "cell_alone": None, "blend": sets.scores(model_logits),
                     "blend_weights": [blend.ngram_scale, blend.cell_scale], "epochs": None,
                     "seconds": round(time.time() - lever_started, 1)})
    log.info("ngram-hashed, whole model: test %.4f (%.0f s)", rows[-1]["blend"]["test"],
             time.time() - lever_started)
    return rows


def ngram_branch_bytes(model: ModelConfig, vocab_size: int) -> int:
    """Bytes of an n-gram branch at 8 bits: a weight per row, and a dictionary's fingerprints and displacements."""
    size = vocab_size + model.ngram_buckets
    if model.ngram_dictionary:
        size += dictionary_table_bytes(model.ngram_buckets)
    return size


def levers_table(rows: list[dict], ngram: dict) -> str:
    def cells(s):
        if s is None:
            return ["-", "-", "-"]
        return [f"{s['validation']:.4f}", f"{s['test']:.4f}", " / ".join(f"{a:.4f}" for a in s["short_text"])]

    header = ("| lever | cell alone: validation | test | last 10 / 20 / 40 | blend: validation | test | "
              "last 10 / 20 / 40 |")
    lines = [header, "|---|---|---|---|---|---|---|",
             "| n-gram branch alone | - | - | - | " + " | ".join(cells(ngram)) + " |"]
    lines += [f"| {_lever_label(r)} | " + " | ".join(cells(r["cell_alone"]) + cells(r["blend"])) + " |" for r in rows]
    return "\n".join(lines)


def _lever_label(row: dict) -> str:
    if row["lever"].endswith("whole model"):
        branch = "hashed bigram buckets" if row["lever"].startswith("ngram") else "learned dictionary (kept)"
        return (f"{row['lever']}: n-gram branch of {branch} refitted on all training reviews, "
                "+ the base cell, blended")
    if row["lever"] == "ngram-hashed":
        return (f"ngram-hashed ({row['buckets']:,} hashed bigram buckets; n-gram branch alone, "
                f"{row['bytes_8bit'] / 1e6:.2f} MB at 8 bits)")
    return row["lever"]
