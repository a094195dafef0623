"""What MediaPipe's RegexTokenizer makes of a text: the delimiter pattern the file carries, its tokens, the row.

The clients tokenize the text themselves, from the pattern in the file's
metadata, and never run sentilite code; this module models what they do, so
the exporter can choose vocabulary lines and evaluate the file without them.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

# The runtime tokenizer's own rules: the word rule, its apostrophes and the HTML line break.
from sentilite.runtime.tokenizer import HTML_BREAK, TYPOGRAPHIC_APOSTROPHES, WORD

# The client keeps the first L tokens of a text (and pads to L); the graph then reads the last
# maxlen of them, as the sentilite tokenizer does. L costs the graph nothing but a longer count,
# so it is set far above any review: the longest of the 50,000 IMDB reviews has 2,473 words.
MIN_MOBILE_LENGTH = 8192

# Characters the sentilite tokenizer reads as an apostrophe: the ASCII one and those it turns into it.
_APOSTROPHES = "'" + "".join(TYPOGRAPHIC_APOSTROPHES)
# The clients' RegexTokenizer splits on this RE2 pattern (delimiters are searched for, tokens
# are what lies between them). It makes the sentilite word rule ``[^\W_]+(?:'[^\W_]+)*`` out of
# delimiters: an HTML line break (with any apostrophes before it), any character that is not a
# letter, digit or apostrophe, and apostrophes that are not alone between two word characters
# (two or more, before a delimiter, at the end, or at the start of what is left: ``^`` matches
# where the previous delimiter ended, RE2::FindAndConsume searches the rest of the text).
DELIMITER_PATTERN = (
    "(?:[{a}]*(?i:{br})|[^\\pL\\pN{a}]|[{a}][{a}]+|[{a}]+[^\\pL\\pN{a}]|^[{a}]+|[{a}]+$)+"
).format(a=_APOSTROPHES, br=HTML_BREAK.pattern)
# The same tokens in Python (re has no \pL): the sentilite word rule, with every apostrophe.
_CLIENT_WORD = re.compile(WORD.pattern.replace("'", "[" + _APOSTROPHES + "]"))


def mediapipe_regex_tokens(text: str) -> list[str]:
    """The tokens MediaPipe's RegexTokenizer makes of ``text`` with DELIMITER_PATTERN, as it makes them.

    A second tokenizer beside the runtime's, on purpose: it models the
    client's (delimiters, no lower-casing, no Unicode normalization), which
    the exporter cannot run. The tests hold it equal to the real client's
    tokens on the same texts, and its tokens to the sentilite words.
    """
    return _CLIENT_WORD.findall(HTML_BREAK.sub(" ", text))


def mobile_length(maxlen: int) -> int:
    """L of the client's int32 [1, L] row."""
    return max(MIN_MOBILE_LENGTH, maxlen)


def client_rows(texts: Sequence[str], vocabulary: dict[str, int], length: int) -> np.ndarray:
    """The int32 rows MediaPipe's RegexPreprocessorCalculator feeds the model (our vocabulary has no <START>)."""
    unknown, pad = vocabulary["<UNKNOWN>"], vocabulary["<PAD>"]
    rows = np.full((len(texts), length), pad, dtype=np.int32)
    for r, text in enumerate(texts):
        ids = [vocabulary.get(token, unknown) for token in mediapipe_regex_tokens(text)[:length]]
        rows[r, : len(ids)] = ids
    return rows
