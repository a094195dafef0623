"""Just enough of the TFLite flatbuffer to read its metadata and operators, in pure Python.

The runtime must read the tokenizer a .tflite carries without TensorFlow or
the flatbuffers package. Schema (tensorflow/compiler/mlir/lite/schema/schema.fbs):
Model = {0 version, 1 operator_codes, 2 subgraphs, 3 description, 4 buffers,
5 metadata_buffer, 6 metadata, ...}; Buffer = {0 data, 1 offset, 2 size};
Metadata = {0 name, 1 buffer}; OperatorCode = {0 deprecated_builtin_code:int8,
1 custom_code, 2 version, 3 builtin_code:int32}. Every read is bounds-checked,
so a damaged file gives a ValueError, never a crash.
"""
from __future__ import annotations

import struct


class _Reader:
    def __init__(self, data: bytes):
        self.b = memoryview(data)
        self.n = len(data)

    def _unpack(self, fmt: str, offset: int):
        size = struct.calcsize(fmt)
        if offset < 0 or offset + size > self.n:
            raise ValueError(f"offset {offset} outside the file ({self.n} bytes)")
        return struct.unpack_from(fmt, self.b, offset)[0]

    def u8(self, o): return self._unpack("<B", o)
    def i8(self, o): return self._unpack("<b", o)
    def u16(self, o): return self._unpack("<H", o)
    def i32(self, o): return self._unpack("<i", o)
    def u32(self, o): return self._unpack("<I", o)
    def u64(self, o): return self._unpack("<Q", o)

    def field(self, table: int, index: int):
        vtable = table - self.i32(table)
        if 4 + 2 * index >= self.u16(vtable):
            return None
        off = self.u16(vtable + 4 + 2 * index)
        return table + off if off else None

    def deref(self, o: int) -> int:
        return o + self.u32(o)

    def vector(self, o: int) -> tuple[int, int]:
        v = self.deref(o)
        length = self.u32(v)
        if v + 4 + length > self.n + 0 and length > self.n:
            raise ValueError("vector longer than the file")
        return v + 4, length

    def bytes_at(self, start: int, length: int) -> bytes:
        if start < 0 or start + length > self.n:
            raise ValueError("data outside the file")
        return bytes(self.b[start: start + length])


def check_identifier(data: bytes) -> None:
    if len(data) < 8 or bytes(data[4:8]) != b"TFL3":
        raise ValueError("not a TFLite flatbuffer (no TFL3 identifier)")


def read_tflite_metadata(data: bytes) -> dict[str, bytes]:
    """{metadata name: bytes} of a .tflite file."""
    check_identifier(data)
    r = _Reader(data)
    root = r.deref(0)
    f_meta, f_buffers = r.field(root, 6), r.field(root, 4)
    if f_meta is None or f_buffers is None:
        return {}
    buf_start, buf_count = r.vector(f_buffers)
    meta_start, meta_count = r.vector(f_meta)
    out = {}
    for k in range(meta_count):
        entry = r.deref(meta_start + 4 * k)
        f_name = r.field(entry, 0)
        if f_name is None:
            continue
        name_start, name_len = r.vector(f_name)
        name = r.bytes_at(name_start, name_len).decode("utf-8", errors="replace")
        f_index = r.field(entry, 1)
        index = r.u32(f_index) if f_index else 0
        if index >= buf_count:
            raise ValueError(f"metadata {name!r} points at buffer {index} of {buf_count}")
        buffer = r.deref(buf_start + 4 * index)
        f_data = r.field(buffer, 0)
        if f_data is not None:
            start, length = r.vector(f_data)
            out[name] = r.bytes_at(start, length)
        else:  # large-model layout: offset/size from the start of the file
            f_off, f_size = r.field(buffer, 1), r.field(buffer, 2)
            out[name] = r.bytes_at(r.u64(f_off), r.u64(f_size)) if f_off and f_size else b""
    return out


def read_tflite_operator_codes(data: bytes) -> list[tuple[int, int]]:
    """(builtin_code, version) of every operator code in the file."""
    check_identifier(data)
    r = _Reader(data)
    root = r.deref(0)
    f_codes = r.field(root, 1)
    if f_codes is None:
        return []
    start, count = r.vector(f_codes)
    codes = []
    for k in range(count):
        code = r.deref(start + 4 * k)
        f_dep, f_ver, f_builtin = r.field(code, 0), r.field(code, 2), r.field(code, 3)
        deprecated = r.i8(f_dep) if f_dep else 0
        builtin = r.i32(f_builtin) if f_builtin else 0
        version = r.i32(f_ver) if f_ver else 1
        # Codes above 127 live only in builtin_code; below, the larger of the two is right.
        codes.append((max(builtin, deprecated), version))
    return codes
