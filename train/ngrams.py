"""Stage 1 of training: the n-gram branch, fitted as a logistic regression before the cell.

Features are the rows of the n-gram table a review reads
(``recurrence.ngram_rows``: unigram ids, and hashed bigram buckets or the
slots of a learned dictionary), counted and divided by the square root of
their number, exactly as the model sums them. Each feature is scaled by its
Naive-Bayes log-count ratio before the regression (NBSVM, Wang & Manning
2012), and the fitted weight of a feature is coefficient x ratio, so the
model needs one number per table row.

With three or more labels the table holds one weight per label: label k's
column is an NBSVM of k against the other labels (one-vs-rest, its own
ratios). On SST-5 that is as accurate as one multinomial regression on the
same features (test 0.389 against 0.389 at C=10, validation 0.386 against
0.365) and six times faster (15 s against 87 s for five labels), and each
column is a liblinear fit as for two labels.

The learned dictionary (``learn_dictionary``) is chosen the same way: a
regression on every bigram and trigram code, exactly, then the codes with
the largest weights (over the labels) get the dictionary's slots.

Characters inside words (``TrainConfig.subword_ngrams``, fastText-style):
each vocabulary word also counts as its character 2- to 5-grams, marked at
its ends (``<fun``, ``ny>``), so words that share a stem share evidence.
Such a feature of a text is a fixed sum over its words, so its weight folds
into the words' unigram rows (``fold_subwords``): the table, and every
exported file, keep their shape, and no tokenizer learns anything new.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

import numpy as np

from sentilite.runtime.recurrence import (
    EMPTY_FINGERPRINT,
    FINGERPRINT_MODULUS,
    MAX_DISPLACEMENT,
    NgramDictionary,
    dictionary_groups,
    ngram_keys,
    ngram_logit,
    ngram_rows,
)
from sentilite.runtime.tokenizer import PAD_ID

_CHUNK = 2048  # rows hashed at a time: bounds the int64 temporaries
# The share of a dictionary's slots given to keys: the spare 2% lets the last groups find room
# within MAX_DISPLACEMENT of where they hash.
DICTIONARY_LOAD = 0.98
_DISPLACEMENT_BATCH = 2048  # displacements tried at once per group
log = logging.getLogger("sentilite.train")


@dataclass(frozen=True)
class NgramBranch:
    """A fitted n-gram branch: its table, bias and (learned) dictionary; ``logit`` is what the model adds.

    Two labels: ``weights`` (rows,) and a float ``bias``, one logit; N labels:
    ``weights`` (rows, N) and ``bias`` (N,), one logit per label.
    """

    weights: np.ndarray
    bias: float | np.ndarray
    dictionary: NgramDictionary | None
    vocab_size: int
    buckets: int

    def logit(self, ids: np.ndarray) -> np.ndarray:
        return ngram_logit(ids, self.weights, self.vocab_size, self.buckets, self.dictionary) + self.bias


@dataclass(frozen=True)
class SubwordChoice:
    """Stage 1 with and without characters inside words: the validation accuracy of each, and which was kept."""

    kept: bool
    accuracy_without: float
    accuracy_with: float

    def to_dict(self) -> dict:
        return {"kept": self.kept, "validation_accuracy_without": round(self.accuracy_without, 6),
                "validation_accuracy_with": round(self.accuracy_with, 6)}


@dataclass(frozen=True)
class NgramBranches:
    """Stage 1's two fits of one branch: without the validation reviews, and with them.

    The blend is fitted on ``fitted``, whose logits of the validation rows are
    ``val_logits``, so it weighs a branch that never saw those rows; ``kept``
    (every training review and crop) is the branch the saved model holds.
    """

    fitted: NgramBranch
    kept: NgramBranch
    val_logits: np.ndarray
    subwords: SubwordChoice | None = None  # None: characters inside words were not tried


# Characters inside words: the n of the character n-grams, and the weight of a word's grams (together
# sqrt(len) long, as its unigram is 1). Measured on SST-5's n-gram branch (validation / test accuracy):
# no grams 0.385 / 0.406; 3-6 0.391 / 0.413, 2-4 0.395 / 0.412, 2-5 0.399 / 0.415 at weight 2; 2-5 at weight
# 1 / 4 / 8: 0.393 / 0.390 / 0.382 on validation.
SUBWORD_SIZES = (2, 5)
SUBWORD_WEIGHT = 2.0


def subword_grams(word: str, sizes: tuple[int, int] = SUBWORD_SIZES) -> list[str]:
    """The character n-grams of ``<word>``, sorted, without the whole marked word (its unigram already counts)."""
    marked = f"<{word}>"
    low, high = sizes
    grams = {marked[a: a + n] for n in range(low, high + 1) for a in range(len(marked) - n + 1)}
    grams.discard(marked)
    return sorted(grams)


def subword_matrix(vocabulary, vocab_size: int, sizes: tuple[int, int] = SUBWORD_SIZES,
                   weight: float = SUBWORD_WEIGHT):
    """scipy CSR (vocab_size, grams): word id -> its character n-grams, each ``weight / sqrt(their number)``.

    Ids 0 and 1 (padding, out of vocabulary) have none.
    """
    import scipy.sparse as sp

    columns: dict[str, int] = {}
    rows, found, values = [], [], []
    for word_id in range(2, min(vocab_size, len(vocabulary))):
        grams = subword_grams(vocabulary[word_id], sizes)
        for gram in grams:
            rows.append(word_id)
            found.append(columns.setdefault(gram, len(columns)))
        values.extend([weight / np.sqrt(len(grams))] * len(grams))
    return sp.csr_matrix((np.asarray(values, np.float32), (rows, found)), shape=(vocab_size, len(columns)),
                         dtype=np.float32)


def with_subwords(matrix, subwords, vocab_size: int):
    """An n-gram matrix with one more column per character n-gram: its (scaled) count in each text."""
    import scipy.sparse as sp

    return sp.hstack([matrix, matrix[:, :vocab_size] @ subwords], format="csr", dtype=np.float32)


def fold_subwords(weights: np.ndarray, subwords, vocab_size: int) -> np.ndarray:
    """The weights of ``with_subwords`` columns as table rows: each word's grams added to its unigram row.

    ``matrix @ fold(w)`` equals ``with_subwords(matrix) @ w``; padding stays 0.
    """
    table = weights.shape[0] - subwords.shape[1]
    folded = np.array(weights[:table], np.float32)
    folded[:vocab_size] += np.asarray(subwords @ weights[table:], np.float32)
    folded[0] = 0.0
    return folded


def ngram_matrix(ids: np.ndarray, vocab_size: int, buckets: int, dictionary: NgramDictionary | None = None):
    """scipy CSR (n, vocab_size + buckets): count of each table row / sqrt(total count), padding left out."""
    def table_rows(chunk):
        rows, count = ngram_rows(chunk, vocab_size, buckets, dictionary)
        r, c = np.nonzero(rows)
        return r, rows[r, c], count

    rows, columns, values = _scaled_occurrences(ids, table_rows)
    return _csr(values, rows, columns, (len(ids), vocab_size + buckets))


def _scaled_occurrences(ids: np.ndarray, occurrences) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, column, 1/sqrt(row's n-gram count)) of every occurrence, found _CHUNK rows at a time.

    ``occurrences(chunk)`` gives (row in chunk, column, n-gram count of each chunk row).
    """
    row_parts, col_parts, val_parts = [], [], []
    for start in range(0, len(ids), _CHUNK):
        r, col, count = occurrences(ids[start: start + _CHUNK])
        row_parts.append(r + start)
        col_parts.append(col)
        val_parts.append((1.0 / np.sqrt(np.maximum(count, 1)))[r].astype(np.float32))
    return np.concatenate(row_parts), np.concatenate(col_parts), np.concatenate(val_parts)


