"""The model's arithmetic in numpy: recurrent cells, padding states, the n-gram branch.

This is the reference every exported graph is checked against: the numpy
backend runs it on a device with no inference engine, and the exporters
take their padding-state tables (``pad_states``) and the n-gram constants
(``trigram_modulus``, ``FINGERPRINT_MODULUS``, ``NgramDictionary``'s
tables) from here; each writes the lookup rule (``ngram_keys``,
``ngram_rows``) in its own graph dialect and is tested against this one.

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
# The learned dictionary (``ngram_lookup="dictionary"``, see ``NgramDictionary``). Its slots hold
# fingerprints in 0..250 (empty slots 255, which no key has) and each group of about 4 keys shares
# one displacement below 2**15, so the files can store them as uint8 and int16.
FINGERPRINT_MODULUS = 251
EMPTY_FINGERPRINT = 255
KEYS_PER_GROUP = 4
MAX_DISPLACEMENT = 1 << 15
# Displacements and fingerprints also travel as float32 (Keras weights, .npz): exact below 2**24.
MAX_DICTIONARY_SLOTS = 1 << 24
# Trigram codes must leave room under 2**31 for a useful trigram modulus (``trigram_modulus``).
MAX_DICTIONARY_VOCAB = 40000


def sigmoid(x: np.ndarray) -> np.ndarray:
    # Split by sign so exp never overflows.
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


def softmax(x: np.ndarray) -> np.ndarray:
    """Row-wise softmax of logits (n, N), shifted by each row's maximum so exp never overflows."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


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


class NgramDictionary:
    """The lookup tables of a learned n-gram dictionary: where each bigram and trigram key lives.

    A hash-and-displace perfect hash (Pagh 1999): key ``k`` falls in group
    ``k % groups`` and lands on slot ``(k % slots + displacements[group]) % slots``;
    training picks one displacement per group so that no two kept keys share a
    slot. Any other key lands on some slot too, and reads it only if its
    fingerprint ``k % 251`` matches the one stored there (1 false hit in 251).
    The arrays are checked here, since they may come from a hostile file.
    """

    def __init__(self, displacements, fingerprints):
        displacements, fingerprints = np.asarray(displacements), np.asarray(fingerprints)
        slots = fingerprints.size
        if fingerprints.ndim != 1 or not 0 < slots <= MAX_DICTIONARY_SLOTS:
            raise ValueError(f"n-gram fingerprints must be one row of 1..{MAX_DICTIONARY_SLOTS} slots, "
                             f"got shape {fingerprints.shape}")
        if displacements.shape != (dictionary_groups(slots),):
            raise ValueError(f"n-gram displacements have shape {displacements.shape}; {slots} slots "
                             f"take ({dictionary_groups(slots)},)")
        self.displacements = _exact_ints(displacements, 0, MAX_DISPLACEMENT - 1, "n-gram displacements")
        self.fingerprints = _exact_ints(fingerprints, 0, EMPTY_FINGERPRINT, "n-gram fingerprints")
        self.slots, self.groups = int(slots), int(displacements.size)

    def slot(self, keys: np.ndarray) -> np.ndarray:
        keys = np.asarray(keys, np.int64)
        return (keys % self.slots + self.displacements[keys % self.groups]) % self.slots

    def find(self, keys: np.ndarray) -> np.ndarray:
        """Each key's slot if its fingerprint matches there, else -1."""
        slot = self.slot(keys)
        return np.where(self.fingerprints[slot] == np.asarray(keys, np.int64) % FINGERPRINT_MODULUS, slot, -1)


def _exact_ints(values: np.ndarray, low: int, high: int, what: str) -> np.ndarray:
    if values.size and not (np.all(np.isfinite(values)) and np.all(values == np.round(values))
                            and values.min() >= low and values.max() <= high):
        raise ValueError(f"{what} must be whole numbers in {low}..{high}")
    return values.astype(np.int64)


