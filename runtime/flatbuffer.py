"""Just enough of the TFLite flatbuffer to read its metadata and operators, and to verify it, in pure Python.

The runtime must read the tokenizer a .tflite carries without TensorFlow or
the flatbuffers package, and must not hand the interpreter a file it would
trust into a crash: the interpreter's own verifier checks that the tables
are readable, not that what they say is consistent. Schema
(tensorflow/compiler/mlir/lite/schema/schema.fbs), the fields read here:
Model = {1 operator_codes, 2 subgraphs, 4 buffers, 6 metadata,
7 signature_defs}; SubGraph = {0 tensors, 1 inputs, 2 outputs, 3 operators};
Tensor = {0 shape, 1 type, 2 buffer, 4 quantization, 5 is_variable,
6 sparsity, 7 shape_signature, 9 variant_tensors, 10 external_buffer};
QuantizationParameters = {2 scale, 3 zero_point, 4 details_type,
6 quantized_dimension}; Operator = {0 opcode_index, 1 inputs, 2 outputs,
3 builtin_options_type, 4 builtin_options, 5 custom_options,
7 mutating_variable_inputs, 8 intermediates, 9-10 large custom options,
11 builtin_options_2_type}; Buffer = {0 data, 1 offset, 2 size};
Metadata = {0 name, 1 buffer}; OperatorCode = {0 deprecated_builtin_code:int8,
2 version, 3 builtin_code:int32}; SignatureDef = {0 inputs, 1 outputs,
4 subgraph_index}; TensorMap = {1 tensor_index}. Every read is
bounds-checked, so a damaged file gives a ValueError, never a crash.
"""
from __future__ import annotations

import struct

# TensorType -> bytes per element.
_TYPE_SIZES = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 8: 8, 9: 1, 10: 8, 11: 16, 12: 8, 15: 4, 16: 2}
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


# Every operator sentilite's TFLite exporter writes: builtin code -> (name, its options union type,
# whether the converter always writes the options, input counts, output count). N: any count from
# 1; SAME: as many as the inputs. The interpreter's kernels read their options without checking
# which union member they got, run with defaults (or crash) when a required table is missing, and
# some read node inputs by position before checking how many there are, so a file with any other
# operator, options type or arity is refused. An operator the exporter starts to write must be added
# here: `sentilite export` loads every file it writes through this check, so it fails loudly until then.
N, SAME = "n", "same"
_OPERATORS = {
    0: ("ADD", 11, True, (2,), 1), 2: ("CONCATENATION", 10, True, N, 1), 6: ("DEQUANTIZE", 38, False, (1,), 1),
    9: ("FULLY_CONNECTED", 8, True, (2, 3), 1), 14: ("LOGISTIC", 0, False, (1,), 1),
    18: ("MUL", 21, True, (2,), 1), 22: ("RESHAPE", 17, False, (1, 2), 1), 25: ("SOFTMAX", 9, True, (1,), 1),
    28: ("TANH", 0, False, (1,), 1),
    36: ("GATHER", 23, True, (2,), 1), 39: ("TRANSPOSE", 26, False, (2,), 1), 41: ("SUB", 28, True, (2,), 1),
    42: ("DIV", 29, True, (2,), 1), 45: ("STRIDED_SLICE", 32, True, (4,), 1), 49: ("SPLIT", 35, True, (2,), N),
    53: ("CAST", 37, False, (1,), 1), 55: ("MAXIMUM", 39, False, (2,), 1), 57: ("MINIMUM", 39, False, (2,), 1),
    58: ("LESS", 41, False, (2,), 1), 69: ("TILE", 51, False, (2,), 1), 71: ("EQUAL", 53, False, (2,), 1),
    72: ("NOT_EQUAL", 54, False, (2,), 1),
    74: ("SUM", 27, True, (2,), 1), 75: ("SQRT", 0, False, (1,), 1), 77: ("SHAPE", 55, True, (1,), 1),
    83: ("PACK", 59, True, N, 1), 86: ("LOGICAL_AND", 62, False, (2,), 1), 93: ("ZEROS_LIKE", 67, True, (1,), 1),
    95: ("FLOOR_MOD", 72, False, (2,), 1), 114: ("QUANTIZE", 89, False, (1,), 1),
    119: ("WHILE", 93, True, N, SAME), 123: ("SELECT_V2", 98, True, (3,), 1),
}
# Inputs an operator may leave out (-1): only the bias of FULLY_CONNECTED.
_OPTIONAL_INPUTS = {9: {2}}
_PACK, _SPLIT = 83, 49
# Tensor types a sentilite file holds (FLOAT32, FLOAT16, INT32, UINT8, BOOL, INT16, INT8) and their
# zero-point range; the UINT8 and INT16 tensors are an n-gram dictionary's fingerprints and displacements.
_TENSOR_TYPES = {0: None, 1: None, 2: (0, 0), 3: None, 6: None, 7: None, 9: (-128, 127)}
# Quantization scales the converter writes for sentilite models lie in 4e-9..3e5. A flipped bit in
# a float's exponent leaves this range, and kernels abort (TFLITE_CHECK) on multipliers it implies.
_MIN_SCALE, _MAX_SCALE = 1e-15, 1e12
# Static tensor bytes a file may ask the interpreter for, all tensors together (sentilite's are ~2 MB).
MAX_TENSOR_BYTES = 1 << 30


