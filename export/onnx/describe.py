"""What the manifest says of an ONNX file: its operators, opset and quantized nodes."""
from __future__ import annotations

import os

import onnx
from onnx import TensorProto


def describe_onnx(path: str | os.PathLike) -> dict:
    """Operators, opset and which nodes run on quantized data, for the manifest.

    Subgraphs count too: a node of the int8 file's Scan body is listed as
    ``recurrence/<node>``. A node is quantized when it reads or writes 8-bit
    data (an int8/uint8 initializer, a QuantizeLinear, a Gather of 8-bit rows)
    or is a MatMul between DequantizeLinear outputs (the QDQ form that
    runtimes run as an integer matmul).
    """
    model = onnx.load(os.fspath(path))
    quantized, ops = set(), set()

    def walk(graph: onnx.GraphProto, prefix: str, outer_8bit: frozenset) -> None:
        eight_bit = set(outer_8bit) | {i.name for i in graph.initializer
                                       if i.data_type in (TensorProto.INT8, TensorProto.UINT8)}
        dequantized = set()
        for node in graph.node:
            ops.add((f"{node.domain}." if node.domain else "") + node.op_type)
            reads_8bit = any(i in eight_bit for i in node.input)
            qdq_matmul = node.op_type in ("MatMul", "Gemm") and all(i in dequantized for i in node.input[:2])
            if reads_8bit or qdq_matmul:
                quantized.add(f"{prefix}{node.name} ({node.op_type})")
            if node.op_type in ("QuantizeLinear", "DynamicQuantizeLinear") or \
                    (node.op_type == "Gather" and node.input[0] in eight_bit):
                eight_bit.add(node.output[0])
            if node.op_type == "DequantizeLinear":
                dequantized.add(node.output[0])
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    walk(attr.g, f"{prefix}{node.name}/", frozenset(eight_bit))

    walk(model.graph, "", frozenset())
    return {
        "ops": sorted(ops),
        "opset": {imp.domain or "ai.onnx": imp.version for imp in model.opset_import},
        "quantized_nodes": sorted(quantized),
    }
