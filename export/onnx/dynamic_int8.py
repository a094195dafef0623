"""model.dynamic-int8.onnx: onnxruntime's dynamic quantizer on the fp32 graph, which quantizes only its Gathers.

onnxruntime has no quantized GRU/LSTM/RNN kernel, so the native cell stays
float; the static int8 file (int8.py) rewrites the cell instead. The n-gram
table of a model of three or more labels has one column per label, each of
its own range: it gets one scale per column (``ngram_rows_per_label``)
instead of the quantizer's one per tensor.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import ConversionError
from ..quantization import symmetric_int8
from .fp16 import pad_states_to_fp16
from .fp32 import build_fp32
from .graph import (
    NGRAM_DISPLACEMENT_GATHER, NGRAM_FINGERPRINT_GATHER, NGRAM_GATHER, NGRAM_TABLE, PAD_STATE_GATHERS, make_node,
)

# The pad-state tables are tiny and start every row: they stay float (stored as float16, pad_states_to_fp16).
# A dictionary's integer tables are already 8 and 16 bits.
_NOT_QUANTIZED = [*PAD_STATE_GATHERS, NGRAM_DISPLACEMENT_GATHER, NGRAM_FINGERPRINT_GATHER]


def quantize_gathers(model_fp32: onnx.ModelProto, exclude: tuple[str, ...] = ()) -> onnx.ModelProto:
    """The fp32 graph's table Gathers on int8 rows (onnxruntime.quantization.quantize_dynamic), but ``exclude``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="sentilite-onnx-") as tmp:
        src, dst = os.path.join(tmp, "fp32.onnx"), os.path.join(tmp, "q.onnx")
        onnx.save_model(model_fp32, src)
        quantize_dynamic(src, dst, op_types_to_quantize=["Gather"], weight_type=QuantType.QInt8, per_channel=False,
                         nodes_to_exclude=[*_NOT_QUANTIZED, *exclude])
        return onnx.load(dst)


def ngram_rows_per_label(model: onnx.ModelProto) -> onnx.ModelProto:
    """The (rows, N) n-gram table as int8 with one symmetric scale per label column, dequantized after the Gather.

    A Gather only picks rows, so the N column scales apply to the gathered
    (batch, L, N) rows as they would to the table: a run dequantizes the
    rows it reads, never the whole table.
    """
    graph = model.graph
    table = next((i for i in graph.initializer if i.name == NGRAM_TABLE), None)
    gather = next((n for n in graph.node if n.name == NGRAM_GATHER), None)
    if table is None or gather is None or gather.input[0] != NGRAM_TABLE:
        raise ConversionError(f"graph {graph.name!r}: no float {NGRAM_TABLE!r} read by {NGRAM_GATHER!r}")
    weights = numpy_helper.to_array(table)
    if weights.ndim != 2:
        raise ConversionError(f"graph {graph.name!r}: {NGRAM_TABLE!r} is {list(weights.shape)}, not (rows, labels)")
    q, scale = symmetric_int8(weights, axis=1)
    names = (f"{NGRAM_TABLE}_quantized", f"{NGRAM_TABLE}_scale", f"{NGRAM_TABLE}_zero_point")
    graph.initializer.remove(table)
    graph.initializer.extend([numpy_helper.from_array(q, names[0]), numpy_helper.from_array(scale, names[1]),
                              numpy_helper.from_array(np.zeros(scale.shape, np.int8), names[2])])
    rows = gather.output[0]
    gather.input[0], gather.output[0] = names[0], f"{rows}_quantized"
    # axis -1: the label axis of the gathered (batch, L, N) rows
    dequantize = make_node("DequantizeLinear", [gather.output[0], names[1], names[2]], [rows],
                           name=f"{NGRAM_GATHER}_dequantize", axis=-1)
    nodes = list(graph.node)
    nodes.insert(nodes.index(gather) + 1, dequantize)
    del graph.node[:]
    graph.node.extend(nodes)
    return model


def build_dynamic_int8(ctx, name: str = "sentilite") -> onnx.ModelProto:
    fp32 = build_fp32(ctx, name)
    if ctx.model.outputs == 1 or not ctx.model.ngram_buckets:
        return pad_states_to_fp16(quantize_gathers(fp32))
    return pad_states_to_fp16(ngram_rows_per_label(quantize_gathers(fp32, exclude=(NGRAM_GATHER,))))
