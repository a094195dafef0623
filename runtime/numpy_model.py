"""A pure-numpy Embedding + SimpleRNN/LSTM/GRU + Dense, from a plain .npz of weights.

For platforms with no inference engine, and as an independent reference in
tests. The embedding and the input projection are folded into one table at
load time (row ``i`` is ``embedding[i] @ kernel + bias``), so each time step
costs one gather and one small matmul.
"""
from __future__ import annotations

import numpy as np

from .tokenizer import PAD_ID

CELL_GATES = {"rnn": 1, "lstm": 4, "gru": 3}
PAD_STATE_TOLERANCE = 1e-6
WEIGHT_NAMES = ("embedding", "kernel", "recurrent_kernel", "bias", "dense_kernel", "dense_bias")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # Split by sign so exp never overflows.
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


class NumpyRecurrentModel:
    """Keras-equivalent forward pass (Keras 3 defaults: sigmoid gates, GRU reset_after).

    Rows may be shorter than ``maxlen``: a row of T ids is read as if it were
    left-padded with ``maxlen - T`` padding ids, by starting from the state
    those padding steps would have reached (see ``pad_states``). IMDB reviews
    have a median of ~180 words against 500 steps, so most of the work of a
    fixed-length model is spent reading padding.
    """

    def __init__(self, cell: str, weights: dict[str, np.ndarray], maxlen: int | None = None):
        if cell not in CELL_GATES:
            raise ValueError(f"cell must be one of {tuple(CELL_GATES)}, got {cell!r}")
        self.cell = cell
        w = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        kernel, bias = w["kernel"], w["bias"]
        self.units = w["recurrent_kernel"].shape[0]
        input_bias = bias[0] if cell == "gru" else bias  # GRU reset_after: (2, 3u) input / recurrent
        embedding = w.get("embedding")
        # One-hot input has no embedding: its table is the kernel itself.
        projected = kernel if embedding is None else embedding @ kernel
        self.table = np.ascontiguousarray(projected + input_bias, dtype=np.float32)
        self.recurrent_kernel = np.ascontiguousarray(w["recurrent_kernel"])
        self.recurrent_bias = bias[1] if cell == "gru" else None
        self.dense_kernel = w["dense_kernel"].reshape(self.units, -1)
        self.dense_bias = w["dense_bias"].reshape(-1)
        self.vocab_size = self.table.shape[0]
        if maxlen is not None and (isinstance(maxlen, bool) or not isinstance(maxlen, int) or maxlen < 1):
            raise ValueError(f"maxlen must be a positive integer, got {maxlen!r}")
        self.maxlen = maxlen
        self._pad_states = None if maxlen is None else self.pad_states(maxlen)

    @property
    def state_count(self) -> int:
        return 2 if self.cell == "lstm" else 1

    def step(self, x: np.ndarray, state: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        """One time step: projected inputs (n, gates*u) and the state -> the next state."""
        u, rk = self.units, self.recurrent_kernel
        h = state[0]
        if self.cell == "rnn":
            return (np.tanh(x + h @ rk),)
        if self.cell == "lstm":
            z = x + h @ rk
            i = _sigmoid(z[:, :u])
            f = _sigmoid(z[:, u: 2 * u])
            g = np.tanh(z[:, 2 * u: 3 * u])
            o = _sigmoid(z[:, 3 * u:])
            c = f * state[1] + i * g
            return (o * np.tanh(c), c)
        inner = h @ rk + self.recurrent_bias  # gru, reset_after=True
        z = _sigmoid(x[:, :u] + inner[:, :u])
        r = _sigmoid(x[:, u: 2 * u] + inner[:, u: 2 * u])
        hh = np.tanh(x[:, 2 * u:] + r * inner[:, 2 * u:])
        return (z * h + (1.0 - z) * hh,)

    def pad_states(self, maxlen: int, tolerance: float = PAD_STATE_TOLERANCE) -> tuple[np.ndarray, ...]:
        """The state after k padding ids from the zero state, one row per k = 0..K.

        A row of T ids starts from row ``min(maxlen - T, K)``. Feeding the same
        input again and again drives the state to a fixed point; rows stop at
        the first K after which no state moves more than ``tolerance`` from
        row K (36 to 98 for the default models, instead of 500). Row 0 is the zero state.
        """
        state = tuple(np.zeros((1, self.units), np.float32) for _ in range(self.state_count))
        rows = [state]
        x = self.table[PAD_ID: PAD_ID + 1]
        for _ in range(maxlen):
            state = self.step(x, state)
            rows.append(state)
        stacked = [np.concatenate([r[i] for r in rows]) for i in range(self.state_count)]
        # moved[k] = max over j >= k of |state_j - state_k|, from running extremes of the rows after k.
        moved = np.zeros(maxlen + 1, np.float32)
        for s in stacked:
            high = np.maximum.accumulate(s[::-1])[::-1]
            low = np.minimum.accumulate(s[::-1])[::-1]
            moved = np.maximum(moved, np.maximum(high - s, s - low).max(axis=1))
        last = int(np.argmax(moved <= tolerance))  # moved[maxlen] is 0, so there is always one
        return tuple(np.ascontiguousarray(s[: last + 1]) for s in stacked)

    def initial_state(self, n: int, steps: int) -> tuple[np.ndarray, ...]:
        if self._pad_states is None:
            return tuple(np.zeros((n, self.units), np.float32) for _ in range(self.state_count))
        k = min(self.maxlen - steps, len(self._pad_states[0]) - 1)  # steps <= maxlen: checked by the caller
        return tuple(np.repeat(s[k: k + 1], n, axis=0) for s in self._pad_states)

    def predict_positive(self, ids: np.ndarray) -> np.ndarray:
        """int ids (n, T) -> P(positive) as float32 (n,); T <= maxlen when maxlen is known."""
        ids = np.asarray(ids)
        n, steps = ids.shape
        if self.maxlen is not None and steps > self.maxlen:
            raise ValueError(f"rows of {steps} ids are longer than the model's {self.maxlen}")
        inputs = self.table[ids]  # (n, steps, gates*u)
        state = self.initial_state(n, steps)
        for t in range(steps):
            state = self.step(inputs[:, t], state)
        logits = state[0] @ self.dense_kernel + self.dense_bias
        return _sigmoid(logits.astype(np.float32)).reshape(-1)
