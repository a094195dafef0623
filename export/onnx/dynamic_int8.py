"""model.dynamic-int8.onnx: onnxruntime's dynamic quantizer on the fp32 graph, which quantizes only its Gathers.

onnxruntime has no quantized GRU/LSTM/RNN kernel, so the native cell stays
float; the static int8 file (int8.py) rewrites the cell instead.
"""
from __future__ import annotations

import os
import tempfile

import onnx

from .fp16 import pad_states_to_fp16
from .fp32 import build_fp32
from .graph import NGRAM_DISPLACEMENT_GATHER, NGRAM_FINGERPRINT_GATHER, PAD_STATE_GATHERS

# The pad-state tables are tiny and start every row: they stay float (stored as float16, pad_states_to_fp16).
# A dictionary's integer tables are already 8 and 16 bits.
_NOT_QUANTIZED = [*PAD_STATE_GATHERS, NGRAM_DISPLACEMENT_GATHER, NGRAM_FINGERPRINT_GATHER]


def quantize_gathers(model_fp32: onnx.ModelProto) -> onnx.ModelProto:
    """The fp32 graph's table Gathers on int8 rows (onnxruntime.quantization.quantize_dynamic)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="sentilite-onnx-") as tmp:
        src, dst = os.path.join(tmp, "fp32.onnx"), os.path.join(tmp, "q.onnx")
        onnx.save_model(model_fp32, src)
        quantize_dynamic(src, dst, op_types_to_quantize=["Gather"], weight_type=QuantType.QInt8, per_channel=False,
                         nodes_to_exclude=list(_NOT_QUANTIZED))
        return onnx.load(dst)


def build_dynamic_int8(ctx, name: str = "sentilite") -> onnx.ModelProto:
    return pad_states_to_fp16(quantize_gathers(build_fp32(ctx, name)))
