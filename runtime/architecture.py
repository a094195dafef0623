"""ModelConfig: the model's shape, written into config.json and into every exported file.

Training builds the Keras model from it, the exporters build each graph
from it, and the numpy backend rebuilds the forward pass from it, so one
frozen dataclass is the only place a setting lives.
"""
from __future__ import annotations

from dataclasses import dataclass

from sentilite.shared.config import check_fraction, check_int, config_to_dict, dataclass_from_dict
from sentilite.shared.errors import ConfigError

CELLS = ("rnn", "lstm", "gru")
INPUTS = ("ids", "onehot")


@dataclass(frozen=True)
class ModelConfig:
    """logit = n-gram branch (optional) + Dense(cell(embedding(last ``window`` ids))).

    - ``ngram_buckets`` > 0 adds the wide branch: one weight per unigram id and
      per hashed bigram bucket, summed over the row and divided by the square
      root of their count (``recurrence.ngram_logit``). 0 = no branch.
    - ``window``: the cell reads only the last ``window`` ids of a row (None =
      all of them); the n-gram branch always reads the whole row.
    - ``embedding_dropout`` and ``dropout`` act in training only.
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

    def steps(self, maxlen: int) -> int:
        """How many ids of a full row the cell reads."""
        return maxlen if self.window is None else min(self.window, maxlen)

    def to_dict(self) -> dict:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data, source: str = "model config") -> "ModelConfig":
        return dataclass_from_dict(cls, data, source)
