"""What every model file carries about itself, so one file alone is enough on a device.

The tokenizer travels as the exact bytes of ``tokenizer.json``, zlib-compressed
(a 20,000-word vocabulary is ~350 KB of JSON, ~120 KB compressed; uncompressed
it would be a large share of an 8-bit file). Its sha256 is stored beside it,
so the runtime can prove the copy matches the package's ``tokenizer.json``.
"""
from __future__ import annotations

import base64
import json
import zlib

from sentilite.runtime.embedded import KEY_PREFIX, METADATA_VERSION
from sentilite.runtime._io import sha256_bytes


def embedded_metadata(tokenizer_json: bytes, cell: str, precision: str, fmt: str, labels, maxlen: int,
                      vocab_size: int, name: str) -> dict[str, str]:
    """String key/values (ONNX metadata_props); TFLite stores the same as one JSON entry.

    ``variable_length``: every exporter writes files that read rows shorter
    than maxlen as if they were left-padded, so the runtime may cut the
    leading padding off.
    """
    return {
        f"{KEY_PREFIX}.metadata_version": str(METADATA_VERSION),
        f"{KEY_PREFIX}.name": name,
        f"{KEY_PREFIX}.cell": cell,
        f"{KEY_PREFIX}.format": fmt,
        f"{KEY_PREFIX}.precision": precision,
        f"{KEY_PREFIX}.labels": json.dumps(list(labels)),
        f"{KEY_PREFIX}.input": json.dumps({"maxlen": maxlen, "vocab_size": vocab_size,
                                               "variable_length": True}),
        f"{KEY_PREFIX}.tokenizer.sha256": sha256_bytes(tokenizer_json),
        f"{KEY_PREFIX}.tokenizer.zlib_base64": base64.b64encode(zlib.compress(tokenizer_json, 9)).decode("ascii"),
    }
