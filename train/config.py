"""Training configuration: small frozen dataclasses, saved as config.json beside every model."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import codecs
import math

from sentilite.runtime.architecture import CELLS, INPUTS, ModelConfig
from sentilite.runtime.tokenizer import TokenizerConfig
from sentilite.shared.config import check_fraction, check_int, dataclass_from_dict
from sentilite.shared.errors import ConfigError

from .readers import FORMAT_ALIASES, FORMATS

PRESETS = ("seed", "default")
# The preset name of a config whose sizes were derived from the data (``sized_for_data``).
DATA_PRESET = "data"
VALIDATION_SPLITS = ("movies", "random")
CONFIG_FORMAT_VERSION = 1
# Training settings that earlier releases wrote and that no longer decide anything (the
# out-of-fold stacking they configured was dropped); a config.json carrying them still loads.
RETIRED_TRAINING_SETTINGS = frozenset({"ngram_folds"})

__all__ = ["CELLS", "INPUTS", "PRESETS", "ModelConfig", "TrainConfig", "DataConfig", "DataProfile", "DerivedSetting",
           "RunConfig", "preset_config", "sized_for_data"]


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
    # "balanced": each label weighs inversely to its share of the training rows, in the cell's loss and in
    # the n-gram regressions (scikit-learn's class_weight="balanced"); "none": every row weighs one.
    class_weight: str = "none"
    # Characters inside words in the n-gram branch (``train.ngrams``, folded into the unigram rows): "none";
    # "always"; "if-better": fitted with and without, kept when the validation accuracy rises.
    subword_ngrams: str = "none"

    CLASS_WEIGHTS = ("none", "balanced")  # the values of class_weight (a class constant, not a setting)
    SUBWORD_NGRAMS = ("none", "always", "if-better")  # the values of subword_ngrams

    def __post_init__(self):
        check_fraction("TrainConfig", "validation_fraction", self.validation_fraction, include_low=False)
        if self.class_weight not in self.CLASS_WEIGHTS:
            raise ConfigError(f"TrainConfig.class_weight must be one of {self.CLASS_WEIGHTS}, "
                              f"got {self.class_weight!r}")
        if self.subword_ngrams not in self.SUBWORD_NGRAMS:
            raise ConfigError(f"TrainConfig.subword_ngrams must be one of {self.SUBWORD_NGRAMS}, "
                              f"got {self.subword_ngrams!r}")
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

    def to_dict(self) -> dict:
        """config.json's training section; ``class_weight`` and ``subword_ngrams`` only when set, so a model
        without them saves as 0.3 did."""
        out = dataclasses.asdict(self)
        for name in ("class_weight", "subword_ngrams"):
            if out[name] == "none":
                del out[name]
        return out


@dataclass(frozen=True)
class DataProfile:
    """What the training texts are like, measured before sizes are chosen from them (``sized_for_data``).

    Measured on the rows a model may learn from (the training file less its
    test holdout), in words of the tokenizer rule the sizes are for.
    ``half_distinct_words`` is the vocabulary of the first half of those rows:
    its ratio to ``distinct_words`` is how fast the vocabulary still grows.
    ``cjk_share``: the share of letters that are Han, Hiragana or Katakana.
    """

    rows: int
    label_counts: tuple[int, ...]  # rows per label, in label order
    median_words: float
    p95_words: int
    max_words: int
    distinct_words: int
    half_distinct_words: int
    words_seen_twice: int
    distinct_ngrams: int  # bigrams and trigrams
    ngrams_seen_twice: int
    cjk_share: float = 0.0

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "label_counts": list(self.label_counts)}

    @classmethod
    def from_dict(cls, data, source: str = "data profile") -> "DataProfile":
        return dataclass_from_dict(cls, _with_tuples(data, ("label_counts",)), source)


@dataclass(frozen=True)
class DerivedSetting:
    """One size chosen from the data: the setting (``tokenizer.maxlen``), its value, and why (one line)."""

    setting: str
    value: int | float | str | None
    reason: str

    def line(self) -> str:
        return f"{self.setting} = {self.value}: {self.reason}"


@dataclass(frozen=True)
class DataConfig:
    """Where a model's texts came from: enough to read the same splits again (``train.data.load_training_data``).

    ``train`` None is IMDB (its folder or archive is found as ``sentilite
    train`` finds it, so a config.json does not tie a model to one
    machine's path). Otherwise the absolute paths of the user's files, and
    the reading options as given (a None format or column is found in each
    file as ``train.readers.read_labeled`` finds it). ``labels`` is the
    label order, the same for every split. Without a test file, the test
    split is a stratified ``test_fraction`` of the training file, drawn with
    ``split_seed`` (not the training seed, so every seed of a sweep is
    measured on the same texts). ``profile`` and ``derived``: the data's
    statistics and the sizes chosen from them, when they were.
    """

    train: str | None = None
    validation: str | None = None
    test: str | None = None
    data_format: str | None = None
    text_column: str | int | None = None
    label_column: str | int | None = None
    labels: tuple[str, ...] | None = None
    encoding: str = "utf-8"
    skip_bad_rows: bool = False
    test_fraction: float = 0.2
    split_seed: int = 1234
    profile: DataProfile | None = None
    derived: tuple[DerivedSetting, ...] = ()

    def __post_init__(self):
        for name in ("train", "validation", "test"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigError(f"DataConfig.{name} must be a path, got {value!r}")
        if self.train is None and (self.validation, self.test, self.data_format, self.text_column, self.label_column,
                                   self.labels, self.profile, self.derived) != (None,) * 7 + ((),):
            raise ConfigError("DataConfig: validation and test files and reading options need a training file "
                              "(train None is IMDB)")
        if self.data_format is not None and FORMAT_ALIASES.get(self.data_format, self.data_format) not in FORMATS:
            raise ConfigError(f"DataConfig.data_format must be one of {', '.join(FORMATS)}, got {self.data_format!r}")
        for name in ("text_column", "label_column"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int))
                                      or (isinstance(value, int) and value < 0)):
                raise ConfigError(f"DataConfig.{name} must be a column name or a 0-based index, got {value!r}")
        if self.labels is not None and (not isinstance(self.labels, tuple)
                                        or not all(isinstance(x, str) and x for x in self.labels)):
            raise ConfigError(f"DataConfig.labels must be a list of label names, got {self.labels!r}")
        try:
            codecs.lookup(self.encoding)
        except (LookupError, TypeError):
            raise ConfigError(f"DataConfig.encoding: unknown encoding {self.encoding!r}") from None
        if not isinstance(self.skip_bad_rows, bool):
            raise ConfigError("DataConfig.skip_bad_rows must be true or false")
        check_fraction("DataConfig", "test_fraction", self.test_fraction, include_low=False)
        check_int("DataConfig", "split_seed", self.split_seed, 0)

    @property
    def imdb(self) -> bool:
        return self.train is None

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["labels"] = None if self.labels is None else list(self.labels)
        data["profile"] = None if self.profile is None else self.profile.to_dict()
        data["derived"] = [dataclasses.asdict(setting) for setting in self.derived]
        return data

    @classmethod
    def from_dict(cls, data, source: str = "data") -> "DataConfig":
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: DataConfig must be a JSON object, got {type(data).__name__}")
        data = _with_tuples(data, ("labels",))
        if data.get("profile") is not None:
            data["profile"] = DataProfile.from_dict(data["profile"], f"{source}: profile")
        derived = data.get("derived", ())
        if not isinstance(derived, (list, tuple)):
            raise ConfigError(f"{source}: derived must be a list")
        data["derived"] = tuple(dataclass_from_dict(DerivedSetting, item, f"{source}: derived") for item in derived)
        return dataclass_from_dict(cls, data, source)


def _with_tuples(data, names) -> dict:
    if not isinstance(data, dict):
        return data  # dataclass_from_dict says what is wrong with it
    return {k: tuple(v) if k in names and isinstance(v, list) else v for k, v in data.items()}


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a trained model; written as config.json."""

    name: str
    preset: str
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def to_dict(self) -> dict:
        """config.json; an IMDB model's has no ``data`` (nor a tokenizer's default character rule), as 0.3 wrote it."""
        out = {"format_version": CONFIG_FORMAT_VERSION, "name": self.name, "preset": self.preset,
               "tokenizer": self.tokenizer.to_dict(), "model": self.model.to_dict(),
               "training": self.training.to_dict()}
        if self.data != DataConfig():
            out["data"] = self.data.to_dict()
        return out

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
                # 0.3 wrote no data section: its models were trained on IMDB
                data=DataConfig.from_dict(data["data"], f"{source}: data") if "data" in data else DataConfig(),
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


# What the sizes of a model trained on the user's data are fitted to (``sized_for_data``).
# An 8-bit file is ~N bytes per n-gram slot with N labels (one byte per label's weight; one for two labels),
# plus the slot's fingerprint byte and half a byte of displacements, and embedding_dim + N bytes per word.
# The rest (tokenizer vocabulary, cell, metadata) was 280 KB of the default gru's 679,560-byte TFLite file
# (10,000 words, 153,001 slots); FILE_OVERHEAD_BYTES keeps 50 KB to spare on top.
FILE_BUDGET_BYTES = 1 << 20
FILE_OVERHEAD_BYTES = 330_000
MAX_VOCAB_SIZE = 10_000  # the default preset's
MAX_MAXLEN = 1_000
MAX_NGRAM_SLOTS = 153_001
MIN_NGRAM_SLOTS = 1_024
CELL_WINDOW = 64
SHORT_TEXT_MEDIAN_WORDS = 30  # texts this short already are the short texts crops would make
CJK_SHARE_FOR_CHARACTER_WORDS = 0.3
TARGET_STEPS = 1_200  # gradient steps the default preset takes on IMDB (20,000 reviews + crops, batch 128, 4 epochs)
MAX_DERIVED_EPOCHS = 30


def ngram_slots_within_budget(vocab_size: int, embedding_dim: int, labels: int) -> int:
    """The n-gram slots an 8-bit file can hold within FILE_BUDGET_BYTES, for ``labels`` labels."""
    outputs = 1 if labels == 2 else labels
    free = FILE_BUDGET_BYTES - FILE_OVERHEAD_BYTES - vocab_size * (embedding_dim + outputs)
    return max(0, int(free / (outputs + 1.5)))


# Class weights "balanced" (``sized_for_data``) from this ratio of the largest class's rows to the smallest's.
IMBALANCE_FOR_CLASS_WEIGHTS = 1.5


def sized_for_data(profile: DataProfile, cell: str, input: str = "ids") -> tuple[RunConfig, tuple[DerivedSetting, ...]]:
    """The default preset with its sizes taken from the data, and each choice with its reason.

    The default preset is tuned to 25,000 long reviews; the rule keeps its
    cell and its ceilings and fits the rest to ``profile``:
    - the vocabulary: the words seen at least twice (a word seen once teaches
      nothing that carries to a new text), at most 10,000;
    - the row length: the 95th-percentile text, rounded up to 8, at most 1,000;
      the cell reads the last 64 ids, or the whole row when it is shorter;
    - the n-gram dictionary: a slot for each bigram and trigram seen at least
      twice (2% to spare), at most 153,001, and fewer as labels grow, so an
      8-bit file stays within 1 MiB for up to 5 labels
      (``ngram_slots_within_budget``);
    - crops (a text's last few words as an extra row): none when the median
      text is at most 30 words, as such texts are short already;
    - Han, Hiragana or Katakana in 30% or more of the letters: each such
      character is a word (tokenizer.character_words "cjk");
    - validation: a stratified random share (a user's texts have no movie ids);
    - class weights "balanced" when the largest class has at least
      IMBALANCE_FOR_CLASS_WEIGHTS times the rows of the smallest (on the
      airline tweets, 63% negative, it raised macro-F1 0.762 -> 0.770 and
      accuracy 0.821 -> 0.825);
    - batch size 32 / 64 / 128 below 5,000 / 20,000 rows / above, and enough
      epochs for about the 1,200 steps the preset takes on IMDB (4 to 30,
      early stopping ends sooner; patience 2 past 4 epochs).

    Characters inside words (training.subword_ngrams) are not chosen: over
    three seeds they raised SST-5 and the airline macro-F1 but lowered SST-2,
    and the wider table they fold into cost the int8 TFLite file agreement
    (docs/model.md).
    """
    base = preset_config("default", cell, input)
    labels = len(profile.label_counts)
    chosen: list[DerivedSetting] = []

    def choose(setting: str, value, reason: str):
        chosen.append(DerivedSetting(setting, value, reason))
        return value

    character_words = "none"
    if profile.cjk_share >= CJK_SHARE_FOR_CHARACTER_WORDS:
        character_words = choose("tokenizer.character_words", "cjk",
                                 f"{profile.cjk_share:.0%} of the letters are Han, Hiragana or Katakana")
    vocab_size = choose("tokenizer.vocab_size", max(3, min(MAX_VOCAB_SIZE, profile.words_seen_twice + 2)),
                        f"{profile.words_seen_twice:,} words seen at least twice, plus <pad> and <oov>, "
                        f"at most {MAX_VOCAB_SIZE:,}")
    maxlen = choose("tokenizer.maxlen", max(8, min(MAX_MAXLEN, 8 * math.ceil(profile.p95_words / 8))),
                    f"95% of the texts have at most {profile.p95_words:,} words (median {profile.median_words:g}); "
                    f"at most {MAX_MAXLEN:,}")
    window = choose("model.window", CELL_WINDOW if maxlen > CELL_WINDOW else None,
                    f"the cell reads the last {CELL_WINDOW} ids" if maxlen > CELL_WINDOW
                    else f"the cell reads the whole row (maxlen {maxlen} <= {CELL_WINDOW})")
    budget = ngram_slots_within_budget(vocab_size, base.model.embedding_dim, labels)
    wanted = math.ceil(profile.ngrams_seen_twice / 0.98)
    slots = max(MIN_NGRAM_SLOTS, min(wanted, MAX_NGRAM_SLOTS, budget))
    limit = min(MAX_NGRAM_SLOTS, budget)
    choose("model.ngram_buckets", slots,
           f"{profile.ngrams_seen_twice:,} bigrams and trigrams seen at least twice, 2% to spare; at most "
           f"{limit:,} ({'the preset' if limit == MAX_NGRAM_SLOTS else f'1 MiB at 8 bits with {labels} labels'})"
           + (f", at least {MIN_NGRAM_SLOTS:,}" if slots == MIN_NGRAM_SLOTS else ""))
    short = profile.median_words <= SHORT_TEXT_MEDIAN_WORDS
    crops = choose("training.crops_per_review", 0 if short else base.training.crops_per_review,
                   f"the median text has {profile.median_words:g} words: "
                   + ("short already" if short else f"over {SHORT_TEXT_MEDIAN_WORDS}, each also trains as its "
                                                    f"last 3-{min(base.training.crop_max_words, maxlen)} words"))
    rows = profile.rows
    batch_size = choose("training.batch_size", 32 if rows < 5_000 else 64 if rows < 20_000 else 128,
                        f"{rows:,} rows")
    fit_rows = rows * (1 - base.training.validation_fraction) * (1 + crops)
    steps = max(1, math.ceil(fit_rows / batch_size))
    epochs = choose("training.max_epochs", max(base.training.max_epochs, min(MAX_DERIVED_EPOCHS,
                                                                           math.ceil(TARGET_STEPS / steps))),
                    f"{steps:,} steps an epoch, about {TARGET_STEPS:,} in all (early stopping ends sooner)")
    smallest, largest = min(profile.label_counts), max(profile.label_counts)
    imbalanced = largest >= IMBALANCE_FOR_CLASS_WEIGHTS * smallest
    class_weight = choose("training.class_weight", "balanced" if imbalanced else "none",
                          f"the largest class has {largest / max(smallest, 1):.1f}x the rows of the smallest"
                          + (f" (at least {IMBALANCE_FOR_CLASS_WEIGHTS:g}x)" if imbalanced
                             else f" (under {IMBALANCE_FOR_CLASS_WEIGHTS:g}x)"))
    patience = choose("training.patience", base.training.patience if epochs <= base.training.max_epochs else 2,
                      f"{epochs} epochs at most")
    tokenizer = dataclasses.replace(base.tokenizer, vocab_size=vocab_size, maxlen=maxlen)
    if character_words != "none":
        tokenizer = dataclasses.replace(tokenizer, character_words=character_words)
    training = dataclasses.replace(base.training, validation_split="random", batch_size=batch_size,
                                   max_epochs=epochs, patience=patience, class_weight=class_weight,
                                   crops_per_review=crops,
                                   crop_max_words=max(base.training.crop_min_words,
                                                      min(base.training.crop_max_words, maxlen)))
    model = dataclasses.replace(base.model, window=window, ngram_buckets=slots)
    config = dataclasses.replace(base, name=f"{cell}-{DATA_PRESET}" + ("-onehot" if input == "onehot" else ""),
                                 preset=DATA_PRESET, tokenizer=tokenizer, model=model, training=training)
    return config, tuple(chosen)
