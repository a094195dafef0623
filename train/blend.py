"""Stage 3 of training: the n-gram branch's and the cell's logits, weighed by a logistic regression.

The weights are fitted on the validation rows (with the branch fitted
without them) and then folded into the saved model's weights, so the
exported graph adds the two logits and needs no blend of its own.

Two labels: one logit each, blended by a logistic regression. Three or more:
one logit per label each; label k's blended logit is ngram_scale x the
branch's + cell_scale x the cell's + bias_k (two scales shared by the
labels, one bias per label), fitted by softmax cross-entropy.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .ngrams import NgramBranch

# Inverse regularisation of the blend's scales: barely regularised, as the two-label regression's C.
BLEND_C = 100.0
_PROBABILITY_FLOOR = 1e-7  # logits_of clips probabilities off 0 (and 1) by this much


@dataclass(frozen=True)
class Blend:
    """logit = ngram_scale x the branch's logit + cell_scale x the cell's logit + bias; written into metrics.json.

    ``bias`` is a float for two labels, a tuple of one bias per label for more.
    """

    ngram_scale: float
    cell_scale: float
    bias: float | tuple[float, ...]
    rows: int  # the validation rows it was fitted on

    def logit(self, ngram_logits: np.ndarray, cell_logits: np.ndarray) -> np.ndarray:
        bias = self.bias if isinstance(self.bias, float) else np.asarray(self.bias, np.float64)
        return self.ngram_scale * ngram_logits + self.cell_scale * cell_logits + bias

    def fold_into(self, model, branch: NgramBranch) -> None:
        """Scale the saved model's cell logit and n-gram table in place, the bias folded into the cell's Dense."""
        from .keras_model import CELL_LOGIT_LAYER, NGRAM_LAYER

        bias = self.bias if isinstance(self.bias, float) else np.asarray(self.bias, np.float64)
        dense = model.get_layer(CELL_LOGIT_LAYER)
        kernel, dense_bias = dense.get_weights()
        dense.set_weights([kernel * self.cell_scale,
                           (dense_bias * self.cell_scale + self.ngram_scale * branch.bias + bias).astype(np.float32)])
        tables = [branch.weights * self.ngram_scale]
        if branch.dictionary is not None:
            tables += [branch.dictionary.displacements, branch.dictionary.fingerprints]
        model.get_layer(NGRAM_LAYER).set_weights([t.astype(np.float32) for t in tables])

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def fit_blend(ngram_logits: np.ndarray, cell_logits: np.ndarray, labels: np.ndarray) -> Blend:
    """Weights of the two logits and a bias, by a barely regularised logistic regression on validation rows.

    Logits of shape (n,) are of two labels (``labels`` 0/1); (n, N) of N
    labels (``labels`` class indexes), blended per label (``fit_softmax_blend``).
    """
    if np.ndim(ngram_logits) == 2:
        return fit_softmax_blend(ngram_logits, cell_logits, labels)
    from sklearn.linear_model import LogisticRegression

    features = np.stack([ngram_logits, cell_logits], axis=1)
    regression = LogisticRegression(C=BLEND_C).fit(features, labels.astype(int))
    ngram_scale, cell_scale = (float(v) for v in regression.coef_.ravel())
    return Blend(ngram_scale=round(ngram_scale, 6), cell_scale=round(cell_scale, 6),
                 bias=round(float(regression.intercept_[0]), 6), rows=int(len(labels)))


def fit_softmax_blend(ngram_logits: np.ndarray, cell_logits: np.ndarray, labels: np.ndarray) -> Blend:
    """Two shared scales and a bias per label minimising BLEND_C x softmax cross-entropy + (scales**2) / 2.

    The penalty is scikit-learn's for its C, on the scales only; the biases
    are centred to sum to zero, which changes no probability.
    """
    from scipy.optimize import minimize
    from scipy.special import log_softmax

    ngram = np.asarray(ngram_logits, np.float64)
    cell = np.asarray(cell_logits, np.float64)
    labels = np.asarray(labels).astype(np.int64)
    rows, classes = ngram.shape
    truth = np.zeros((rows, classes))
    truth[np.arange(rows), labels] = 1.0

    def loss_and_gradient(params):
        a, b, bias = params[0], params[1], params[2:]
        log_p = log_softmax(a * ngram + b * cell + bias, axis=1)
        error = np.exp(log_p) - truth  # d loss / d logits, per row
        loss = -BLEND_C * np.sum(log_p[np.arange(rows), labels]) + 0.5 * (a * a + b * b)
        gradient = np.concatenate([[BLEND_C * np.sum(error * ngram) + a, BLEND_C * np.sum(error * cell) + b],
                                   BLEND_C * error.sum(axis=0)])
        return loss, gradient

    start = np.concatenate([[1.0, 1.0], np.zeros(classes)])
    found = minimize(loss_and_gradient, start, jac=True, method="L-BFGS-B",
                     options={"maxiter": 1000, "gtol": 1e-6})
    a, b, bias = found.x[0], found.x[1], found.x[2:] - found.x[2:].mean()
    return Blend(ngram_scale=round(float(a), 6), cell_scale=round(float(b), 6),
                 bias=tuple(round(float(v), 6) for v in bias), rows=int(rows))


def logits_of(positive: np.ndarray) -> np.ndarray:
    """What the blend weighs of a cell's answers, probabilities clipped off 0 and 1.

    Two labels, P(positive) (n,) or (n, 1): its logits (n,). N labels, the
    softmax (n, N): the log probabilities (n, N), which are the cell's logits
    less a constant per row, the same logits to a softmax.
    """
    positive = np.asarray(positive, np.float64)
    if positive.ndim == 2 and positive.shape[1] > 1:
        return np.log(np.clip(positive, _PROBABILITY_FLOOR, 1.0))
    p = np.clip(positive.reshape(-1), _PROBABILITY_FLOOR, 1 - _PROBABILITY_FLOOR)
    return np.log(p / (1 - p))
