"""A file's own checksum, carried in its metadata: damage to a single model file is caught before an engine reads it.

A package's manifest holds every file's sha256, but a file copied alone to a
device has no manifest. So ONNX and TFLite files carry ``sentilite.seal``:
the sha256 of the whole file as written with 64 zeros in the seal's place.
The runtime puts the zeros back, hashes, and compares before onnxruntime or
the TFLite interpreter parses anything (a flipped byte in an ONNX initializer
can make onnxruntime 1.32 call std::terminate at run time).
"""
from __future__ import annotations

import hashlib
import re

SEAL_KEY = "sentilite.seal"
SEAL_PLACEHOLDER = "0" * 64
_MARKER = SEAL_KEY.encode("ascii")
_HEX = re.compile(rb"[0-9a-f]{64}")
_MAX_GAP = 4  # bytes between the key and its value: '":"' in JSON, a tag and a length in protobuf


class _Unreadable(Exception):
    pass


def _locate(content: bytes) -> tuple[int, int] | None:
    """Where the seal's 64 hex digits are; None without a seal key; _Unreadable when the value is damaged."""
    at = content.find(_MARKER)
    if at < 0:
        return None
    start = at + len(_MARKER)
    found = _HEX.search(content, start, start + _MAX_GAP + 64)
    if found is None or found.start() - start > _MAX_GAP:
        raise _Unreadable()
    return found.start(), found.end()


def seal(content: bytes) -> bytes:
    """The file with the placeholder replaced by the sha256 of the file as it is (placeholder included).

    A file written without the placeholder in its metadata is returned as it is.
    """
    try:
        span = _locate(content)
    except _Unreadable:
        span = None
    if span is None or content[span[0]: span[1]] != SEAL_PLACEHOLDER.encode("ascii"):
        return content
    digest = hashlib.sha256(content).hexdigest().encode("ascii")
    return content[: span[0]] + digest + content[span[1]:]


def check_seal(content: bytes, source: str, error: type[Exception]) -> bool:
    """True when the file carries a seal and it matches; ``error`` when it does not; False for unsealed files."""
    try:
        span = _locate(content)
    except _Unreadable:
        raise error(f"{source}: the file is damaged: its {SEAL_KEY} value is not a sha256") from None
    if span is None:
        return False  # written before seals (sentilite 0.1), or by another tool
    recorded = content[span[0]: span[1]].decode("ascii")
    if recorded == SEAL_PLACEHOLDER:
        return False  # written with the key but never sealed (not by `sentilite export`)
    actual = hashlib.sha256(content[: span[0]] + SEAL_PLACEHOLDER.encode("ascii") + content[span[1]:]).hexdigest()
    if actual != recorded:
        raise error(f"{source}: the file is damaged: its content does not match the sha256 it was sealed with")
    return True
