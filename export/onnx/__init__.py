"""ONNX export: every file's graph written from the Keras weights with native ONNX ops, through one builder.

    graph.py         the builder and what every file shares: names, the cell's window and pad-state start,
                     the head (Dense + n-gram branch + Sigmoid, or Softmax for 3+ labels), opset and IR version
    fp32.py          the recurrence as one native GRU/LSTM node (a SimpleRNN as a GRU)
    fp16.py          fp32 with float16 weights (to_fp16)
    dynamic_int8.py  fp32 with onnxruntime's dynamic quantizer on its Gathers
    qdq.py           the QDQ rewrites, each a small named step: 8-bit initializers, Q/DQ pairs, 8-bit Gathers
    int8.py          the recurrence as a Scan of MatMuls, calibrated and put in QDQ form by qdq.py's rewrites
    export.py        one file of a precision: metadata, checker, seal, atomic write
    describe.py      a file's operators and quantized nodes, for the manifest
    reference.py     tf2onnx's conversion of the Keras model, for a parity check

Each module imports only modules listed before it.
"""
from __future__ import annotations

from .describe import describe_onnx
from .export import build_onnx, export_onnx
from .fp32 import build_fp32
from .graph import INPUT_NAME, IR_VERSION, OPSET, OUTPUT_NAME
from .int8 import build_int8

__all__ = ["INPUT_NAME", "IR_VERSION", "OPSET", "OUTPUT_NAME", "build_fp32", "build_int8", "build_onnx",
           "describe_onnx", "export_onnx"]
