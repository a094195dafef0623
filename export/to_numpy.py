"""The numpy backend's file: a plain .npz of float32 arrays plus JSON metadata (never a pickle)."""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np

from sentilite.shared.files import atomic_write_bytes
from sentilite.shared.seal import SEAL_KEY


def export_numpy(weights: dict[str, np.ndarray], path: str | os.PathLike, *, metadata: dict[str, str]) -> Path:
    arrays = {name: np.asarray(value, dtype=np.float32) for name, value in weights.items()}
    # Zip CRCs guard an .npz's arrays; the seal is for the ONNX and TFLite files.
    metadata = {k: v for k, v in metadata.items() if k != SEAL_KEY}
    arrays["__metadata__"] = np.frombuffer(json.dumps(metadata).encode("utf-8"), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return atomic_write_bytes(path, buffer.getvalue())


def export_numpy_file(ctx, precision: str, path: str | os.PathLike, *, metadata: dict[str, str]) -> Path:
    """The registry's writer: the numpy file holds float32 weights whatever the precision asked."""
    return export_numpy(ctx.weights, path, metadata=metadata)


def describe_numpy(path: str | os.PathLike) -> dict:
    with np.load(path, allow_pickle=False) as npz:
        arrays = sorted(k for k in npz.files if k != "__metadata__")
    return {"ops": ["numpy:" + name for name in arrays], "quantized_nodes": []}
