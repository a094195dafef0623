"""Training configuration: small frozen dataclasses, saved as config.json beside every model."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from sentilite.runtime.architecture import CELLS, INPUTS, ModelConfig
from sentilite.runtime.tokenizer import TokenizerConfig
from sentilite.shared.config import check_fraction, check_int, dataclass_from_dict
from sentilite.shared.errors import ConfigError

PRESETS = ("seed", "default")
VALIDATION_SPLITS = ("movies", "random")
CONFIG_FORMAT_VERSION = 1
# Training settings that earlier releases wrote and that no longer decide anything (the
# out-of-fold stacking they configured was dropped); a config.json carrying them still loads.
RETIRED_TRAINING_SETTINGS = frozenset({"ngram_folds"})

__all__ = ["CELLS", "INPUTS", "PRESETS", "ModelConfig", "TrainConfig", "RunConfig", "preset_config"]


@dataclass(frozen=True)
class TrainConfig:
    """How a model is fitted.

    With an n-gram branch, fitting has three stages (``train.fit``): the
    branch is fitted first as a logistic regression (inverse regularisation
    ``ngram_c``) on Naive-Bayes-weighted counts, then frozen; the cell is
    trained on its own; a logistic regression on the validation reviews
    blends the two logits.
    """

    validation_fraction: float = 0.25
    # "movies": whole blocks of consecutive review ids (one movie's reviews are consecutive), so
    # validation reviews are mostly of movies training never saw; "random": the notebook's split.
    validation_split: str = "movies"
    batch_size: int = 32
    max_epochs: int = 100  # early stopping on validation loss ends sooner
    patience: int = 2
    learning_rate: float = 1e-3
    # Halve the learning rate after an epoch whose validation loss did not improve (None = constant).
    reduce_lr_factor: float | None = None
    seed: int = 1234
    # Use only this many training reviews (class-balanced); None = all 25,000.
    train_subset: int | None = None
    # Short texts in training: each fitting review also appears as its last k words, k drawn
    # log-uniformly from [crop_min_words, crop_max_words], this many times (0 = never).
    crops_per_review: int = 0
    crop_min_words: int = 3
    crop_max_words: int = 120
    ngram_c: float = 10.0

    def __post_init__(self):
        check_fraction("TrainConfig", "validation_fraction", self.validation_fraction, include_low=False)
        if self.validation_split not in VALIDATION_SPLITS:
            raise ConfigError(f"TrainConfig.validation_split must be one of {VALIDATION_SPLITS}, "
                              f"got {self.validation_split!r}")
        for name in ("batch_size", "max_epochs", "crop_min_words", "crop_max_words"):
            check_int("TrainConfig", name, getattr(self, name), 1)
        check_int("TrainConfig", "patience", self.patience, 0)
        check_int("TrainConfig", "crops_per_review", self.crops_per_review, 0)
        check_int("TrainConfig", "seed", self.seed, 0)
        if self.crop_min_words > self.crop_max_words:
            raise ConfigError("TrainConfig.crop_min_words must not exceed crop_max_words")
        for name in ("learning_rate", "ngram_c"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"TrainConfig.{name} must be > 0, got {value!r}")
        if self.reduce_lr_factor is not None:
            check_fraction("TrainConfig", "reduce_lr_factor", self.reduce_lr_factor, include_low=False)
        if self.train_subset is not None:
            check_int("TrainConfig", "train_subset", self.train_subset, 8)


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a trained model; written as config.json."""

    name: str
    preset: str
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return {"format_version": CONFIG_FORMAT_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data, source: str = "config.json") -> "RunConfig":
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a JSON object")
        data = dict(data)
        version = data.pop("format_version", None)
        if version != CONFIG_FORMAT_VERSION:
            raise ConfigError(f"{source}: unknown config format_version {version!r}")
        try:
            return cls(
                name=data["name"],
                preset=data["preset"],
                tokenizer=TokenizerConfig.from_dict(data["tokenizer"], f"{source}: tokenizer"),
                model=dataclass_from_dict(ModelConfig, data["model"], f"{source}: model"),
                training=dataclass_from_dict(TrainConfig, _without_retired(data["training"]), f"{source}: training"),
            )
        except KeyError as exc:
            raise ConfigError(f"{source}: missing key {exc}") from None

    def replace(self, **sections) -> "RunConfig":
        """A copy with some fields of sections changed: replace(training={"max_epochs": 1})."""
        changes = {}
        for section, values in sections.items():
            current = getattr(self, section)
            changes[section] = dataclasses.replace(current, **values) if isinstance(values, dict) else values
        return dataclasses.replace(self, **changes)


def _without_retired(training):
    if not isinstance(training, dict):
        return training  # dataclass_from_dict says what is wrong with it
    return {k: v for k, v in training.items() if k not in RETIRED_TRAINING_SETTINGS}


# The notebook's settings: 300 ids, length 100, Embedding 16, 8 units, a random quarter of
# the training reviews for validation (train_test_split), batch 32, patience 2; no n-grams.
_SEED = dict(
    tokenizer=TokenizerConfig(vocab_size=300, maxlen=100),
    model=dict(embedding_dim=16, units=8),
    training=TrainConfig(validation_fraction=0.25, validation_split="random", batch_size=32, patience=2),
)

# Chosen for accuracy on full reviews and on short texts within 1 MB at 8 bits (see the
# README's ablation): an n-gram branch over the whole review (10,000 words + a learned
# dictionary of ~150,000 bigrams and trigrams in 153,001 slots, one weight each) and a cell
# over the last 64 words, trained on reviews and on their last few words.
_DEFAULT = dict(
    tokenizer=TokenizerConfig(vocab_size=10000, maxlen=1000),
    model=dict(embedding_dim=16, units=32, embedding_dropout=0.5, dropout=0.5, window=64, ngram_buckets=153001,
                ngram_lookup="dictionary"),
    training=TrainConfig(validation_fraction=0.2, batch_size=128, patience=1, learning_rate=1e-3,
                         crops_per_review=1, max_epochs=4),
)

_PRESETS = {"seed": _SEED, "default": _DEFAULT}
# Per-cell adjustments of a preset, where one setting does not suit every cell.
_CELL_OVERRIDES: dict[tuple[str, str], dict] = {}


def preset_config(preset: str, cell: str, input: str = "ids") -> RunConfig:
    if preset not in _PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {PRESETS}")
    base = _PRESETS[preset]
    model = ModelConfig(cell=cell, input=input, **base["model"])
    config = RunConfig(
        name=f"{cell}-{preset}" + ("-onehot" if input == "onehot" else ""),
        preset=preset,
        tokenizer=base["tokenizer"],
        model=model,
        training=base["training"],
    )
    override = _CELL_OVERRIDES.get((preset, cell))
    return config.replace(**override) if override else config
