"""The one symmetric int8 quantizer every 8-bit exporter (ONNX, TFLite, MediaPipe) stores weights with."""
from __future__ import annotations

import numpy as np


def symmetric_int8(values: np.ndarray, axis: int | None = None, levels: int = 127) -> tuple[np.ndarray, np.ndarray]:
    """(int8 values in -levels..levels, float32 scales) with zero point 0: real = q * scale.

    One scale per index of ``axis``, or one for the whole tensor (a 0-d
    array) when ``axis`` is None. -128 is left out so that negating a weight
    never overflows. An all-zero slice gets scale 1. ``levels`` below 127
    keeps the values in fewer bits (63: 7 bits) for a kernel that cannot take
    the full range.
    """
    if not 1 <= levels <= 127:
        raise ValueError(f"levels must be in 1..127, not {levels}")
    values = np.asarray(values, np.float32)
    if axis is None:
        peak = np.array(np.abs(values).max() if values.size else 0.0, np.float32)
    else:
        peak = np.abs(values).max(axis=tuple(i for i in range(values.ndim) if i != axis))
    scale = np.where(peak > 0, peak / float(levels), 1.0).astype(np.float32)
    shaped = scale if axis is None else np.expand_dims(scale, tuple(i for i in range(values.ndim) if i != axis))
    q = np.clip(np.round(values / shaped), -levels, levels).astype(np.int8)
    return q, scale
