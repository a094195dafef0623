"""The TFLite schema through TensorFlow's flatbuffer object API: enum names, operator codes, metadata buffers.

Every exporter step that reads or rewrites a converted file goes through
here, so the schema's enums are named, and a file is read, written or given
a metadata entry, in one place. (runtime/flatbuffer.py reads the same files
in pure Python: the runtime has no TensorFlow.)
"""
from __future__ import annotations

import functools


@functools.lru_cache(maxsize=None)
def tflite_schema():
    """TensorFlow's generated schema module (imported on first use: importing this module costs no TensorFlow)."""
    from tensorflow.lite.python import schema_py_generated as schema

    return schema


@functools.lru_cache(maxsize=None)
def operator_names() -> dict[int, str]:
    """BuiltinOperator code -> name ("WHILE", "FULLY_CONNECTED", ...)."""
    return {v: k for k, v in tflite_schema().BuiltinOperator.__dict__.items() if not k.startswith("_")}


@functools.lru_cache(maxsize=None)
def tensor_type_names() -> dict[int, str]:
    """TensorType code -> name ("FLOAT32", "INT8", ...)."""
    return {v: k for k, v in tflite_schema().TensorType.__dict__.items() if not k.startswith("_")}


def builtin_code(model, op) -> int:
    """The builtin operator ``op`` runs."""
    return _builtin(model.operatorCodes[op.opcodeIndex])


def _builtin(code) -> int:
    """An operator code's builtin: files keep it in one of two fields (the old one is int8, up to 127)."""
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def operator_code_index(model, builtin: int, version: int = 1) -> int:
    """Index of the model's operator code for ``builtin``, added (at ``version``) when it has none."""
    for i, code in enumerate(model.operatorCodes):
        if _builtin(code) == builtin:
            return i
    code = tflite_schema().OperatorCodeT()
    code.builtinCode, code.deprecatedBuiltinCode, code.version = builtin, min(builtin, 127), version
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def read_model(data: bytes):
    """The file as a mutable ModelT."""
    from tensorflow.lite.tools import flatbuffer_utils

    return flatbuffer_utils.convert_bytearray_to_object(bytearray(data))


def model_bytes(model) -> bytes:
    """A ModelT written back as a file."""
    from tensorflow.lite.tools import flatbuffer_utils

    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def set_metadata(model, name: str, data: bytes) -> None:
    """Store ``data`` as the model's metadata entry ``name`` (a new buffer), in place of any entry of that name."""
    schema = tflite_schema()
    buffer = schema.BufferT()
    buffer.data = bytearray(data)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = name, len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name not in (name, name.encode())]
    model.metadata.append(entry)
