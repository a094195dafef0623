"""A pure-numpy Embedding + SimpleRNN/LSTM/GRU + Dense, from a plain .npz of weights.

For platforms with no inference engine, and as an independent reference in
tests. The embedding and the input projection are folded into one table at
load time (row ``i`` is ``embedding[i] @ kernel + bias``), so each time step
costs one gather and one small matmul.
"""
from __future__ import annotations

import numpy as np

CELL_GATES = {"rnn": 1, "lstm": 4, "gru": 3}
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
    """Keras-equivalent forward pass (Keras 3 defaults: sigmoid gates, GRU reset_after)."""

    def __init__(self, cell: str, weights: dict[str, np.ndarray]):
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

    def predict_positive(self, ids: np.ndarray) -> np.ndarray:
        """int ids (n, maxlen) -> P(positive) as float32 (n,)."""
        ids = np.asarray(ids)
        n, steps = ids.shape
        u = self.units
        inputs = self.table[ids]  # (n, steps, gates*u)
        h = np.zeros((n, u), dtype=np.float32)
        c = np.zeros((n, u), dtype=np.float32)
        rk = self.recurrent_kernel
        for t in range(steps):
            x = inputs[:, t]
            if self.cell == "rnn":
                h = np.tanh(x + h @ rk)
            elif self.cell == "lstm":
                z = x + h @ rk
                i = _sigmoid(z[:, :u])
                f = _sigmoid(z[:, u: 2 * u])
                g = np.tanh(z[:, 2 * u: 3 * u])
                o = _sigmoid(z[:, 3 * u:])
                c = f * c + i * g
                h = o * np.tanh(c)
            else:  # gru, reset_after=True
                inner = h @ rk + self.recurrent_bias
                z = _sigmoid(x[:, :u] + inner[:, :u])
                r = _sigmoid(x[:, u: 2 * u] + inner[:, u: 2 * u])
                hh = np.tanh(x[:, 2 * u:] + r * inner[:, 2 * u:])
                h = z * h + (1.0 - z) * hh
        logits = h @ self.dense_kernel + self.dense_bias
        return _sigmoid(logits.astype(np.float32)).reshape(-1)
