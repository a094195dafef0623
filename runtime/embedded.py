"""Reading the metadata a model file carries (tokenizer, labels, cell) without TensorFlow."""
from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Mapping

from ._io import sha256_bytes
from .errors import ModelFileError
from .tokenizer import Tokenizer

KEY_PREFIX = "sentilite"
METADATA_VERSION = 1
TFLITE_METADATA_NAME = "sentilite"  # name of the TFLite metadata buffer holding the JSON of keys


def read_tokenizer(meta: Mapping[str, str], source: str) -> tuple[Tokenizer, str]:
    """The embedded tokenizer and the sha256 of its tokenizer.json bytes."""
    version = meta.get(f"{KEY_PREFIX}.metadata_version")
    if version is None:
        raise ModelFileError(f"{source}: carries no sentilite metadata (not exported by sentilite?)")
    if version != str(METADATA_VERSION):
        raise ModelFileError(f"{source}: unknown sentilite metadata version {version!r}")
    try:
        raw = zlib.decompress(base64.b64decode(meta[f"{KEY_PREFIX}.tokenizer.zlib_base64"], validate=True))
        expected = meta[f"{KEY_PREFIX}.tokenizer.sha256"]
    except KeyError as exc:
        raise ModelFileError(f"{source}: metadata lacks {exc}") from None
    except (binascii.Error, zlib.error, ValueError) as exc:
        raise ModelFileError(f"{source}: embedded tokenizer is corrupt ({exc})") from None
    actual = sha256_bytes(raw)
    if actual != expected:
        raise ModelFileError(f"{source}: embedded tokenizer sha256 {actual} does not match the recorded {expected}")
    return Tokenizer.from_json(raw, source=f"{source} (embedded tokenizer)"), actual


def read_json_field(meta: Mapping[str, str], key: str, source: str):
    try:
        return json.loads(meta[f"{KEY_PREFIX}.{key}"])
    except KeyError:
        raise ModelFileError(f"{source}: metadata lacks {KEY_PREFIX}.{key}") from None
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{source}: metadata {KEY_PREFIX}.{key} is not JSON ({exc})") from None
