"""The one tokenizer: training, export validation and devices all turn text into ids here.

Pure Python + numpy so it runs wherever the runtime runs. The rules are
versioned and saved with the vocabulary in ``tokenizer.json``; a model file
carries the same JSON, so a file copied alone to a device still tokenizes
exactly as it did in training.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

import numpy as np

from sentilite.shared.config import check_int, dataclass_from_dict
from sentilite.shared.errors import ConfigError, TokenizerFileError
from sentilite.shared.files import MAX_JSON_BYTES, atomic_write_text, parse_json, read_file_limited, sha256_bytes

FORMAT_VERSION = 1
PAD_TOKEN, PAD_ID = "<pad>", 0
OOV_TOKEN, OOV_ID = "<oov>", 1

_SIDES = ("pre", "post")
_UNICODE_FORMS = ("NFC", "NFKC", "NFD", "NFKD")

# <br />, <br/>, <BR> ... in any case and spacing; IMDB reviews are full of them.
HTML_BREAK = re.compile(r"<\s*br\s*/?\s*>", re.IGNORECASE)
# Typographic apostrophes become ASCII so "don’t" and "don't" are one word.
TYPOGRAPHIC_APOSTROPHES = ("\u2019", "\u2018", "\u02bc", "\uff07", "`")
_ASCII_APOSTROPHES = tuple(a for a in TYPOGRAPHIC_APOSTROPHES if a.isascii())
# A word is a run of letters/digits (any script), with inner apostrophes kept:
# "don't" stays one word, quotes around a word are dropped. Punctuation, symbols,
# emoji and control characters separate words. No nested quantifiers can
# backtrack, so matching is linear in the text length.
WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
# The same rule for ASCII text, without running the word regex over every word:
# every byte that is not a letter, digit or apostrophe becomes a space, then
# every apostrophe that does not sit between two letters/digits becomes a space
# too, and the text is split on spaces. The regex below stops only at
# apostrophes, which are rare and nearly all inside words.
_ASCII_KEEP = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'"
_ASCII_TO_SPACE = bytes(c if c in _ASCII_KEEP else 0x20 for c in range(256))
_ASCII_LONE_APOSTROPHE = re.compile(r"'(?:(?<![A-Za-z0-9]')|(?![A-Za-z0-9]))")

# The rules for characters that are words of their own (TokenizerConfig.character_words). "cjk": each
# character of the scripts written without spaces between words (Han, Hiragana, Katakana) is a word, so a
# Chinese or Japanese sentence is its characters, whose bigrams and trigrams the n-gram branch reads,
# with no segmenter to install.
CHARACTER_WORDS = ("none", "cjk")
# The characters "cjk" makes words, as inclusive code point ranges: the letters and digits ([^\W_]) of Python
# 3.11's Unicode 14.0 whose names start "CJK UNIFIED IDEOGRAPH", "CJK COMPATIBILITY IDEOGRAPH", "HIRAGANA",
# "KATAKANA", "HALFWIDTH KATAKANA", "HENTAIGANA" or "VERTICAL KANA REPEAT", and the ideographic iteration
# marks, closing mark and number zero (々〆〇〻, U+16FE3). Fixed here, as part of the rule, so a newer Unicode
# does not change the ids of a saved model; tests/test_tokenizer.py derives them again from unicodedata.
# Punctuation of these scripts (。、・「」) is not among them: it still separates words.
CJK_CHARACTER_RANGES = (
    (0x3005, 0x3007), (0x3031, 0x3035), (0x303B, 0x303B), (0x3041, 0x3096), (0x309D, 0x309F),
    (0x30A1, 0x30FA), (0x30FC, 0x30FF), (0x31F0, 0x31FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF),
    (0xF900, 0xFA6D), (0xFA70, 0xFAD9), (0xFF66, 0xFF9F), (0x16FE3, 0x16FE3), (0x1AFF0, 0x1AFF3),
    (0x1AFF5, 0x1AFFB), (0x1AFFD, 0x1AFFE), (0x1B000, 0x1B122), (0x1B150, 0x1B152), (0x1B164, 0x1B167),
    (0x20000, 0x2A6DF), (0x2A700, 0x2B738), (0x2B740, 0x2B81D), (0x2B820, 0x2CEA1), (0x2CEB0, 0x2EBE0),
    (0x2F800, 0x2FA1D), (0x30000, 0x3134A),
)
_CJK = "".join(f"\\U{start:08X}-\\U{end:08X}" for start, end in CJK_CHARACTER_RANGES)
# WORD, with each of those characters a word alone: it matches one of them, or a run of the other letters
# and digits with inner apostrophes ([^\W_X] is [^\W_] less X). An apostrophe between such a character and
# a letter separates them, as punctuation does.
CJK_WORD = re.compile(f"[{_CJK}]|[^\\W_{_CJK}]+(?:'[^\\W_{_CJK}]+)*")
# Text without a character from U+3005 on has none of them and takes WORD: a search for one range is a
# fraction of the time CJK_WORD takes on, say, French, where every letter is tested against every range.
_FROM_FIRST_CJK = re.compile(f"[\\U{CJK_CHARACTER_RANGES[0][0]:08X}-\\U0010FFFF]")


@dataclass(frozen=True)
class TokenizerConfig:
    """How text becomes a fixed-length row of ids.

    Defaults for padding and truncation follow Keras ``pad_sequences``: both at
    the front, so an RNN that reads its last state sees the end of the review.
    """

    vocab_size: int = 20000  # ids 0..vocab_size-1, <pad> and <oov> included
    maxlen: int = 200
    padding: str = "pre"
    truncating: str = "pre"
    lowercase: bool = True
    unicode_form: str = "NFKC"
    strip_html_breaks: bool = True
    # Longer texts are cut to this many characters (on the truncating side)
    # before tokenizing, so a multi-megabyte input costs bounded time. At
    # ~6 characters a word it keeps far more than ``maxlen`` words.
    max_chars: int = 100_000
    # Which characters are words of their own (CHARACTER_WORDS): "none", or "cjk" for Han, Hiragana and
    # Katakana. Letters of other scripts are read as "none" reads them under either rule.
    character_words: str = "none"

    def __post_init__(self) -> None:
        check_int("TokenizerConfig", "vocab_size", self.vocab_size, 3)
        check_int("TokenizerConfig", "maxlen", self.maxlen, 1)
        check_int("TokenizerConfig", "max_chars", self.max_chars, 1)
        for name in ("padding", "truncating"):
            value = getattr(self, name)
            if value not in _SIDES:
                raise ConfigError(f"TokenizerConfig.{name} must be one of {_SIDES}, got {value!r}")
        if self.unicode_form not in _UNICODE_FORMS:
            raise ConfigError(
                f"TokenizerConfig.unicode_form must be one of {_UNICODE_FORMS}, got {self.unicode_form!r}"
            )
        for name in ("lowercase", "strip_html_breaks"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"TokenizerConfig.{name} must be true or false")
        if self.character_words not in CHARACTER_WORDS:
            raise ConfigError(
                f"TokenizerConfig.character_words must be one of {CHARACTER_WORDS}, got {self.character_words!r}"
            )

    def to_dict(self) -> dict:
        """The settings as JSON; character_words only when it is not "none".

        A tokenizer.json of the default rule is then byte for byte what
        earlier releases wrote (model files embed its sha256), and still
        loads in them; one they cannot read as written ("cjk") names the
        setting in their refusal instead of giving other ids.
        """
        data = dataclasses.asdict(self)
        if self.character_words == "none":
            del data["character_words"]
        return data

    @classmethod
    def from_dict(cls, data: Mapping, source: str = "config") -> "TokenizerConfig":
        return dataclass_from_dict(cls, data, source)


def as_text(text, index: int | None = None) -> str:
    """Accept str, or bytes decoded as UTF-8 (invalid bytes become U+FFFD)."""
    if isinstance(text, str):
        return text
    if isinstance(text, (bytes, bytearray, memoryview)):
        return bytes(text).decode("utf-8", errors="replace")
    where = "" if index is None else f" at index {index}"
    raise TypeError(f"expected a text (str or UTF-8 bytes){where}, got {type(text).__name__}")


def normalize_text(text: str, config: TokenizerConfig) -> str:
    """Unicode-normalize, drop HTML line breaks, lower-case and unify apostrophes."""
    if len(text) > config.max_chars:
        text = text[-config.max_chars:] if config.truncating == "pre" else text[: config.max_chars]
    # ASCII text is the same in every Unicode form and holds no apostrophe to unify but "`", and a break
    # needs a "<": each step is skipped only where it would leave the text as it is.
    ascii_text = text.isascii()
    if not ascii_text:
        text = unicodedata.normalize(config.unicode_form, text)
    if config.strip_html_breaks and "<" in text:
        text = HTML_BREAK.sub(" ", text)
    if config.lowercase:
        text = text.lower()
    # str.replace: faster here than str.translate
    for apostrophe in _ASCII_APOSTROPHES if ascii_text else TYPOGRAPHIC_APOSTROPHES:
        if apostrophe in text:
            text = text.replace(apostrophe, "'")
    return text


def find_words(normalized: str, character_words: str = "none") -> list[str]:
    """``WORD.findall`` (``CJK_WORD.findall`` under "cjk"), with a fast path for ASCII text that gives the same words.

    ASCII text holds no character of the "cjk" rule, so both rules take the fast path for it.
    """
    if not normalized.isascii():
        if character_words == "cjk" and _FROM_FIRST_CJK.search(normalized):
            return CJK_WORD.findall(normalized)
        return WORD.findall(normalized)
    spaced = normalized.encode("ascii").translate(_ASCII_TO_SPACE).decode("ascii")
    if "'" in spaced:
        spaced = _ASCII_LONE_APOSTROPHE.sub(" ", spaced)
    return spaced.split()


def split_words(text: str, config: TokenizerConfig) -> list[str]:
    """The words of one text, after normalization; vocabulary building uses this too."""
    return find_words(normalize_text(text, config), config.character_words)


def pad_ids(
    sequences: Iterable[Sequence[int]],
    maxlen: int,
    padding: str = "pre",
    truncating: str = "pre",
    value: int = PAD_ID,
) -> np.ndarray:
    """Rows of ids -> an int32 array (n, maxlen), like Keras ``pad_sequences``."""
    if padding not in _SIDES or truncating not in _SIDES:
        raise ValueError(f"padding and truncating must be one of {_SIDES}")
    sequences = list(sequences)
    out = np.full((len(sequences), maxlen), value, dtype=np.int32)
    for row, seq in enumerate(sequences):
        seq = seq[-maxlen:] if truncating == "pre" else seq[:maxlen]
        if len(seq) == 0:
            continue
        if padding == "pre":
            out[row, maxlen - len(seq):] = seq
        else:
            out[row, : len(seq)] = seq
    return out


class Tokenizer:
    """Words -> ids with a fixed vocabulary; ids 0 and 1 are padding and out-of-vocabulary."""

    def __init__(self, config: TokenizerConfig, vocabulary: Sequence[str]):
        self.config = config
        self.vocabulary = list(vocabulary)  # index == id
        self._ids = {word: i for i, word in enumerate(self.vocabulary)}
        _validate_vocabulary(self.vocabulary, self._ids, config, source="Tokenizer")

    # -- encoding -------------------------------------------------------------
    def words(self, text) -> list[str]:
        return split_words(as_text(text), self.config)

    def encode(self, text) -> list[int]:
        """Ids of one text, not padded."""
        # dict.get(word, OOV_ID), in C; split_words straight away, one Python call fewer than self.words
        return list(map(self._ids.get, split_words(as_text(text), self.config), repeat(OOV_ID)))

    def encode_batch(self, texts: Iterable) -> np.ndarray:
        """Texts -> int32 array (n, maxlen), padded and truncated per the config."""
        if isinstance(texts, (str, bytes)):
            raise TypeError("encode_batch expects a list of texts, got a single text; wrap it in a list")
        cfg = self.config
        rows = []
        for index, text in enumerate(texts):
            rows.append(self.encode(as_text(text, index)))
        return pad_ids(rows, cfg.maxlen, cfg.padding, cfg.truncating)

    __call__ = encode_batch

    def __len__(self) -> int:
        return len(self.vocabulary)

    # -- (de)serialisation ----------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "type": "sentilite.word_tokenizer",
            "config": self.config.to_dict(),
            "special_tokens": {"padding": PAD_TOKEN, "out_of_vocabulary": OOV_TOKEN},
            "vocabulary": {word: i for i, word in enumerate(self.vocabulary)},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    def sha256(self) -> str:
        return sha256_bytes(self.to_json().encode("utf-8"))

    def save(self, path: str | os.PathLike) -> Path:
        return atomic_write_text(path, self.to_json())

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "tokenizer.json") -> "Tokenizer":
        return cls.from_dict(parse_json(text, source, TokenizerFileError), source)

    @classmethod
    def from_dict(cls, data, source: str = "tokenizer.json") -> "Tokenizer":
        if not isinstance(data, dict):
            raise TokenizerFileError(f"{source}: expected a JSON object at the top level")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise TokenizerFileError(
                f"{source}: unknown tokenizer format_version {version!r} (this sentilite reads {FORMAT_VERSION})"
            )
        try:
            config = TokenizerConfig.from_dict(data.get("config"), source=f"{source}: config")
        except ConfigError as exc:
            raise TokenizerFileError(str(exc)) from None
        vocab = data.get("vocabulary")
        if not isinstance(vocab, dict) or not vocab:
            raise TokenizerFileError(f"{source}: 'vocabulary' must be a non-empty object of token -> id")
        by_id: dict[int, str] = {}
        for word, idx in vocab.items():
            if isinstance(idx, bool) or not isinstance(idx, int):
                raise TokenizerFileError(f"{source}: id of token {word!r} is not an integer: {idx!r}")
            if idx in by_id:
                raise TokenizerFileError(f"{source}: duplicate id {idx} for tokens {by_id[idx]!r} and {word!r}")
            by_id[idx] = word
        missing = [i for i in range(len(by_id)) if i not in by_id]
        if missing:
            raise TokenizerFileError(
                f"{source}: ids must run 0..{len(by_id) - 1} without gaps; missing id(s) {missing[:5]}"
            )
        words = [by_id[i] for i in range(len(by_id))]
        try:
            return cls(config, words)
        except TokenizerFileError as exc:
            raise TokenizerFileError(str(exc).replace("Tokenizer:", f"{source}:", 1)) from None

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "Tokenizer":
        raw = read_file_limited(path, MAX_JSON_BYTES, TokenizerFileError, kind="tokenizer file")
        return cls.from_json(raw, source=str(path))


def _validate_vocabulary(words: list[str], ids: dict[str, int], config: TokenizerConfig, source: str) -> None:
    if len(words) < 2 or words[PAD_ID] != PAD_TOKEN or words[OOV_ID] != OOV_TOKEN:
        raise TokenizerFileError(
            f"{source}: the vocabulary must map {PAD_TOKEN!r} to {PAD_ID} and {OOV_TOKEN!r} to {OOV_ID}"
        )
    if len(ids) != len(words):
        dupes = sorted(w for w, n in Counter(words).items() if n > 1)[:5]
        raise TokenizerFileError(f"{source}: duplicate token(s) in vocabulary: {dupes}")
    if len(words) != config.vocab_size:
        raise TokenizerFileError(
            f"{source}: config.vocab_size is {config.vocab_size} but the vocabulary holds {len(words)} ids"
        )