def dictionary_groups(slots: int) -> int:
    """Displacement groups of a dictionary: about slots / 4, coprime with the slots and the fingerprint modulus.

    Coprime, so that a key's group says nothing about its slot or fingerprint.
    """
    groups = max(1, -(-int(slots) // KEYS_PER_GROUP))
    while np.gcd(groups, slots) != 1 or np.gcd(groups, FINGERPRINT_MODULUS) != 1:
        groups += 1
    return groups


def dictionary_table_bytes(slots: int) -> int:
    """Bytes of a dictionary's fingerprints (uint8) and displacements (int16), as every file stores them."""
    return int(slots) + 2 * dictionary_groups(slots)


def trigram_modulus(vocab_size: int) -> int:
    """P with vocab_size**2 + P * vocab_size <= 2**31 - 1: trigram codes (``ngram_keys``) fit int32."""
    return (2 ** 31 - 1 - vocab_size * vocab_size) // vocab_size


def ngram_keys(ids: np.ndarray, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """int32-safe codes of a row's bigrams then trigrams, and whether each is real (no padding id).

    Bigram (a, b): ``a * V + b`` (< V**2). Trigram (a, b, c):
    ``V**2 + ((a * V + b) % P) * V + c`` with P = ``trigram_modulus(V)``, so
    every product and sum a graph computes stays under 2**31. Two trigrams
    share a code only when their first two ids agree modulo P (rare: P is
    about 200,000 for V = 10,000).
    """
    ids = np.asarray(ids, np.int64)
    real = ids != PAD_ID
    pair = ids[:, :-1] * vocab_size + ids[:, 1:]
    both = real[:, :-1] & real[:, 1:]
    triple = vocab_size * vocab_size + (pair[:, :-1] % trigram_modulus(vocab_size)) * vocab_size + ids[:, 2:]
    three = both[:, :-1] & real[:, 2:]
    return np.concatenate([pair, triple], axis=1), np.concatenate([both, three], axis=1)


def ngram_rows(ids: np.ndarray, vocab_size: int, buckets: int,
               dictionary: NgramDictionary | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the n-gram weight table that a row of ids reads, and how many n-grams the row has.

    Unigram ``i`` reads row ``i`` (row 0, padding, holds 0). Hashed (no
    dictionary): the bigram (prev, cur) reads row
    ``vocab_size + (prev * vocab_size + cur) % buckets`` when both ids are
    real, else row 0. With a dictionary: each real bigram and trigram key
    (``ngram_keys``) reads row ``vocab_size + slot`` when the dictionary
    finds it, else row 0, and the count is every real unigram, bigram and
    trigram, found or not. Every graph computes exactly this in int32.
    """
    ids = np.asarray(ids, np.int64)
    real = ids != PAD_ID
    if dictionary is None:
        prev, cur = ids[:, :-1], ids[:, 1:]
        both = real[:, :-1] & real[:, 1:]
        longer = np.where(both, vocab_size + (prev * vocab_size + cur) % buckets, 0)
        count = real.sum(axis=1) + both.sum(axis=1)
    else:
        keys, valid = ngram_keys(ids, vocab_size)
        slot = dictionary.find(keys)
        longer = np.where(valid & (slot >= 0), vocab_size + slot, 0)
        count = real.sum(axis=1) + valid.sum(axis=1)
    return np.concatenate([ids, longer], axis=1), count


def ngram_logit(ids: np.ndarray, weights: np.ndarray, vocab_size: int, buckets: int,
                dictionary: NgramDictionary | None = None) -> np.ndarray:
    """Sum of the weights of the table rows a row reads over sqrt(its n-gram count).

    A table of one weight per row (rows,) gives (n,); one of N weights per
    row (rows, N), one per label, gives (n, N).
    """
    rows, count = ngram_rows(ids, vocab_size, buckets, dictionary)
    total = weights[rows].sum(axis=1, dtype=np.float32)
    scale = np.sqrt(np.maximum(count, 1))
    return (total / (scale if weights.ndim == 1 else scale[:, None])).astype(np.float32)
