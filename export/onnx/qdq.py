"""The QDQ rewrites of the static int8 file, each a small named step on a finished graph (int8.py runs them).

1. ``quantize_initializers``: float initializer -> 8-bit initializer + DequantizeLinear
   (a MatMul's weights in 7 bits: ``MATMUL_WEIGHT_LEVELS``).
2. ``insert_qdq``: a QuantizeLinear -> DequantizeLinear pair on an activation.
3. ``gather_int8_rows``: DequantizeLinear(table) -> Gather becomes
   Gather(8-bit table) -> DequantizeLinear, so a run dequantizes only the rows it reads.
4. ``check_matmuls_quantized``: refuses a graph with a float MatMul left.

Each has a unit test on a tiny graph (tests/test_onnx_graphs.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from ..errors import ConversionError
from ..quantization import symmetric_int8
from .graph import make_node


# A MatMul's int8 weights are kept in -63..63 (7 bits, as onnxruntime's quantizer does with reduce_range=True).
# Its x86 u8s8 kernel on AVX2/AVX512 without VNNI multiplies with vpmaddubsw, which adds each pair of u8 * s8
# products in int16 with saturation: 255 * 127 * 2 does not fit and the sum is silently clipped
# (microsoft/onnxruntime#6004, #14642). 255 * 63 * 2 = 32,130 fits on every CPU. A table read by a Gather is
# not multiplied by that kernel and keeps -127..127.
MATMUL_WEIGHT_LEVELS = 63


@dataclass(frozen=True)
class Range:
    """The smallest and largest value an activation took."""

    low: float
    high: float

    def widen(self, values: np.ndarray) -> "Range":
        if values.size == 0:
            return self
        return Range(min(self.low, float(values.min())), max(self.high, float(values.max())))


@dataclass(frozen=True)
class QParams:
    """8-bit scale and zero point: real = (q - zero_point) * scale; the zero point's dtype is q's."""

    scale: np.ndarray  # float32, scalar or per channel
    zero_point: np.ndarray  # int8 or uint8, same shape

    @classmethod
    def for_range(cls, r: Range) -> "QParams":
        """Asymmetric uint8 over [low, high] widened to hold 0 exactly: onnxruntime's activation type.

        Its x86 build fuses a QDQ MatMul only with uint8 activations
        (microsoft/onnxruntime#7715; int8 ones only on ARM, #9961): int8
        Q/DQ pairs it converts itself, but not an int8 table read by a Gather.
        """
        low, high = min(r.low, 0.0), max(r.high, 0.0)
        scale = (high - low) / 255.0 or 1.0
        zero_point = int(np.clip(np.round(-low / scale), 0, 255))
        return cls(np.array(scale, np.float32), np.array(zero_point, np.uint8))

    def quantize(self, values: np.ndarray) -> np.ndarray:
        info = np.iinfo(self.zero_point.dtype)
        q = np.round(np.asarray(values, np.float32) / self.scale) + self.zero_point.astype(np.int32)
        return np.clip(q, info.min, info.max).astype(self.zero_point.dtype)


def _consumers(graph: onnx.GraphProto, tensor: str) -> list[onnx.NodeProto]:
    return [n for n in graph.node if tensor in n.input]


def _unique(graph: onnx.GraphProto, name: str) -> str:
    taken = {i.name for i in graph.initializer} | {o for n in graph.node for o in n.output} | \
            {i.name for i in graph.input}
    out, k = name, 1
    while out in taken:
        out, k = f"{name}_{k}", k + 1
    return out


# -- 1. weights -> 8-bit initializers + DequantizeLinear ------------------------------------------------
def quantize_initializers(graph: onnx.GraphProto, axes: dict[str, int | None], tables: tuple[str, ...] = (),
                          levels: int = 127) -> onnx.GraphProto:
    """Each float initializer named -> an 8-bit initializer ``<name>_quantized`` + DequantizeLinear.

    ``axes``: symmetric int8 (zero point 0) in -levels..levels, per tensor
    (None) or per slice of an axis: a MatMul's weights take
    ``MATMUL_WEIGHT_LEVELS``. ``tables``: asymmetric uint8 over the table's
    range, per tensor, for a table whose gathered rows are a MatMul's
    activation input (see QParams.for_range). The DequantizeLinear writes the
    old name, so readers are unchanged.
    """
    inits = {i.name: i for i in graph.initializer}
    missing = sorted((set(axes) | set(tables)) - set(inits))
    if missing:
        raise ConversionError(f"graph {graph.name!r}: no initializers {missing} to quantize")
    nodes = []
    for name in [*axes, *tables]:
        init = inits[name]
        if init.data_type != TensorProto.FLOAT:
            raise ConversionError(f"graph {graph.name!r}: initializer {name!r} is not float32")
        w = numpy_helper.to_array(init)
        axis = axes.get(name)
        if name in tables:
            params = QParams.for_range(Range(float(w.min()), float(w.max())) if w.size else Range(0.0, 0.0))
            q = params.quantize(w)
        else:
            q, scale = symmetric_int8(w, axis, levels)
            params = QParams(scale, np.zeros(scale.shape, np.int8))
        graph.initializer.remove(init)
        graph.initializer.extend([numpy_helper.from_array(q, f"{name}_quantized"),
                                  numpy_helper.from_array(params.scale, f"{name}_scale"),
                                  numpy_helper.from_array(params.zero_point, f"{name}_zero_point")])
        attrs = {} if axis is None else {"axis": axis}
        nodes.append(make_node("DequantizeLinear", [f"{name}_quantized", f"{name}_scale", f"{name}_zero_point"],
                               [name], name=f"{name}_dequantize", **attrs))
    existing = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + existing)
    return graph


# -- 2. Q -> DQ on an activation ------------------------------------------------------------------------
def insert_qdq(graph: onnx.GraphProto, tensor: str, params: QParams, into: tuple[str, ...] | None = None
               ) -> onnx.GraphProto:
    """QuantizeLinear -> DequantizeLinear on ``tensor``, read by its consumers of op types ``into`` (all if None).

    A graph output keeps the float value; only the rewired readers see the
    quantized one.
    """
    readers = [n for n in _consumers(graph, tensor) if into is None or n.op_type in into]
    if not readers:
        raise ConversionError(f"graph {graph.name!r}: no {'/'.join(into or ('node',))} reads {tensor!r}")
    scale, zero = _unique(graph, f"{tensor}_scale"), _unique(graph, f"{tensor}_zero_point")
    q, dq = _unique(graph, f"{tensor}_quantized"), _unique(graph, f"{tensor}_dequantized")
    graph.initializer.extend([numpy_helper.from_array(params.scale, scale),
                              numpy_helper.from_array(params.zero_point, zero)])
    for node in readers:
        for i, name in enumerate(node.input):
            if name == tensor:
                node.input[i] = dq
    pair = [make_node("QuantizeLinear", [tensor, scale, zero], [q], name=f"{tensor}_quantize"),
            make_node("DequantizeLinear", [q, scale, zero], [dq], name=f"{tensor}_dequantize")]
    # Insert right after the producer (or first, for a graph input) to keep the nodes in order.
    nodes = list(graph.node)
    at = next((k + 1 for k, n in enumerate(nodes) if tensor in n.output), 0)
    del graph.node[:]
    graph.node.extend(nodes[:at] + pair + nodes[at:])
    return graph


# -- 3. Gather on 8-bit rows ----------------------------------------------------------------------------
def gather_int8_rows(graph: onnx.GraphProto) -> onnx.GraphProto:
    """DequantizeLinear(8-bit table, per-tensor) -> Gather  becomes  Gather(8-bit table) -> DequantizeLinear.

    Gather only picks rows and a per-tensor scale is the same for every row,
    so the result is bit-exact; a run dequantizes the rows it reads, not the
    whole table.
    """
    inits = {i.name: i for i in graph.initializer}
    for dq in [n for n in graph.node if n.op_type == "DequantizeLinear"]:
        if dq.input[0] not in inits or inits[dq.input[0]].data_type not in (TensorProto.INT8, TensorProto.UINT8):
            continue
        readers = _consumers(graph, dq.output[0])
        if not readers or any(n.op_type != "Gather" or n.input[0] != dq.output[0] for n in readers):
            continue
        scale = inits.get(dq.input[1])
        if scale is None or numpy_helper.to_array(scale).size != 1:
            continue  # a per-row or per-column scale would have to be gathered too
        nodes = list(graph.node)
        nodes.remove(dq)
        for gather in readers:
            out = gather.output[0]
            gather.input[0] = dq.input[0]
            gather.output[0] = _unique(graph, f"{out}_quantized")
            after = make_node("DequantizeLinear", [gather.output[0], *dq.input[1:]], [out],
                              name=f"{gather.name}_dequantize")
            nodes.insert(nodes.index(gather) + 1, after)
        del graph.node[:]
        graph.node.extend(nodes)
    return graph


# -- 4. the guard -----------------------------------------------------------------------------------------
def _all_graphs(graph: onnx.GraphProto, path: str = ""):
    yield path, graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _all_graphs(attr.g, f"{path}{node.name}/")


def check_matmuls_quantized(model: onnx.ModelProto) -> None:
    """Raise ConversionError if a MatMul (in any graph) reads a tensor that no DequantizeLinear wrote."""
    float_matmuls = []
    for path, graph in _all_graphs(model.graph):
        dequantized = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
        for node in graph.node:
            if node.op_type in ("MatMul", "Gemm") and not all(i in dequantized for i in node.input[:2]):
                float_matmuls.append(path + node.name)
    if float_matmuls:
        raise ConversionError(f"int8 graph has float matrix products left: {float_matmuls}")
