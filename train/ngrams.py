"""Stage 1 of training: the n-gram branch, fitted as a logistic regression before the cell.

Features are the rows of the n-gram table a review reads
(``recurrence.ngram_rows``: unigram ids and hashed bigram buckets), counted
and divided by the square root of their number, exactly as the model sums
them. Each feature is scaled by its Naive-Bayes log-count ratio before the
regression (NBSVM, Wang & Manning 2012), and the fitted weight of a feature
is coefficient x ratio, so the model needs one number per table row.
"""
from __future__ import annotations

import numpy as np

from sentilite.runtime.recurrence import ngram_rows

_CHUNK = 2048  # rows hashed at a time: bounds the int64 temporaries


def ngram_matrix(ids: np.ndarray, vocab_size: int, buckets: int):
    """scipy CSR (n, vocab_size + buckets): count of each table row / sqrt(total count), padding left out."""
    import scipy.sparse as sp

    row_parts, col_parts, val_parts = [], [], []
    for start in range(0, len(ids), _CHUNK):
        rows, count = ngram_rows(ids[start: start + _CHUNK], vocab_size, buckets)
        r, c = np.nonzero(rows)
        row_parts.append(r + start)
        col_parts.append(rows[r, c])
        val_parts.append((1.0 / np.sqrt(np.maximum(count, 1)))[r].astype(np.float32))
    matrix = sp.csr_matrix((np.concatenate(val_parts), (np.concatenate(row_parts), np.concatenate(col_parts))),
                           shape=(len(ids), vocab_size + buckets), dtype=np.float32)
    matrix.sum_duplicates()
    return matrix


def nb_ratio(matrix, labels: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """log((p / |p|) / (q / |q|)) of binarised features, p and q smoothed by alpha (Wang & Manning 2012)."""
    present = matrix.copy()
    present.data[:] = 1.0
    p = alpha + np.asarray(present[labels == 1].sum(axis=0)).ravel()
    q = alpha + np.asarray(present[labels == 0].sum(axis=0)).ravel()
    return np.log((p / p.sum()) / (q / q.sum())).astype(np.float32)


def fit_ngram_weights(matrix, labels: np.ndarray, c: float, ratio_rows=None) -> tuple[np.ndarray, float]:
    """(one weight per table row, bias). NB ratios come from ``ratio_rows`` (whole reviews, not crops)."""
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression

    ratio_rows = slice(None) if ratio_rows is None else ratio_rows
    ratio = nb_ratio(matrix[ratio_rows], labels[ratio_rows])
    regression = LogisticRegression(C=c, solver="liblinear", max_iter=5000)
    regression.fit(matrix @ sp.diags(ratio), labels)
    weights = (regression.coef_.ravel() * ratio).astype(np.float32)
    weights[0] = 0.0  # padding
    return weights, float(regression.intercept_[0])


def ngram_logits(matrix, weights: np.ndarray, bias: float) -> np.ndarray:
    return (matrix @ weights + bias).astype(np.float32)


def refit_ngram_weights(matrices, labels, review_rows, c: float) -> tuple[np.ndarray, float]:
    """``fit_ngram_weights`` on several row sets at once: the kept branch sees the fitting and the validation rows."""
    import scipy.sparse as sp

    return fit_ngram_weights(sp.vstack(list(matrices)).tocsr(), np.concatenate(list(labels)), c,
                             ratio_rows=np.concatenate(list(review_rows)))
