"""What the manifest says of a TFLite file: its operators, float tensors and int8 weights."""
from __future__ import annotations

import os

from .schema import builtin_code, operator_names, tensor_type_names, tflite_schema


def describe_tflite(path: str | os.PathLike) -> dict:
    """Operator names and any float tensor an operator touches (none for int8), for the manifest."""
    from tensorflow.lite.tools import flatbuffer_utils

    schema = tflite_schema()
    model = flatbuffer_utils.read_model(os.fspath(path))
    names, types = operator_names(), tensor_type_names()
    ops, float_tensors, quantized = set(), set(), set()
    for g_index, g in enumerate(model.subgraphs):
        for op in g.operators:
            builtin = builtin_code(model, op)
            name = (names.get(builtin, str(builtin)) if builtin != schema.BuiltinOperator.CUSTOM
                    else "CUSTOM:" + (model.operatorCodes[op.opcodeIndex].customCode or b"").decode())
            ops.add(name)
            for t in op.inputs:  # an operator reading constant int8 weights
                if t >= 0 and g.tensors[t].type == schema.TensorType.INT8 and g.tensors[t].buffer > 0 \
                        and model.buffers[g.tensors[t].buffer].data is not None:
                    quantized.add(f"{name} (subgraph {g_index})")
            for t in list(op.inputs) + list(op.outputs):
                if t >= 0 and types.get(g.tensors[t].type) in ("FLOAT32", "FLOAT16"):
                    float_tensors.add(f"subgraph {g_index}: {(g.tensors[t].name or b'').decode(errors='replace')}")
    return {"ops": sorted(ops), "float_tensors": sorted(float_tensors), "quantized_nodes": sorted(quantized)}
