"""vocab.txt: the ``token id`` lines the clients look tokens up in, chosen to fit the file's size limit."""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sentilite.runtime.tokenizer import OOV_ID, PAD_ID, Tokenizer, normalize_text

from ..errors import ConversionError
from .regex_tokenizer import mediapipe_regex_tokens


@dataclass(frozen=True)
class MobileVocabulary:
    """The ``token id`` lines of vocab.txt and how much of the training text they reach.

    ``kept_ids``: ids 0..kept_ids-1 have weight rows in the file (the sentilite
    vocabulary is ordered by frequency, so the left-out ids are its rarest words).
    ``coverage``: share of the training reviews' in-vocabulary words that the
    client maps to the id the sentilite tokenizer gives them.
    """

    lines: tuple[tuple[str, int], ...]
    kept_ids: int
    vocab_size: int
    coverage: float

    def file_bytes(self) -> bytes:
        return "".join(f"{token} {i}\n" for token, i in self.lines).encode("utf-8")

    def to_dict(self) -> dict:
        return {"lines": len(self.lines), "kept_ids": self.kept_ids, "of_ids": self.vocab_size,
                "training_token_coverage": round(self.coverage, 6)}


SPECIAL_LINES = (("<PAD>", PAD_ID), ("<UNKNOWN>", OOV_ID))


def _line_bytes(token: str, i: int) -> int:
    return len(token.encode("utf-8")) + len(str(i)) + 2


def build_vocabulary(tokenizer: Tokenizer, training_texts: Sequence[str], budget: int,
                     row_bytes: int) -> MobileVocabulary:
    """The vocabulary lines and kept ids that reach the most training words within ``budget`` bytes.

    Candidates are every surface form a training review shows for a
    vocabulary word (e.g. "The", "THE", "don’t"), plus its lower-case,
    Capitalized and UPPER forms. Each kept id costs ``row_bytes`` of weights
    and each line its bytes. For each number of kept ids on a grid, lines are
    taken by how often their form occurs, while they fit; the number that
    reaches the most training words wins.
    """
    ids = tokenizer._ids  # word -> id, the tokenizer's own table
    config = tokenizer.config
    vocab_size = len(tokenizer.vocabulary)
    counts: Counter = Counter()
    for text in training_texts:
        counts.update(mediapipe_regex_tokens(text))
    forms: dict[str, tuple[int, int]] = {}  # surface form -> (count, id)
    for form, count in counts.items():
        i = ids.get(normalize_text(form, config))
        if i is not None and i > OOV_ID:
            forms[form] = (count, i)
    for i in range(OOV_ID + 1, vocab_size):
        word = tokenizer.vocabulary[i]
        for form in (word, word.capitalize(), word.upper()):
            forms.setdefault(form, (0, i))
    ranked = sorted(((count, i, form, _line_bytes(form, i)) for form, (count, i) in forms.items()),
                    key=lambda c: (-c[0], c[1], c[2]))
    total = sum(c[0] for c in ranked) or 1
    special = sum(_line_bytes(t, i) for t, i in SPECIAL_LINES)
    best = None
    for kept_ids in sorted({vocab_size} | set(range(OOV_ID + 1, vocab_size, max(1, vocab_size // 100)))):
        room = budget - special - kept_ids * row_bytes
        if room < 0:
            continue
        chosen, reached = [], 0
        for count, i, form, cost in ranked:
            if i < kept_ids and cost <= room:
                room -= cost
                reached += count
                chosen.append((form, i))
        if best is None or reached > best[0]:
            best = (reached, kept_ids, chosen)
    if best is None:
        raise ConversionError(f"no room for a vocabulary: {budget:,} bytes left for {row_bytes}-byte weight rows")
    reached, kept_ids, chosen = best
    lines = SPECIAL_LINES + tuple(sorted(chosen, key=lambda line: (line[1], line[0])))
    return MobileVocabulary(lines, kept_ids, vocab_size, reached / total)

