"""Just enough of the TFLite flatbuffer to read its metadata and operators, and to verify it, in pure Python.

The runtime must read the tokenizer a .tflite carries without TensorFlow or
the flatbuffers package, and must not hand the interpreter a file whose
tables point outside it: the interpreter trusts indices and sizes it finds
there. Schema (tensorflow/compiler/mlir/lite/schema/schema.fbs):
Model = {0 version, 1 operator_codes, 2 subgraphs, 3 description, 4 buffers,
5 metadata_buffer, 6 metadata, ...}; SubGraph = {0 tensors, 1 inputs,
2 outputs, 3 operators, 4 name}; Tensor = {0 shape, 1 type, 2 buffer, 3 name,
4 quantization, ..., 7 shape_signature}; Operator = {0 opcode_index,
1 inputs, 2 outputs, 3 builtin_options_type, 4 builtin_options, ...};
Buffer = {0 data, 1 offset, 2 size}; Metadata = {0 name, 1 buffer};
OperatorCode = {0 deprecated_builtin_code:int8, 1 custom_code, 2 version,
3 builtin_code:int32}. Every read is bounds-checked, so a damaged file gives
a ValueError, never a crash.
"""
from __future__ import annotations

import struct

# TensorType -> bytes per element (STRING and the like have no fixed size).
_TYPE_SIZES = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 8: 8, 9: 1, 10: 8, 11: 16, 12: 8, 15: 4, 16: 2}
_OPAQUE_TYPES = {5, 13, 14, 17, 18, 19, 20}  # STRING, RESOURCE, VARIANT, INT4 (packed) and newer types
_WHILE, _IF, _CALL_ONCE = 119, 118, 129
_MAX_RANK = 8


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
    def i64(self, o): return self._unpack("<q", o)
    def u64(self, o): return self._unpack("<Q", o)

    def field(self, table: int, index: int):
        vtable = table - self.i32(table)
        vsize = self.u16(vtable)
        if vsize < 4 or vsize % 2:
            raise ValueError(f"malformed vtable at {vtable}")
        if 4 + 2 * index >= vsize:
            return None
        off = self.u16(vtable + 4 + 2 * index)
        return table + off if off else None

    def deref(self, o: int) -> int:
        target = o + self.u32(o)
        if target >= self.n:
            raise ValueError(f"reference at {o} points outside the file")
        return target

    def vector(self, o: int, element_size: int = 4) -> tuple[int, int]:
        v = self.deref(o)
        length = self.u32(v)
        if v + 4 + length * element_size > self.n:
            raise ValueError(f"vector at {v} of {length} elements runs past the end of the file")
        return v + 4, length

    def ints(self, table: int, index: int) -> list[int]:
        f = self.field(table, index)
        if f is None:
            return []
        start, count = self.vector(f)
        return list(struct.unpack_from(f"<{count}i", self.b, start))

    def bytes_at(self, start: int, length: int) -> bytes:
        if start < 0 or start + length > self.n:
            raise ValueError("data outside the file")
        return bytes(self.b[start: start + length])

    def tables(self, table: int, index: int) -> list[int]:
        f = self.field(table, index)
        if f is None:
            return []
        start, count = self.vector(f)
        return [self.deref(start + 4 * k) for k in range(count)]


def check_identifier(data: bytes) -> None:
    if len(data) < 8 or bytes(data[4:8]) != b"TFL3":
        raise ValueError("not a TFLite flatbuffer (no TFL3 identifier)")


def _root(data: bytes) -> tuple[_Reader, int]:
    check_identifier(data)
    r = _Reader(data)
    return r, r.deref(0)


def _buffer_bytes(r: _Reader, buffer: int) -> tuple[int, int] | None:
    """(start, length) of a buffer's data, in the file; None when it holds none."""
    f_data = r.field(buffer, 0)
    if f_data is not None:
        return r.vector(f_data, 1)
    f_off, f_size = r.field(buffer, 1), r.field(buffer, 2)
    if f_off and f_size:  # large-model layout: offset/size from the start of the file
        start, length = r.u64(f_off), r.u64(f_size)
        if start + length > r.n:
            raise ValueError("buffer data outside the file")
        return start, length
    return None


