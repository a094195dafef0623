"""Vocabulary building: the runtime's own word splitting, counted over training reviews."""
from __future__ import annotations

from collections import Counter
from dataclasses import replace
from collections.abc import Iterable

from sentilite.runtime.tokenizer import OOV_TOKEN, PAD_TOKEN, Tokenizer, TokenizerConfig, split_words


def build_tokenizer(texts: Iterable[str], config: TokenizerConfig) -> Tokenizer:
    """Most frequent words first, ties broken alphabetically, so two builds are identical.

    If the texts hold fewer distinct words than ``config.vocab_size - 2``, the
    vocabulary (and the saved vocab_size) is that much smaller.
    """
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(split_words(text, config))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    words = [word for word, _ in ranked[: config.vocab_size - 2]]
    vocabulary = [PAD_TOKEN, OOV_TOKEN, *words]
    if len(vocabulary) != config.vocab_size:
        config = replace(config, vocab_size=len(vocabulary))
    return Tokenizer(config, vocabulary)
