"""ModelConfig: the model's shape, written into config.json and into every exported file.

Training builds the Keras model from it, the exporters build each graph
from it, and the numpy backend rebuilds the forward pass from it, so one
frozen dataclass is the only place a setting lives.
"""
from __future__ import annotations

from dataclasses import dataclass

from sentilite.shared.config import check_fraction, check_int, config_to_dict, dataclass_from_dict
from sentilite.shared.errors import ConfigError

from .recurrence import MAX_DICTIONARY_SLOTS

CELLS = ("rnn", "lstm", "gru")
INPUTS = ("ids", "onehot")
NGRAM_LOOKUPS = ("hashed", "dictionary")
BINARY_LABELS = ("negative", "positive")
MIN_CLASSES, MAX_CLASSES = 2, 50
MAX_LABEL_CHARS = 100


@dataclass(frozen=True)
class ModelConfig:
    """logit = n-gram branch (optional) + Dense(cell(embedding(last ``window`` ids))).

    - ``ngram_buckets`` > 0 adds the wide branch: one weight per unigram id and
      per bucket, summed over the row and divided by the square root of the
      row's n-gram count (``recurrence.ngram_logit``). 0 = no branch.
    - ``ngram_lookup`` says what a bucket is. "hashed": every bigram, hashed
      into the buckets (collisions share a weight). "dictionary": the buckets
      are the slots of a learned dictionary of bigrams and trigrams
      (``recurrence.NgramDictionary``); n-grams not in it read nothing.
    - ``window``: the cell reads only the last ``window`` ids of a row (None =
      all of them); the n-gram branch always reads the whole row.
    - ``embedding_dropout`` and ``dropout`` act in training only.
    - ``labels``: the class names, in the order of the model's outputs. Two
      labels keep the single-logit form (one output, sigmoid: P(labels[1]));
      three or more get one logit per label and a softmax (``outputs``).
    """

    cell: str = "gru"
    # "ids": an Embedding layer; "onehot": ids one-hot encoded inside the model
    # (the notebook's first model), so memory does not grow with the data.
    input: str = "ids"
    embedding_dim: int = 32
    units: int = 32
    embedding_dropout: float = 0.0
    dropout: float = 0.0
    window: int | None = None
    ngram_buckets: int = 0
    ngram_lookup: str = "hashed"
    labels: tuple[str, ...] = BINARY_LABELS

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ConfigError(f"ModelConfig.cell must be one of {CELLS}, got {self.cell!r}")
        if self.input not in INPUTS:
            raise ConfigError(f"ModelConfig.input must be one of {INPUTS}, got {self.input!r}")
        for name in ("embedding_dim", "units"):
            check_int("ModelConfig", name, getattr(self, name), 1)
        for name in ("embedding_dropout", "dropout"):
            check_fraction("ModelConfig", name, getattr(self, name))
        if self.window is not None:
            check_int("ModelConfig", "window", self.window, 1)
        check_int("ModelConfig", "ngram_buckets", self.ngram_buckets, 0)
        if self.ngram_lookup not in NGRAM_LOOKUPS:
            raise ConfigError(f"ModelConfig.ngram_lookup must be one of {NGRAM_LOOKUPS}, got {self.ngram_lookup!r}")
        if self.ngram_lookup == "dictionary" and self.ngram_buckets > MAX_DICTIONARY_SLOTS:
            raise ConfigError(f"ModelConfig.ngram_buckets: a dictionary has at most {MAX_DICTIONARY_SLOTS} slots, "
                              f"got {self.ngram_buckets}")
        check_labels(self.labels)

    @property
    def classes(self) -> int:
        return len(self.labels)

    @property
    def outputs(self) -> int:
        """Logits the model computes: 1 for two labels (P(labels[1]) = sigmoid), else one per label (softmax)."""
        return 1 if len(self.labels) == 2 else len(self.labels)

    @property
    def ngram_dictionary(self) -> bool:
        """Whether the n-gram branch looks its bigrams and trigrams up in a learned dictionary."""
        return bool(self.ngram_buckets) and self.ngram_lookup == "dictionary"

    def steps(self, maxlen: int) -> int:
        """How many ids of a full row the cell reads."""
        return maxlen if self.window is None else min(self.window, maxlen)

    def to_dict(self) -> dict:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data, source: str = "model config") -> "ModelConfig":
        return dataclass_from_dict(cls, data, source)


def check_labels(labels) -> tuple[str, ...]:
    """MIN_CLASSES..MAX_CLASSES distinct, non-empty strings of at most MAX_LABEL_CHARS characters."""
    if (not isinstance(labels, tuple) or not MIN_CLASSES <= len(labels) <= MAX_CLASSES
            or not all(isinstance(x, str) and 0 < len(x) <= MAX_LABEL_CHARS for x in labels)
            or len(set(labels)) != len(labels)):
        shown = repr(labels)
        raise ConfigError(f"ModelConfig.labels must be {MIN_CLASSES} to {MAX_CLASSES} distinct non-empty strings of "
                          f"at most {MAX_LABEL_CHARS} characters, got {shown if len(shown) <= 120 else shown[:117] + '...'}")
    return labels
