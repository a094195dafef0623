"""`sentilite levers`: the model changes that were measured and left out, re-run by one command.

Each lever changes one thing against the kept model (``base``): how the cell
reads its window (masked max+mean pooling over the real steps, a
bidirectional cell, both), how it is trained (word dropout, AdamW, label
smoothing), its width, how the two branches are blended (a second n-gram sum
over the last words only; blend weights that depend on the text's length),
or what the n-gram branch holds (``ngram-dictionary``: a learned dictionary
of bigrams and trigrams instead of hashed bigram buckets). None of the cell
and blend levers beat ``base`` on validation and test together; the
dictionary does, and is not in the model yet because no exported graph can
look it up (README, levers). This module is what the README's levers tables
are printed by.

Protocol (the same as every row of that table): the n-gram branch is fitted
once, on the fitting reviews and their crops; every cell is trained on the
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

import numpy as np
from sentilite.runtime.tokenizer import OOV_ID, PAD_ID

from sentilite.shared.errors import ConfigError

from .config import RunConfig
from .data import ImdbData
from .evaluate import SHORT_TEXT_WORDS, accuracy, short_texts
from .fit import _logits, prepare_splits, with_crops

CELL_LEVERS = ("base", "pooling", "bidirectional", "bidirectional-pooling", "word-dropout", "adamw",
               "label-smoothing", "units-64")
BLEND_LEVERS = ("tail-ngrams", "length-blend")
BRANCH_LEVERS = ("ngram-dictionary",)
LEVERS = CELL_LEVERS + BLEND_LEVERS + BRANCH_LEVERS
DICTIONARY_KEYS = 150_000  # bigrams and trigrams the ngram-dictionary lever keeps
TAIL_WORDS = 32  # the tail-ngrams lever's second sum reads this many last ids (16-128 probed: 32 best on validation)
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

    from .model import CellBranch, build_model

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


def run_levers(config: RunConfig, data: ImdbData, levers=(), test_reviews: int | None = None,
               dictionary_keys: int = DICTIONARY_KEYS) -> dict:
    """Measure each lever (default: all); returns {"rows": [...], "table": markdown, ...}."""
    import keras
    import tensorflow as tf
    from sklearn.linear_model import LogisticRegression

    from .fit import fit_blend
    from .ngrams import fit_ngram_weights, ngram_matrix, refit_ngram_weights

    levers = check_levers(levers)
    started = time.time()
    keras.utils.set_random_seed(config.training.seed)
    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(config.training.seed)
    splits = prepare_splits(config, data, test_reviews)
    config = config.replace(tokenizer=splits.tokenizer.config)
    tokenizer, vocab, buckets = splits.tokenizer, splits.tokenizer.config.vocab_size, config.model.ngram_buckets
    if not buckets:
        raise LeverError("the levers are measured against the n-gram branch; this config has none (ngram_buckets=0)")
    steps = config.model.steps(config.tokenizer.maxlen)
    x_fit, y_fit = with_crops(splits.x_fit, splits.y_fit, config, rng)
    x_val, y_val = with_crops(splits.x_val, splits.y_val, config, rng)
    n_val = len(splits.y_val)
    is_review = np.arange(len(x_fit)) < len(splits.x_fit)
    fit_matrix = ngram_matrix(x_fit, vocab, buckets)
    weights, bias = fit_ngram_weights(fit_matrix, y_fit, config.training.ngram_c, ratio_rows=is_review)
    sets = {"validation": x_val, "test": splits.x_test,
            **{f"last {k}": tokenizer.encode_batch(short_texts(splits.test.texts, k)) for k in SHORT_TEXT_WORDS}}
    matrices = {name: ngram_matrix(ids, vocab, buckets) for name, ids in sets.items()}

    def ngram_logits(ids):
        return ngram_matrix(ids, vocab, buckets) @ weights + bias

    def tail(ids):
        kept = ids.copy()
        kept[:, :-TAIL_WORDS] = PAD_ID
        return kept

    ngram = {name: matrix @ weights + bias for name, matrix in matrices.items()}
    log.info("n-gram branch fitted on %d rows (%.0f s)", len(y_fit), time.time() - started)

    def scores(logits: dict) -> dict:
        """Accuracy on the validation reviews (not their crops), the test reviews and the short texts."""
        out = {"validation": accuracy(logits["validation"][:n_val] > 0, y_val[:n_val]),
               "test": accuracy(logits["test"] > 0, splits.y_test)}
        out["short_text"] = [accuracy(logits[f"last {k}"] > 0, splits.y_test) for k in SHORT_TEXT_WORDS]
        return {k: (round(v, 6) if isinstance(v, float) else [round(x, 6) for x in v]) for k, v in out.items()}

    def blend(features: dict) -> tuple[dict, list]:
        regression = LogisticRegression(C=100.0, max_iter=2000).fit(features["validation"], y_val.astype(int))
        coef, intercept = regression.coef_.ravel(), regression.intercept_[0]
        return {name: f @ coef + intercept for name, f in features.items()}, [round(float(c), 4) for c in coef]

    rows, base_cell = [], None
    cell_levers = [n for n in levers if n in CELL_LEVERS]
    if any(n in BLEND_LEVERS + BRANCH_LEVERS for n in levers) and "base" not in cell_levers:
        cell_levers.insert(0, "base")  # the blend and branch levers reuse the base cell
    for index, lever in enumerate(cell_levers, 1):
        keras.utils.set_random_seed(config.training.seed)
        lever_started = time.time()
        model = build_lever_cell(lever, config)
        t = config.training
        optimizer = (keras.optimizers.AdamW(t.learning_rate, weight_decay=0.01) if lever == "adamw"
                     else keras.optimizers.Adam(t.learning_rate))
        loss = keras.losses.BinaryCrossentropy(label_smoothing=0.1 if lever == "label-smoothing" else 0.0)
        model.compile(optimizer=optimizer, loss=loss)
        history = model.fit(x_fit[:, -steps:], y_fit, validation_data=(x_val[:, -steps:], y_val),
                            batch_size=t.batch_size, epochs=t.max_epochs, shuffle=True, verbose=0,
                            callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=t.patience,
                                                                     restore_best_weights=True)])
        cell = {name: _logits(model.predict(ids[:, -steps:], batch_size=1024, verbose=0))
                for name, ids in sets.items()}
        if lever == "base":
            base_cell = cell
        blended, coef = blend({name: np.stack([ngram[name], cell[name]], 1) for name in sets})
        if lever in levers:
            rows.append({"lever": lever, "cell_alone": scores(cell), "blend": scores(blended), "blend_weights": coef,
                         "epochs": len(history.history["loss"]), "seconds": round(time.time() - lever_started, 1)})
        log.info("lever %s (%d/%d): blend test %.4f (%.0f s)", lever, index, len(cell_levers),
                 scores(blended)["test"], time.time() - lever_started)
    for lever in (n for n in levers if n in BLEND_LEVERS):
        lever_started = time.time()
        if lever == "tail-ngrams":
            features = {name: np.stack([ngram[name], base_cell[name], ngram_logits(tail(ids))], 1)
                        for name, ids in sets.items()}
        else:  # length-blend: each logit's weight is a + b / sqrt(length), plus a length-dependent bias
            features = {}
            for name, ids in sets.items():
                shrink = 1.0 / np.sqrt(np.maximum((ids != PAD_ID).sum(axis=1), 1.0))
                features[name] = np.stack([ngram[name], base_cell[name], ngram[name] * shrink,
                                           base_cell[name] * shrink, shrink], 1)
        blended, coef = blend(features)
        rows.append({"lever": lever, "cell_alone": None, "blend": scores(blended), "blend_weights": coef,
                     "epochs": None, "seconds": round(time.time() - lever_started, 1)})
    if "ngram-dictionary" in levers:
        lever_started = time.time()
        c = config.training.ngram_c
        logits, nbytes = ngram_dictionary_logits(x_fit, y_fit, is_review, sets, vocab, c, dictionary_keys)
        rows.append({"lever": "ngram-dictionary", "cell_alone": None, "blend": scores(logits), "blend_weights": None,
                     "keys": dictionary_keys, "bytes_8bit": nbytes, "epochs": None,
                     "seconds": round(time.time() - lever_started, 1)})
        log.info("lever ngram-dictionary: branch alone, test %.4f (%.0f s)", rows[-1]["blend"]["test"],
                 time.time() - lever_started)
        # The whole model each branch would make, the way train.fit builds it (its refit and its
        # blend): the branch refitted on every training review and crop, blended with the base cell
        # by weights fitted on validation with the branch fitted without it. The hashed row is the
        # kept model's own recipe.
        val_review = np.arange(len(x_val)) < n_val
        tests = {name: ids for name, ids in sets.items() if name != "validation"}
        kept_weights, kept_bias = refit_ngram_weights((fit_matrix, matrices["validation"]), (y_fit, y_val),
                                                      (is_review, val_review), c)
        kept = {"hashed": {name: matrices[name] @ kept_weights + kept_bias for name in tests}}
        kept["dictionary"], _ = ngram_dictionary_logits(
            np.concatenate([x_fit, x_val]), np.concatenate([y_fit, y_val]), np.concatenate([is_review, val_review]),
            tests, vocab, c, dictionary_keys)
        for branch, fitted in (("hashed", ngram), ("dictionary", logits)):
            blend_of = fit_blend(fitted["validation"], base_cell["validation"], y_val)
            # validation: the branch fitted without it (as train.fit reports); tests: the refitted branch
            model_logits = {name: blend_of["ngram_scale"] * (kept[branch][name] if name in tests else fitted[name])
                            + blend_of["cell_scale"] * base_cell[name] + blend_of["bias"] for name in sets}
            label = "base" if branch == "hashed" else "ngram-dictionary"
            rows.append({"lever": f"{label}, whole model", "cell_alone": None, "blend": scores(model_logits),
                         "blend_weights": [blend_of["ngram_scale"], blend_of["cell_scale"]], "epochs": None,
                         "seconds": round(time.time() - lever_started, 1)})
        log.info("ngram-dictionary, whole model: test %.4f (%.0f s)", rows[-1]["blend"]["test"],
                 time.time() - lever_started)
    order = [*levers, "base, whole model", "ngram-dictionary, whole model"]
    rows.sort(key=lambda r: order.index(r["lever"]))
    return {"cell": config.model.cell, "seed": config.training.seed, "rows": rows,
            "test_reviews": len(splits.y_test), "validation_reviews": n_val,
            "ngram_branch": scores(ngram), "table": levers_table(rows, scores(ngram)),
            "seconds": round(time.time() - started, 1)}


def ngram_occurrences(ids: np.ndarray, vocab: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, key, order) of every unigram, bigram and trigram of real ids; keys are exact int64 codes."""
    ids = ids.astype(np.int64)
    real = ids != PAD_ID
    row = np.broadcast_to(np.arange(len(ids))[:, None], ids.shape)
    bi, bi_real = ids[:, :-1] * vocab + ids[:, 1:], real[:, :-1] & real[:, 1:]
    tri, tri_real = bi[:, :-1] * vocab + ids[:, 2:], bi_real[:, :-1] & real[:, 2:]
    parts = [(row, ids, real, 1, 0), (row[:, 1:], bi, bi_real, 2, vocab), (row[:, 2:], tri, tri_real, 3,
                                                                              vocab + vocab * vocab)]
    return (np.concatenate([r[m] for r, _, m, _, _ in parts]), np.concatenate([k[m] + off for _, k, m, _, off in parts]),
            np.concatenate([np.full(int(m.sum()), o, np.int8) for _, _, m, o, _ in parts]))


