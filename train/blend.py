"""Stage 3 of training: the n-gram branch's and the cell's logits, weighed by a logistic regression.

The weights are fitted on the validation rows (with the branch fitted
without them) and then folded into the saved model's weights, so the
exported graph adds the two logits and needs no blend of its own.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .ngrams import NgramBranch


@dataclass(frozen=True)
class Blend:
    """logit = ngram_scale x the branch's logit + cell_scale x the cell's logit + bias; written into metrics.json."""

    ngram_scale: float
    cell_scale: float
    bias: float
    rows: int  # the validation rows it was fitted on

    def logit(self, ngram_logits: np.ndarray, cell_logits: np.ndarray) -> np.ndarray:
        return self.ngram_scale * ngram_logits + self.cell_scale * cell_logits + self.bias

    def fold_into(self, model, branch: NgramBranch) -> None:
        """Scale the saved model's cell logit and n-gram table in place, the bias folded into the cell's Dense."""
        from .keras_model import CELL_LOGIT_LAYER, NGRAM_LAYER

        dense = model.get_layer(CELL_LOGIT_LAYER)
        kernel, bias = dense.get_weights()
        dense.set_weights([kernel * self.cell_scale,
                           bias * self.cell_scale + self.ngram_scale * branch.bias + self.bias])
        tables = [branch.weights * self.ngram_scale]
        if branch.dictionary is not None:
            tables += [branch.dictionary.displacements, branch.dictionary.fingerprints]
        model.get_layer(NGRAM_LAYER).set_weights([t.astype(np.float32) for t in tables])

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def fit_blend(ngram_logits: np.ndarray, cell_logits: np.ndarray, labels: np.ndarray) -> Blend:
    """Weights of the two logits and a bias, by a barely regularised logistic regression on validation rows."""
    from sklearn.linear_model import LogisticRegression

    features = np.stack([ngram_logits, cell_logits], axis=1)
    regression = LogisticRegression(C=100.0).fit(features, labels.astype(int))
    ngram_scale, cell_scale = (float(v) for v in regression.coef_.ravel())
    return Blend(ngram_scale=round(ngram_scale, 6), cell_scale=round(cell_scale, 6),
                 bias=round(float(regression.intercept_[0]), 6), rows=int(len(labels)))


def logits_of(positive: np.ndarray) -> np.ndarray:
    """The logits of a cell's P(positive) answers, clipped off 0 and 1: what the blend weighs."""
    p = np.clip(np.asarray(positive, np.float64).reshape(-1), 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))
