"""The MediaPipe file's int8 weights: a rewrite of the converted float32 flatbuffer, and its names dropped.

Every operator still computes in float32 as the Keras model does: each
int8 matrix or lookup table is turned back into float32 by a DEQUANTIZE,
so the only loss is the rounding of the weights.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..errors import ConversionError
from ..quantization import symmetric_int8
from ..tflite.schema import builtin_code, model_bytes, operator_code_index, read_model, tflite_schema

# Constants with at least this many elements are stored as int8; biases and small vectors stay float.
MIN_QUANTIZED_ELEMENTS = 64
# Version of the DEQUANTIZE operator code the rewrite adds (int8 input).
_DEQUANTIZE_VERSION = 2


def store_weights_int8(converted: bytes) -> bytes:
    """Store every matrix and lookup table as int8 and dequantize it inside the graph; drop tensor names.

    A table read by GATHER is gathered as int8 and only the rows read are
    dequantized (one scale per column, or one for a vector); any other matrix
    is dequantized once, as a constant, before the operators that read it
    (one scale per output channel: FULLY_CONNECTED weights are [out, in]).
    Tensor names (the converter's long scope paths, a third of an unrolled
    graph) are dropped but for the input ("ids") and output ("probabilities"); the empty
    buffers the converter gives each activation are merged into buffer 0.
    """
    schema = tflite_schema()
    model = read_model(converted)
    if len(model.subgraphs) != 1:
        raise ConversionError(f"the MediaPipe graph has {len(model.subgraphs)} subgraphs; MediaPipe needs one")
    graph = model.subgraphs[0]
    op = schema.BuiltinOperator
    readers = defaultdict(list)  # tensor -> [(operator, input position)]
    for operator in graph.operators:
        for position, t in enumerate(operator.inputs):
            if t >= 0:
                readers[t].append((operator, position))
    front = []  # DEQUANTIZE of constants, placed before every other operator
    for index in range(len(graph.tensors)):
        tensor = graph.tensors[index]
        data = model.buffers[tensor.buffer].data if tensor.buffer > 0 else None
        if tensor.type != schema.TensorType.FLOAT32 or data is None or len(data) == 0:
            continue
        values = np.frombuffer(bytes(data), np.float32).reshape(list(tensor.shape))
        users = readers[index]
        lookup = bool(users) and all(builtin_code(model, o) == op.GATHER and p == 0 for o, p in users)
        if not lookup and (values.ndim != 2 or values.size < MIN_QUANTIZED_ELEMENTS):
            continue
        axis = (values.ndim - 1 if values.ndim > 1 else None) if lookup else 0
        q, scale = symmetric_int8(values, axis)
        scale = np.atleast_1d(scale)
        tensor.type, tensor.quantization = schema.TensorType.INT8, _quantization(scale, axis)
        model.buffers[tensor.buffer].data = q.tobytes()
        if lookup:  # GATHER int8 rows, then DEQUANTIZE them into the tensor the GATHER wrote before
            for gather, _ in users:
                out = gather.outputs[0]
                shape = list(graph.tensors[out].shape)
                out_axis = None if axis is None else len(shape) - 1
                rows = _new_tensor(graph, shape, schema.TensorType.INT8, _quantization(scale, out_axis))
                gather.outputs = [rows]
                graph.operators.insert(graph.operators.index(gather) + 1, _dequantize(model, rows, out))
        else:
            dequantized = _new_tensor(graph, tensor.shape, schema.TensorType.FLOAT32)
            for reader, position in users:
                inputs = list(reader.inputs)
                inputs[position] = dequantized
                reader.inputs = inputs
            front.append(_dequantize(model, index, dequantized))
    graph.operators[:0] = front
    _drop_names_and_empty_buffers(model, graph)
    return model_bytes(model)


def _quantization(scale: np.ndarray, axis: int | None):
    """Symmetric int8 parameters: ``scale`` (one, or one per index of ``axis``), zero points 0."""
    params = tflite_schema().QuantizationParametersT()
    params.scale = [float(s) for s in scale]
    params.zeroPoint = [0] * len(scale)
    params.quantizedDimension = 0 if axis is None else axis
    return params


def _new_tensor(graph, shape, tensor_type: int, params=None) -> int:
    """Index of a new activation tensor (no buffer) appended to ``graph``."""
    tensor = tflite_schema().TensorT()
    tensor.shape, tensor.type, tensor.buffer = list(shape), tensor_type, 0
    tensor.quantization = params
    graph.tensors.append(tensor)
    return len(graph.tensors) - 1


def _dequantize(model, source: int, target: int):
    """A DEQUANTIZE of tensor ``source`` into ``target``."""
    schema = tflite_schema()
    operator = schema.OperatorT()
    operator.opcodeIndex = operator_code_index(model, schema.BuiltinOperator.DEQUANTIZE, version=_DEQUANTIZE_VERSION)
    operator.inputs, operator.outputs = [source], [target]
    operator.builtinOptionsType = schema.BuiltinOptions.DequantizeOptions
    operator.builtinOptions = schema.DequantizeOptionsT()
    return operator


def _drop_names_and_empty_buffers(model, graph) -> None:
    names = {graph.inputs[0]: b"ids", graph.outputs[0]: b"probabilities"}
    for index, tensor in enumerate(graph.tensors):
        tensor.name = names.get(index)
        params = tensor.quantization
        if params is not None and (params.scale is None or len(params.scale) == 0):
            tensor.quantization = None  # an empty table the converter writes for every float tensor
        if tensor.shapeSignature is not None and list(tensor.shapeSignature) == list(tensor.shape):
            tensor.shapeSignature = None
    used = sorted({t.buffer for t in graph.tensors if t.buffer > 0 and model.buffers[t.buffer].data is not None
                   and len(model.buffers[t.buffer].data)} | {m.buffer for m in (model.metadata or [])})
    new_index = {old: new for new, old in enumerate([0] + used)}
    for tensor in graph.tensors:
        tensor.buffer = new_index.get(tensor.buffer, 0)
    for entry in model.metadata or []:
        entry.buffer = new_index[entry.buffer]
    model.buffers = [model.buffers[old] for old in [0] + used]
    graph.name = None
