"""Argument types the commands share, so a bad value is refused by argparse with one line."""
from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """A count of at least 1 (a batch size, a number of workers or rows): 0 would make engines spin or abort."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