def read_tflite_metadata(data: bytes) -> dict[str, bytes]:
    """{metadata name: bytes} of a .tflite file."""
    r, root = _root(data)
    buffers = r.tables(root, 4)
    out = {}
    for entry in r.tables(root, 6):
        f_name = r.field(entry, 0)
        if f_name is None:
            continue
        name = r.bytes_at(*r.vector(f_name, 1)).decode("utf-8", errors="replace")
        f_index = r.field(entry, 1)
        index = r.u32(f_index) if f_index else 0
        if index >= len(buffers):
            raise ValueError(f"metadata {name!r} points at buffer {index} of {len(buffers)}")
        located = _buffer_bytes(r, buffers[index])
        out[name] = r.bytes_at(*located) if located else b""
    return out


def read_tflite_operator_codes(data: bytes) -> list[tuple[int, int]]:
    """(builtin_code, version) of every operator code in the file."""
    r, root = _root(data)
    codes = []
    for code in r.tables(root, 1):
        f_dep, f_ver, f_builtin = r.field(code, 0), r.field(code, 2), r.field(code, 3)
        deprecated = r.i8(f_dep) if f_dep else 0
        builtin = r.i32(f_builtin) if f_builtin else 0
        version = r.i32(f_ver) if f_ver else 1
        # Codes above 127 live only in builtin_code; below, the larger of the two is right.
        codes.append((max(builtin, deprecated), version))
    return codes


def verify_tflite_model(data: bytes) -> None:
    """Raise ValueError unless every index and size in the model's tables is consistent.

    Checks what an interpreter takes on trust: operator codes, tensor and
    buffer indices, subgraph references of control-flow operators, shapes,
    and that constant data is as long as its tensor's shape and type need.
    """
    r, root = _root(data)
    codes = read_tflite_operator_codes(data)
    subgraphs = r.tables(root, 2)
    buffers = r.tables(root, 4)
    if not subgraphs:
        raise ValueError("the model has no subgraph")
    if not buffers:
        raise ValueError("the model has no buffer table")
    buffer_sizes = []
    for b in buffers:
        located = _buffer_bytes(r, b)
        buffer_sizes.append(located[1] if located else 0)
    for g_index, g in enumerate(subgraphs):
        where = f"subgraph {g_index}"
        tensors = r.tables(g, 0)
        for t_index, t in enumerate(tensors):
            shape = r.ints(t, 0)
            signature = r.ints(t, 7)
            if len(shape) > _MAX_RANK or any(d < 0 for d in shape) or any(d < -1 for d in signature):
                raise ValueError(f"{where}: tensor {t_index} has an invalid shape {shape}")
            f_type, f_buffer = r.field(t, 1), r.field(t, 2)
            kind = r.i8(f_type) if f_type else 0
            buffer = r.u32(f_buffer) if f_buffer else 0
            if buffer >= len(buffers):
                raise ValueError(f"{where}: tensor {t_index} points at buffer {buffer} of {len(buffers)}")
            if kind not in _TYPE_SIZES and kind not in _OPAQUE_TYPES:
                raise ValueError(f"{where}: tensor {t_index} has unknown type {kind}")
            size = buffer_sizes[buffer]
            if size and kind in _TYPE_SIZES and r.field(t, 6) is None:  # dense constant data
                elements = 1
                for d in shape:
                    elements *= d
                if elements * _TYPE_SIZES[kind] != size:
                    raise ValueError(f"{where}: tensor {t_index} of shape {shape} has {size} bytes of data")
        for io_index, name in ((1, "input"), (2, "output")):
            for i in r.ints(g, io_index):
                if not 0 <= i < len(tensors):
                    raise ValueError(f"{where}: {name} tensor {i} of {len(tensors)}")
        for o_index, op in enumerate(r.tables(g, 3)):
            f_code = r.field(op, 0)
            code_index = r.u32(f_code) if f_code else 0
            if code_index >= len(codes):
                raise ValueError(f"{where}: operator {o_index} uses operator code {code_index} of {len(codes)}")
            for i in r.ints(op, 1) + r.ints(op, 2) + r.ints(op, 8):
                if not -1 <= i < len(tensors):
                    raise ValueError(f"{where}: operator {o_index} uses tensor {i} of {len(tensors)}")
            builtin = codes[code_index][0]
            if builtin in (_WHILE, _IF, _CALL_ONCE):
                f_options = r.field(op, 4)
                if f_options is None:
                    raise ValueError(f"{where}: control-flow operator {o_index} has no options")
                options = r.deref(f_options)
                for k in ((0, 1) if builtin != _CALL_ONCE else (0,)):
                    f = r.field(options, k)
                    index = r.i32(f) if f else 0
                    # Converters write the subgraphs a loop runs after the loop's own: a reference
                    # backwards could make the interpreter recurse forever.
                    if not g_index < index < len(subgraphs):
                        raise ValueError(f"{where}: operator {o_index} refers to subgraph {index}")