def verify_tflite_model(data: bytes) -> None:
    """Raise ValueError unless the file is a TFLite model of the kind sentilite writes, consistent throughout.

    Checks what an interpreter takes on trust: operator codes, the
    operators, options and arity they come with, tensor and buffer indices,
    that every operator reads only tensors that exist by then (inputs,
    constants, earlier results) and writes fresh ones, subgraph references
    of control-flow operators, shapes and their sizes, quantization
    parameters, signatures, and that constant data is as long as its
    tensor's shape and type need. The interpreter's own flatbuffer verifier
    checks only that the tables are readable, not what they say.
    """
    r, root = _root(data)
    codes = read_tflite_operator_codes(data)
    for index, (builtin, version) in enumerate(codes):
        if builtin not in _OPERATORS:
            raise ValueError(f"operator code {index} is builtin operator {builtin}, which sentilite files never use")
        if not 1 <= version <= 1000:
            raise ValueError(f"operator code {index} has version {version}")
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
    io_counts = [(len(r.ints(g, 1)), len(r.ints(g, 2))) for g in subgraphs]
    tensor_counts = []
    total_bytes = 0
    for g_index, g in enumerate(subgraphs):
        where = f"subgraph {g_index}"
        tensors = r.tables(g, 0)
        tensor_counts.append(len(tensors))
        constant = []
        for t_index, t in enumerate(tensors):
            size, is_constant = _check_tensor(r, t, f"{where}: tensor {t_index}", buffer_sizes)
            total_bytes += size
            constant.append(is_constant)
            if total_bytes > MAX_TENSOR_BYTES:
                raise ValueError(f"{where}: tensors need more than {MAX_TENSOR_BYTES:,} bytes")
        inputs, outputs = r.ints(g, 1), r.ints(g, 2)
        for i in inputs + outputs:
            if not 0 <= i < len(tensors):
                raise ValueError(f"{where}: input or output tensor {i} of {len(tensors)}")
        # Tensors that hold a value before the first operator runs; each operator adds its results.
        ready = set(inputs) | {i for i, c in enumerate(constant) if c}
        for o_index, op in enumerate(r.tables(g, 3)):
            _check_operator(r, op, f"{where}: operator {o_index}", g_index, codes, ready, len(tensors), io_counts)
        missing = [i for i in outputs if i not in ready]
        if missing:
            raise ValueError(f"{where}: output tensor {missing[0]} is never computed")
    _check_signatures(r, root, tensor_counts)


