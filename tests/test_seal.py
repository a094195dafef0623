"""A file's own checksum in its metadata (sentilite.shared.seal): damage to a single file is refused early."""
import hashlib
import json

import pytest

from sentilite.shared.errors import ModelFileError
from sentilite.shared.seal import SEAL_KEY, SEAL_PLACEHOLDER, check_seal, seal


def tflite_like(meta: dict) -> bytes:
    """Bytes around a JSON metadata blob, the way a TFLite file carries sentilite's keys."""
    return b"TFL3" + bytes(range(256)) + json.dumps(meta, separators=(",", ":")).encode() + b"\x00weights\x01\x02"


def onnx_like(value: str) -> bytes:
    """A protobuf StringStringEntryProto: tag 0x0a, key, tag 0x12, length 0x40, value."""
    key = SEAL_KEY.encode()
    return b"\x08\x07" + b"\x0a" + bytes([len(key)]) + key + b"\x12\x40" + value.encode() + b"rest of the model"


@pytest.mark.parametrize("make", [lambda v: tflite_like({"sentilite.name": "x", SEAL_KEY: v}), onnx_like])
def test_a_sealed_file_checks_and_any_flipped_byte_is_refused(make):
    unsealed = make(SEAL_PLACEHOLDER)
    sealed = seal(unsealed)
    assert len(sealed) == len(unsealed) and sealed != unsealed
    assert hashlib.sha256(unsealed).hexdigest().encode() in sealed  # the digest of the file with the zeros
    assert check_seal(sealed, "m", ModelFileError) is True
    for at in range(len(sealed)):
        damaged = bytearray(sealed)
        damaged[at] ^= 0x10
        try:
            result = check_seal(bytes(damaged), "m", ModelFileError)
        except ModelFileError as exc:
            assert str(exc) in ("m: the file is damaged: its content does not match the sha256 it was sealed with",
                                f"m: the file is damaged: its {SEAL_KEY} value is not a sha256")
        else:  # only a flip that destroys the key itself leaves a file that no longer claims a seal
            assert result is False and SEAL_KEY.encode() not in bytes(damaged)


def test_files_without_a_seal_or_never_sealed_are_not_judged():
    assert check_seal(b"TFL3 no metadata at all", "m", ModelFileError) is False
    assert check_seal(tflite_like({SEAL_KEY: SEAL_PLACEHOLDER}), "m", ModelFileError) is False
    assert seal(b"TFL3 no placeholder") == b"TFL3 no placeholder"