def _mix(keys: np.ndarray, salt: int) -> np.ndarray:
    """A 64-bit mixing hash (splitmix64's finalizer) of int64 keys."""
    x = (keys.astype(np.uint64) + np.uint64(salt)) * np.uint64(0x9E3779B97F4A7C15)
    x ^= x >> np.uint64(29)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    return x ^ (x >> np.uint64(32))


def ngram_dictionary_logits(x_fit, y_fit, is_review, sets: dict, vocab: int, c: float, keys: int):
    """The n-gram branch as a learned dictionary instead of hashed buckets; (logits per set, bytes at 8 bits).

    Every unigram keeps its row; of the bigrams and trigrams seen in the
    fitting rows, the ``keys`` with the largest weights of an exact NB-weighted
    regression are kept, and the regression is refitted on those. Weights are
    rounded to int8. The lookup is what a graph would do with a minimal
    perfect hash (hash-and-displace: a 16-bit displacement per 4 keys) and an
    8-bit fingerprint per key: a kept n-gram reads its weight; any other lands
    on some slot and reads that slot's weight when the fingerprints agree (1 in
    255). The perfect hash itself is emulated (each kept key its own slot).
    """
    import scipy.sparse as sp

    from .ngrams import nb_ratio

    occurrences = {"fit": ngram_occurrences(x_fit, vocab), **{n: ngram_occurrences(x, vocab) for n, x in sets.items()}}
    rows = {"fit": len(x_fit), **{n: len(x) for n, x in sets.items()}}
    # Divided by sqrt(every occurrence), kept or not: a graph can count those without the dictionary.
    scale = {n: 1.0 / np.sqrt(np.maximum(np.bincount(o[0], minlength=rows[n]), 1)) for n, o in occurrences.items()}
    known = np.unique(occurrences["fit"][1])
    r, k, _ = occurrences["fit"]
    matrix = sp.csr_matrix((scale["fit"][r].astype(np.float32), (r, np.searchsorted(known, k))),
                           shape=(rows["fit"], len(known)))
    matrix.sum_duplicates()
    ratio = nb_ratio(matrix[is_review], y_fit[is_review])
    weighted = (matrix @ sp.diags(ratio)).tocsc()

    def fit(columns):
        from sklearn.linear_model import LogisticRegression

        regression = LogisticRegression(C=c, solver="liblinear", max_iter=5000).fit(weighted[:, columns], y_fit)
        return regression.coef_.ravel() * ratio[columns], float(regression.intercept_[0])

    is_unigram = known < vocab
    weights, _ = fit(np.arange(len(known)))
    longer = np.flatnonzero(~is_unigram)
    kept = np.sort(longer[np.argsort(-np.abs(weights[longer]))[:keys]])
    columns = np.concatenate([np.flatnonzero(is_unigram), kept])
    refit, bias = fit(columns)
    step = np.abs(refit).max() / 127
    table = np.zeros(len(known))
    table[columns] = np.round(refit / step) * step  # int8
    unigram = np.zeros(vocab)
    unigram[known[is_unigram]] = table[is_unigram]
    kept_keys, kept_weights = known[kept], table[kept]
    fingerprint = (_mix(kept_keys, 3) % np.uint64(255)).astype(np.int64) + 1
    logits = {}
    for name in sets:
        r, k, order = occurrences[name]
        total = np.bincount(r[order == 1], weights=unigram[k[order == 1]], minlength=rows[name])
        r, k = r[order > 1], k[order > 1]
        at = np.minimum(np.searchsorted(kept_keys, k), len(kept_keys) - 1)
        member = kept_keys[at] == k
        slot = np.where(member, at, (_mix(k, 1) % np.uint64(len(kept_keys))).astype(np.int64))
        hit = member | (fingerprint[slot] == (_mix(k, 3) % np.uint64(255)).astype(np.int64) + 1)
        total += np.bincount(r, weights=np.where(hit, kept_weights[slot], 0.0), minlength=rows[name])
        logits[name] = total * scale[name] + bias
    return logits, int(vocab + 2 * len(kept_keys) + 2 * (len(kept_keys) // 4))


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
        branch = "learned dictionary" if row["lever"].startswith("ngram") else "hashed buckets (kept)"
        return (f"{row['lever']}: n-gram branch of {branch} refitted on all training reviews, "
                "+ the base cell, blended")
    if row["lever"] == "ngram-dictionary":
        return (f"ngram-dictionary ({row['keys']:,} bi/trigrams; n-gram branch alone, "
                f"{row['bytes_8bit'] / 1e6:.2f} MB at 8 bits)")
    return row["lever"]