def _check_tensor(r: _Reader, t: int, where: str, buffer_sizes: list[int]) -> tuple[int, bool]:
    """Check one tensor; returns the bytes its static shape needs and whether it is a constant."""
    shape = r.ints(t, 0)
    signature = r.ints(t, 7)
    if len(shape) > _MAX_RANK or any(d < 0 for d in shape) or any(d < -1 for d in signature) \
            or (signature and (len(signature) != len(shape)
                               or any(s not in (-1, d) for s, d in zip(signature, shape)))):
        raise ValueError(f"{where} has an invalid shape {shape} (signature {signature})")
    f_type, f_buffer = r.field(t, 1), r.field(t, 2)
    kind = r.i8(f_type) if f_type else 0
    buffer = r.u32(f_buffer) if f_buffer else 0
    if buffer >= len(buffer_sizes):
        raise ValueError(f"{where} points at buffer {buffer} of {len(buffer_sizes)}")
    if kind not in _TENSOR_TYPES:
        raise ValueError(f"{where} has type {kind}, which sentilite files never use")
    f_variable, f_external = r.field(t, 5), r.field(t, 10)
    if r.field(t, 6) is not None or r.ints(t, 9) or (f_variable is not None and r.u8(f_variable)) \
            or (f_external is not None and r.u32(f_external)):
        raise ValueError(f"{where} is a sparse, variant, variable or external tensor; sentilite files hold none")
    elements = 1
    for d in shape:
        elements *= d
    size = buffer_sizes[buffer]
    if size and elements * _TYPE_SIZES[kind] != size:  # dense constant data
        raise ValueError(f"{where} of shape {shape} has {size} bytes of data")
    f_quant = r.field(t, 4)
    if f_quant is not None:
        _check_quantization(r, r.deref(f_quant), where, kind, shape)
    return elements * _TYPE_SIZES[kind], size > 0


def _check_quantization(r: _Reader, q: int, where: str, kind: int, shape: list[int]) -> None:
    """Scales finite and in range, one zero point per scale within the type, a valid channel axis."""
    f_details = r.field(q, 4)
    if f_details is not None and r.u8(f_details):
        raise ValueError(f"{where} has custom quantization details")
    f_scale, f_zero = r.field(q, 2), r.field(q, 3)
    scales = []
    if f_scale is not None:
        start, count = r.vector(f_scale)
        scales = struct.unpack_from(f"<{count}f", r.b, start)
    zeros = []
    if f_zero is not None:
        start, count = r.vector(f_zero, 8)
        zeros = struct.unpack_from(f"<{count}q", r.b, start)
    if not scales and not zeros:
        return
    if len(zeros) != len(scales):
        raise ValueError(f"{where} has {len(scales)} quantization scales and {len(zeros)} zero points")
    if not all(_MIN_SCALE <= s <= _MAX_SCALE for s in scales):  # NaN fails too
        bad = next(s for s in scales if not _MIN_SCALE <= s <= _MAX_SCALE)
        raise ValueError(f"{where} has quantization scale {bad}")
    limits = _TENSOR_TYPES[kind]
    if limits is None:
        raise ValueError(f"{where} is quantized but of a type sentilite files never quantize")
    if not all(limits[0] <= z <= limits[1] for z in zeros):
        raise ValueError(f"{where} has a zero point outside {limits[0]}..{limits[1]}")
    if len(scales) > 1:
        f_dim = r.field(q, 6)
        axis = r.i32(f_dim) if f_dim is not None else 0
        if not 0 <= axis < len(shape) or shape[axis] != len(scales):
            raise ValueError(f"{where}: {len(scales)} per-channel scales along axis {axis} of shape {shape}")


