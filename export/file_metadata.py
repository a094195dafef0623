"""What every model file carries about itself, so one file alone is enough on a device.

The tokenizer travels as the exact bytes of ``tokenizer.json``,
zlib-compressed (uncompressed it would be a large share of an 8-bit file).
Its sha256 is stored beside it, so the runtime can prove the copy matches the
package's ``tokenizer.json``. ``sentilite.model`` is the ModelConfig the
numpy backend rebuilds the forward pass from.
"""
from __future__ import annotations

import base64
import json
import zlib

from sentilite.runtime.architecture import ModelConfig
from sentilite.runtime.embedded import METADATA_VERSION, key
from sentilite.shared.files import sha256_bytes
from sentilite.shared.seal import SEAL_KEY, SEAL_PLACEHOLDER


def embedded_metadata(tokenizer_json: bytes, model: ModelConfig, precision: str, fmt: str, labels, maxlen: int,
                      vocab_size: int, name: str) -> dict[str, str]:
    """String key/values (ONNX metadata_props); TFLite and .npz store the same as one JSON object.

    ``variable_length``: every exporter writes files that read rows shorter
    than maxlen as if they were left-padded, so the runtime may cut the
    leading padding off.
    """
    return {
        key("metadata_version"): str(METADATA_VERSION),
        key("name"): name,
        key("cell"): model.cell,
        key("model"): json.dumps(model.to_dict(), separators=(",", ":")),
        key("format"): fmt,
        key("precision"): precision,
        key("labels"): json.dumps(list(labels)),
        key("input"): json.dumps({"maxlen": maxlen, "vocab_size": vocab_size, "variable_length": True}),
        key("tokenizer.sha256"): sha256_bytes(tokenizer_json),
        key("tokenizer.zlib_base64"): base64.b64encode(zlib.compress(tokenizer_json, 9)).decode("ascii"),
        # filled in by shared.seal.seal once the file's bytes are final (ONNX and TFLite files)
        SEAL_KEY: SEAL_PLACEHOLDER,
    }
