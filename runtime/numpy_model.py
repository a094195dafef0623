"""The whole model in numpy, from a plain .npz of weights: for platforms with no inference engine."""
from __future__ import annotations

import numpy as np

from .architecture import ModelConfig
from .recurrence import (
    MAX_DICTIONARY_VOCAB,
    MAX_NGRAM_VOCAB,
    NgramDictionary,
    Recurrence,
    dictionary_groups,
    ngram_logit,
    sigmoid,
    softmax,
)

WEIGHT_NAMES = ("embedding", "kernel", "recurrent_kernel", "bias", "dense_kernel", "dense_bias", "ngram_weights",
                "ngram_displacements", "ngram_fingerprints")


def expected_shapes(config: ModelConfig, vocab_size: int) -> dict[str, tuple[int, ...]]:
    """The shape of every array a model of this config has; an .npz is checked against it before loading."""
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[config.cell] * config.units
    features = config.embedding_dim if config.input == "ids" else vocab_size
    shapes = {
        "kernel": (features, gates),
        "recurrent_kernel": (config.units, gates),
        "bias": (2, gates) if config.cell == "gru" else (gates,),
        "dense_kernel": (config.units, config.outputs),
        "dense_bias": (config.outputs,),
    }
    if config.input == "ids":
        shapes["embedding"] = (vocab_size, config.embedding_dim)
    if config.ngram_buckets:
        rows = vocab_size + config.ngram_buckets
        shapes["ngram_weights"] = (rows,) if config.outputs == 1 else (rows, config.outputs)
    if config.ngram_dictionary:
        shapes["ngram_displacements"] = (dictionary_groups(config.ngram_buckets),)
        shapes["ngram_fingerprints"] = (config.ngram_buckets,)
    return shapes


class NumpySentimentModel:
    """The model's answer for rows of ids, exactly as the Keras model computes it.

    Two labels: P(labels[1]), (n,); three or more: the softmax over the
    labels, (n, N) (``predict``).

    Rows may be shorter than ``maxlen``: a row of T ids is read as if it were
    left-padded to ``maxlen``. The n-gram branch ignores padding anyway; the
    cell starts from the state its left-out padding would have reached
    (``Recurrence.pad_states``), so a review costs its own length.
    """

    def __init__(self, config: ModelConfig, weights: dict[str, np.ndarray], maxlen: int, vocab_size: int):
        shapes = expected_shapes(config, vocab_size)
        missing = sorted(set(shapes) - set(weights))
        if missing:
            raise ValueError(f"missing weight arrays {missing}")
        for name, shape in shapes.items():
            if tuple(weights[name].shape) != shape:
                raise ValueError(f"weight {name!r} has shape {tuple(weights[name].shape)}, expected {shape}")
        if config.ngram_buckets and vocab_size > MAX_NGRAM_VOCAB:
            raise ValueError(f"an n-gram branch needs vocab_size <= {MAX_NGRAM_VOCAB}, got {vocab_size}")
        if config.ngram_dictionary and vocab_size > MAX_DICTIONARY_VOCAB:
            raise ValueError(f"an n-gram dictionary needs vocab_size <= {MAX_DICTIONARY_VOCAB}, got {vocab_size}")
        self.config, self.maxlen, self.vocab_size = config, int(maxlen), int(vocab_size)
        self.steps = config.steps(self.maxlen)
        self.cell = Recurrence(config.cell, weights["kernel"], weights["recurrent_kernel"], weights["bias"],
                               weights.get("embedding"))
        self.dense_kernel = np.asarray(weights["dense_kernel"], np.float32)
        self.dense_bias = np.asarray(weights["dense_bias"], np.float32)
        self.ngram_weights = None
        if config.ngram_buckets:
            self.ngram_weights = np.asarray(weights["ngram_weights"], np.float32).copy()
            self.ngram_weights[0] = 0.0  # padding reads row 0 (recurrence.ngram_rows)
        self.ngram_dictionary = NgramDictionary(weights["ngram_displacements"], weights["ngram_fingerprints"]) \
            if config.ngram_dictionary else None
        self._pad_states = self.cell.pad_states(self.steps)

    def initial_state(self, n: int, steps: int) -> tuple[np.ndarray, ...]:
        k = min(self.steps - steps, len(self._pad_states[0]) - 1)
        return tuple(np.repeat(s[k: k + 1], n, axis=0) for s in self._pad_states)

    def predict_positive(self, ids: np.ndarray) -> np.ndarray:
        """int ids (n, T), T <= maxlen -> P(labels[1]) as float32 (n,); for a model of two labels."""
        if self.config.outputs != 1:
            raise ValueError(f"a model of {self.config.classes} labels has no P(positive); use predict")
        return self.predict(ids)

    def predict(self, ids: np.ndarray) -> np.ndarray:
        """int ids (n, T), T <= maxlen -> float32 (n,) P(labels[1]) for two labels, else (n, N) probabilities."""
        ids = np.asarray(ids)
        n, width = ids.shape
        if width > self.maxlen:
            raise ValueError(f"rows of {width} ids are longer than the model's {self.maxlen}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"ids outside 0..{self.vocab_size - 1}")
        window = ids[:, max(0, width - self.steps):]
        state = self.cell.run(window, self.initial_state(n, window.shape[1]))
        logit = state[0] @ self.dense_kernel + self.dense_bias
        if self.config.outputs == 1:
            logit = logit.reshape(-1)
        if self.ngram_weights is not None:
            logit = logit + ngram_logit(ids, self.ngram_weights, self.vocab_size, self.config.ngram_buckets,
                                        self.ngram_dictionary)
        logit = logit.astype(np.float32)
        return sigmoid(logit) if self.config.outputs == 1 else softmax(logit).astype(np.float32)