def _check_operator(r: _Reader, op: int, where: str, g_index: int, codes: list[tuple[int, int]], ready: set[int],
                    tensor_count: int, io_counts: list[tuple[int, int]]) -> None:
    """One operator: a known one, with its options and arity, reading ready tensors and writing new ones."""
    f_code = r.field(op, 0)
    code_index = r.u32(f_code) if f_code else 0
    if code_index >= len(codes):
        raise ValueError(f"{where} uses operator code {code_index} of {len(codes)}")
    builtin = codes[code_index][0]
    name, options_type, required, input_counts, output_count = _OPERATORS[builtin]
    where = f"{where} ({name})"
    inputs, outputs = r.ints(op, 1), r.ints(op, 2)
    if r.ints(op, 8):
        raise ValueError(f"{where} has intermediate tensors, which sentilite files never use")
    if not (len(inputs) >= 1 if input_counts == N else len(inputs) in input_counts) \
            or not (len(outputs) >= 1 if output_count == N else
                    len(outputs) == (len(inputs) if output_count == SAME else output_count)):
        raise ValueError(f"{where} has {len(inputs)} inputs and {len(outputs)} outputs")
    for position, i in enumerate(inputs):
        if i == -1 and position in _OPTIONAL_INPUTS.get(builtin, ()):
            continue
        if not 0 <= i < tensor_count:
            raise ValueError(f"{where} reads tensor {i} of {tensor_count}")
        if i not in ready:
            raise ValueError(f"{where} reads tensor {i} before anything computes it")
    for i in outputs:
        if not 0 <= i < tensor_count:
            raise ValueError(f"{where} writes tensor {i} of {tensor_count}")
        if i in ready:
            raise ValueError(f"{where} writes tensor {i}, an input, a constant or another operator's result")
        ready.add(i)
    f_type = r.field(op, 3)
    found_type = r.u8(f_type) if f_type is not None else 0
    f_options = r.field(op, 4)
    if found_type not in ((options_type,) if required else (0, options_type)) \
            or (found_type and f_options is None):
        raise ValueError(f"{where} has options of type {found_type}"
                         f"{' but no options table' if found_type and f_options is None else ''}; "
                         f"sentilite files give it type {options_type}")
    for index, what in ((5, "custom options"), (7, "mutating variable inputs"), (11, "second builtin options")):
        f = r.field(op, index)
        if f is not None and (index != 11 or r.u8(f)):
            raise ValueError(f"{where} has {what}, which sentilite files never use")
    for index in (9, 10):
        f = r.field(op, index)
        if f is not None and r.u64(f):
            raise ValueError(f"{where} has large custom options")
    if builtin in (_PACK, _SPLIT):  # the count the kernel sizes its loops by
        options = r.deref(f_options)
        f_count = r.field(options, 0)
        count = r.i32(f_count) if f_count is not None else 0
        if count != (len(inputs) if builtin == _PACK else len(outputs)):
            raise ValueError(f"{where} says {count} values but has {len(inputs)} inputs and {len(outputs)} outputs")
    if builtin in (_WHILE, _IF, _CALL_ONCE):
        options = r.deref(f_options)
        for k in ((0, 1) if builtin != _CALL_ONCE else (0,)):
            f = r.field(options, k)
            index = r.i32(f) if f else 0
            # Converters write the subgraphs a loop runs after the loop's own: a reference
            # backwards could make the interpreter recurse forever.
            if not g_index < index < len(io_counts):
                raise ValueError(f"{where} refers to subgraph {index}")
            if builtin == _WHILE:
                # Both subgraphs take every loop variable; the body gives each back.
                wanted = (len(inputs), 1 if k == 0 else len(inputs))
                if io_counts[index] != wanted:
                    raise ValueError(f"{where}: a WHILE of {len(inputs)} loop variables runs subgraph {index} "
                                     f"of {io_counts[index][0]} inputs and {io_counts[index][1]} outputs")


def _check_signatures(r: _Reader, root: int, tensor_counts: list[int]) -> None:
    """Signature entries name a subgraph and tensors of it (the interpreter indexes with them)."""
    for s_index, signature in enumerate(r.tables(root, 7)):
        f_graph = r.field(signature, 4)
        graph = r.u32(f_graph) if f_graph is not None else 0
        if graph >= len(tensor_counts):
            raise ValueError(f"signature {s_index} refers to subgraph {graph} of {len(tensor_counts)}")
        for k in (0, 1):
            for entry in r.tables(signature, k):
                f_tensor = r.field(entry, 1)
                tensor = r.u32(f_tensor) if f_tensor is not None else 0
                if tensor >= tensor_counts[graph]:
                    raise ValueError(f"signature {s_index} refers to tensor {tensor} of {tensor_counts[graph]}")
