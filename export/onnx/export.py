"""One ONNX file of a precision: its graph, the package's metadata, the checker, the seal, an atomic write."""
from __future__ import annotations

import os
from pathlib import Path

import onnx

from sentilite.shared.files import atomic_write_bytes
from sentilite.shared.seal import seal

from .dynamic_int8 import build_dynamic_int8
from .fp16 import build_fp16, pad_states_to_fp16
from .fp32 import build_fp32
from .int8 import build_int8


def build_onnx(ctx, precision: str, name: str = "sentilite") -> onnx.ModelProto:
    """The model of one precision: the fp32 graph, or a rewrite of it (fp16, dynamic-int8), or the int8 Scan graph."""
    if precision == "fp32":
        return build_fp32(ctx, name)
    if precision == "fp16":
        return build_fp16(ctx, name)
    if precision == "dynamic-int8":
        return build_dynamic_int8(ctx, name)
    if precision == "int8":
        # Every matrix product on int8 weights, the recurrent one inside a Scan included (int8.py).
        return pad_states_to_fp16(build_int8(ctx, name))
    raise ValueError(f"unknown precision {precision!r}")


def set_metadata(model: onnx.ModelProto, metadata: dict[str, str]) -> onnx.ModelProto:
    existing = {prop.key: prop for prop in model.metadata_props}
    for key, value in metadata.items():
        if key in existing:
            existing[key].value = value
        else:
            model.metadata_props.add(key=key, value=value)
    return model


def export_onnx(ctx, precision: str, path: str | os.PathLike, *, metadata: dict[str, str]) -> Path:
    """Write one ONNX file (atomically) and return its path; raises if the checker refuses it."""
    model = set_metadata(build_onnx(ctx, precision, ctx.name), metadata)
    onnx.checker.check_model(model, full_check=True)
    return atomic_write_bytes(path, seal(model.SerializeToString()))
