"""The model's arithmetic in numpy: recurrent cells, padding states, the n-gram branch.

This is the reference every exported graph is built from and checked
against: the numpy backend runs it on a device with no inference engine,
and both exporters take their padding-state tables (``pad_states``) and the
n-gram hashing rule (``ngram_rows``) from here, so the formats cannot drift.

Keras 3 defaults: sigmoid gates, GRU with reset_after. The embedding and the
input projection are folded into one table at load time (row ``i`` is
``embedding[i] @ kernel + bias``), so each step costs one gather and one
small matmul.
"""
from __future__ import annotations

import numpy as np

from .tokenizer import PAD_ID

CELL_GATES = {"rnn": 1, "lstm": 4, "gru": 3}
PAD_STATE_TOLERANCE = 1e-6
# Bigram codes are ``prev * vocab_size + cur`` in int32 in every graph: this keeps them under 2**31.
MAX_NGRAM_VOCAB = 46340


def sigmoid(x: np.ndarray) -> np.ndarray:
    # Split by sign so exp never overflows.
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


class Recurrence:
    """One SimpleRNN/LSTM/GRU over input rows, from Keras-layout weights."""

    def __init__(self, cell: str, kernel, recurrent_kernel, bias, embedding=None):
        if cell not in CELL_GATES:
            raise ValueError(f"cell must be one of {tuple(CELL_GATES)}, got {cell!r}")
        self.cell = cell
        kernel = np.asarray(kernel, np.float32)
        bias = np.asarray(bias, np.float32)
        self.recurrent_kernel = np.ascontiguousarray(recurrent_kernel, dtype=np.float32)
        self.units = self.recurrent_kernel.shape[0]
        gates = CELL_GATES[cell] * self.units
        if self.recurrent_kernel.shape != (self.units, gates) or kernel.shape[1:] != (gates,):
            raise ValueError(f"{cell} weights of shapes {kernel.shape}, {self.recurrent_kernel.shape} do not fit")
        input_bias = bias[0] if cell == "gru" else bias  # GRU reset_after: (2, 3u) input / recurrent
        # One-hot input has no embedding: its table is the kernel itself.
        projected = kernel if embedding is None else np.asarray(embedding, np.float32) @ kernel
        self.table = np.ascontiguousarray(projected + input_bias, dtype=np.float32)
        self.recurrent_bias = bias[1] if cell == "gru" else None

    @property
    def state_count(self) -> int:
        return 2 if self.cell == "lstm" else 1

    def zero_state(self, n: int) -> tuple[np.ndarray, ...]:
        return tuple(np.zeros((n, self.units), np.float32) for _ in range(self.state_count))

    def step(self, x: np.ndarray, state: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        """One time step: projected inputs (n, gates*u) and the state -> the next state."""
        u, rk = self.units, self.recurrent_kernel
        h = state[0]
        if self.cell == "rnn":
            return (np.tanh(x + h @ rk),)
        if self.cell == "lstm":
            z = x + h @ rk
            i = sigmoid(z[:, :u])
            f = sigmoid(z[:, u: 2 * u])
            g = np.tanh(z[:, 2 * u: 3 * u])
            o = sigmoid(z[:, 3 * u:])
            c = f * state[1] + i * g
            return (o * np.tanh(c), c)
        inner = h @ rk + self.recurrent_bias  # gru, reset_after=True
        z = sigmoid(x[:, :u] + inner[:, :u])
        r = sigmoid(x[:, u: 2 * u] + inner[:, u: 2 * u])
        hh = np.tanh(x[:, 2 * u:] + r * inner[:, 2 * u:])
        return (z * h + (1.0 - z) * hh,)

    def run(self, ids: np.ndarray, state: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        inputs = self.table[ids]  # (n, steps, gates*u)
        for t in range(ids.shape[1]):
            state = self.step(inputs[:, t], state)
        return state

    def pad_states(self, steps: int, tolerance: float = PAD_STATE_TOLERANCE) -> tuple[np.ndarray, ...]:
        """The state after k padding ids from the zero state, one row per k = 0..K.

        A row of T ids (of a model reading ``steps`` ids) starts from row
        ``min(steps - T, K)``. Feeding the same input again and again drives
        the state to a fixed point; rows stop at the first K after which no
        state moves more than ``tolerance`` from row K. Row 0 is the zero state.
        """
        state = self.zero_state(1)
        rows = [state]
        x = self.table[PAD_ID: PAD_ID + 1]
        for _ in range(steps):
            state = self.step(x, state)
            rows.append(state)
        stacked = [np.concatenate([r[i] for r in rows]) for i in range(self.state_count)]
        # moved[k] = max over j >= k of |state_j - state_k|, from running extremes of the rows after k.
        moved = np.zeros(steps + 1, np.float32)
        for s in stacked:
            high = np.maximum.accumulate(s[::-1])[::-1]
            low = np.minimum.accumulate(s[::-1])[::-1]
            moved = np.maximum(moved, np.maximum(high - s, s - low).max(axis=1))
        last = int(np.argmax(moved <= tolerance))  # moved[steps] is 0, so there is always one
        return tuple(np.ascontiguousarray(s[: last + 1]) for s in stacked)


def ngram_rows(ids: np.ndarray, vocab_size: int, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the n-gram weight table that a row of ids reads, and how many are real.

    Unigram ``i`` reads row ``i`` (row 0, padding, holds 0). The bigram
    (prev, cur) reads row ``vocab_size + (prev * vocab_size + cur) % buckets``
    when both ids are real, else row 0. Every graph computes exactly this in
    int32, so the hash needs no table of bigrams on the device.
    """
    ids = np.asarray(ids, np.int64)
    real = ids != PAD_ID
    prev, cur = ids[:, :-1], ids[:, 1:]
    both = real[:, :-1] & real[:, 1:]
    bigram = np.where(both, vocab_size + (prev * vocab_size + cur) % buckets, 0)
    count = real.sum(axis=1) + both.sum(axis=1)
    return np.concatenate([ids, bigram], axis=1), count


def ngram_logit(ids: np.ndarray, weights: np.ndarray, vocab_size: int, buckets: int) -> np.ndarray:
    """Sum of the weights of a row's unigrams and hashed bigrams over sqrt(their count): (n,)."""
    rows, count = ngram_rows(ids, vocab_size, buckets)
    total = weights[rows].sum(axis=1, dtype=np.float32)
    return (total / np.sqrt(np.maximum(count, 1))).astype(np.float32)