def _csr(values, rows, columns, shape):
    """Occurrences summed per (row, column)."""
    import scipy.sparse as sp

    matrix = sp.csr_matrix((values, (rows, columns)), shape=shape, dtype=np.float32)
    matrix.sum_duplicates()
    return matrix


def nb_ratio(matrix, labels: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """log((p / |p|) / (q / |q|)) of binarised features, p and q smoothed by alpha (Wang & Manning 2012)."""
    present = matrix.copy()
    present.data[:] = 1.0
    p = alpha + np.asarray(present[labels == 1].sum(axis=0)).ravel()
    q = alpha + np.asarray(present[labels == 0].sum(axis=0)).ravel()
    return np.log((p / p.sum()) / (q / q.sum())).astype(np.float32)


def fit_ngram_weights(matrix, labels: np.ndarray, c: float, ratio_rows=None, zero_padding: bool = True,
                      classes: int = 2, class_weight: str | None = None) -> tuple[np.ndarray, float | np.ndarray]:
    """(weights, bias) of the table rows. NB ratios come from ``ratio_rows`` (whole reviews, not crops).

    Two ``classes``: one weight per row and a float bias (labels 0/1);
    more: (rows, classes) weights and (classes,) biases, column k the
    regression of class k against the rest (labels are class indexes).
    ``class_weight="balanced"`` weighs each regression's two sides inversely
    to their frequency (scikit-learn's).
    """
    if classes == 2:
        return _nbsvm(matrix, labels, c, ratio_rows, zero_padding, class_weight)
    from concurrent.futures import ThreadPoolExecutor

    def fit_label(k):
        return _nbsvm(matrix, (np.asarray(labels) == k).astype(np.float32), c, ratio_rows, zero_padding, class_weight)

    # liblinear releases the GIL while it fits, so the labels' regressions share the cores. Its primal
    # solver draws nothing at random: the weights are those of one fit after another.
    with ThreadPoolExecutor(max_workers=max(1, min(classes, _cores()))) as pool:
        fits = list(pool.map(fit_label, range(classes)))
    return np.stack([w for w, _ in fits], axis=1), np.array([b for _, b in fits], np.float32)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity
        return os.cpu_count() or 1


def _nbsvm(matrix, labels: np.ndarray, c: float, ratio_rows, zero_padding: bool,
           class_weight: str | None) -> tuple[np.ndarray, float]:
    """One NB-weighted logistic regression of 0/1 labels: (one weight per column, bias)."""
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression

    ratio_rows = slice(None) if ratio_rows is None else ratio_rows
    ratio = nb_ratio(matrix[ratio_rows], labels[ratio_rows])
    regression = LogisticRegression(C=c, solver="liblinear", max_iter=5000, class_weight=class_weight)
    regression.fit(matrix @ sp.diags(ratio), labels)
    weights = (regression.coef_.ravel() * ratio).astype(np.float32)
    if zero_padding:
        weights[0] = 0.0  # padding
    return weights, float(regression.intercept_[0])


def ngram_logits(matrix, weights: np.ndarray, bias: float | np.ndarray) -> np.ndarray:
    """(n,) logits of a one-weight table, (n, N) of an N-label one."""
    return (matrix @ weights + bias).astype(np.float32)


def refit_ngram_weights(matrices, labels, review_rows, c: float, classes: int = 2,
                        class_weight: str | None = None) -> tuple[np.ndarray, float | np.ndarray]:
    """``fit_ngram_weights`` on several row sets at once: the kept branch sees the fitting and the validation rows."""
    import scipy.sparse as sp

    return fit_ngram_weights(sp.vstack(list(matrices)).tocsr(), np.concatenate(list(labels)), c,
                             ratio_rows=np.concatenate(list(review_rows)), classes=classes,
                             class_weight=class_weight)


def learn_dictionary(ids: np.ndarray, labels: np.ndarray, review_rows, vocab_size: int, slots: int,
                     c: float, classes: int = 2, class_weight: str | None = None) -> NgramDictionary:
    """The dictionary of a branch: the bigram and trigram codes that earn a slot, and where each lives.

    Every code of the rows is a feature of one exact NB-weighted regression
    (no hashing, so no collisions); the ``DICTIONARY_LOAD * slots`` codes with
    the largest absolute weights (for N labels: the largest over the labels)
    are kept and placed by ``place_keys``.
    """
    started = time.time()
    codes, weights = exact_ngram_weights(ids, labels, review_rows, vocab_size, c, classes, class_weight)
    wanted = int(DICTIONARY_LOAD * slots)
    order = np.argsort(-weight_strength(weights), kind="stable")[:wanted]
    dictionary, placed = place_keys(codes[order], slots)
    log.info("n-gram dictionary: %d of %d bigram/trigram codes placed in %d slots (%.0f s)",
             placed, len(codes), slots, time.time() - started)
    return dictionary


def weight_strength(weights: np.ndarray) -> np.ndarray:
    """How much each code weighs in the branch: |weight|, or for N labels the largest |weight| over them."""
    weights = np.abs(weights)
    return weights if weights.ndim == 1 else weights.max(axis=1)


def exact_ngram_weights(ids: np.ndarray, labels: np.ndarray, review_rows, vocab_size: int, c: float,
                        classes: int = 2, class_weight: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(every bigram/trigram code seen, its weight(s)) from one NB-weighted regression with the unigrams.

    The weights are (codes,) for two classes, (codes, classes) for more.
    """
    def codes(chunk):
        chunk = np.asarray(chunk, np.int64)
        keys, valid = ngram_keys(chunk, vocab_size)
        real = chunk != PAD_ID
        r1, c1 = np.nonzero(real)
        r2, c2 = np.nonzero(valid)
        # Unigram i is code -vocab_size + i: below every bigram/trigram code, one sort keeps them apart.
        return (np.concatenate([r1, r2]), np.concatenate([chunk[r1, c1] - vocab_size, keys[r2, c2]]),
                real.sum(axis=1) + valid.sum(axis=1))

    rows, found, values = _scaled_occurrences(ids, codes)
    known, columns = np.unique(found, return_inverse=True)
    matrix = _csr(values, rows, columns, (len(ids), len(known)))
    # Column 0 is a real unigram here, not padding: it keeps its weight.
    weights, _ = fit_ngram_weights(matrix, labels, c, ratio_rows=review_rows, zero_padding=False, classes=classes,
                                   class_weight=class_weight)
    longer = known >= 0
    return known[longer], weights[longer]


def place_keys(keys: np.ndarray, slots: int) -> tuple[NgramDictionary, int]:
    """Hash-and-displace: one displacement per group so that the keys, best first, get slots of their own.

    Groups are placed largest first. A group whose keys cannot all find free
    slots within MAX_DISPLACEMENT loses its last (least weighty) key and tries
    again; so does a group where two keys share a base slot. Returns the
    dictionary and how many keys it holds.
    """
    keys = np.asarray(keys, np.int64)
    groups = dictionary_groups(slots)
    group_of, base = keys % groups, keys % slots
    occupied = np.zeros(slots, bool)
    fingerprints = np.full(slots, EMPTY_FINGERPRINT, np.int64)
    displacements = np.zeros(groups, np.int64)
    # Members of each group in priority order (keys come best first).
    order = np.argsort(group_of, kind="stable")
    bounds = np.searchsorted(group_of[order], np.arange(groups + 1))
    members = [order[bounds[g]: bounds[g + 1]] for g in range(groups)]
    placed = 0
    tries = np.arange(_DISPLACEMENT_BATCH)
    for g in sorted(range(groups), key=lambda g: -len(members[g])):
        kept = members[g]
        while len(kept):
            _, first = np.unique(base[kept], return_index=True)
            if len(first) < len(kept):  # two keys, one base slot: no displacement separates them
                kept = kept[np.sort(first)]
                continue
            found = None
            for start in range(0, MAX_DISPLACEMENT, _DISPLACEMENT_BATCH):
                d = tries[: MAX_DISPLACEMENT - start] + start
                taken = occupied[(base[kept][None, :] + d[:, None]) % slots].any(axis=1)
                if not taken.all():
                    found = int(d[np.argmin(taken)])
                    break
            if found is not None:
                break
            kept = kept[:-1]
        if not len(kept):
            continue
        slot = (base[kept] + found) % slots
        occupied[slot] = True
        fingerprints[slot] = keys[kept] % FINGERPRINT_MODULUS
        displacements[g] = found
        placed += len(kept)
    return NgramDictionary(displacements, fingerprints), placed

