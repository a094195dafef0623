"""model.fp16.onnx: the fp32 graph with its weights stored as float16 and computed in float32.

onnxruntime's CPU provider has no float16 RNN/LSTM/GRU kernels, so only the
storage changes (``to_fp16``). The 8-bit files use the same rewrite for their
pad-state tables (``pad_states_to_fp16``).
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from .fp32 import build_fp32
from .graph import PAD_STATE_TABLES, TABLES, make_node


def to_fp16(model_fp32: onnx.ModelProto, only: tuple[str, ...] | None = None) -> onnx.ModelProto:
    """Weights stored as float16, computed in float32 (all of them, or the initializers named in ``only``).

    The small weights get a Cast each, which onnxruntime folds at load time;
    the tables (embedding, n-gram weights) are gathered in float16 and only
    the gathered rows are cast up.
    """
    model = onnx.ModelProto()
    model.CopyFrom(model_fp32)
    graph = model.graph
    initializers, casts = [], []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT or (only is not None and init.name not in only):
            initializers.append(init)
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name + "_fp16")
        initializers.append(half)
        if init.name not in TABLES:
            casts.append(make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT, name=f"cast_{init.name}"))
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    nodes = []
    for node in graph.node:
        if node.op_type == "Gather" and node.input[0] in TABLES and (only is None or node.input[0] in only):
            node.input[0] = node.input[0] + "_fp16"
            out = node.output[0]
            node.output[0] = out + "_fp16"
            nodes += [node, make_node("Cast", [node.output[0]], [out], to=TensorProto.FLOAT, name=f"cast_{node.name}")]
        else:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    return model


def pad_states_to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """An 8-bit file's pad-state tables stored as float16.

    They stay float (tiny, and they start every row) but in a small LSTM
    they would otherwise be ~10% of an 8-bit file.
    """
    return to_fp16(model, only=PAD_STATE_TABLES)


def build_fp16(ctx, name: str = "sentilite") -> onnx.ModelProto:
    return to_fp16(build_fp32(ctx, name))
