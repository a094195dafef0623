"""Keras model -> named float32 arrays: the single source every exporter builds from."""
from __future__ import annotations

import numpy as np


def extract_weights(model, cell: str) -> dict[str, np.ndarray]:
    """Weights under the names the numpy runtime reads (no embedding for one-hot input)."""
    layers = {layer.name: layer for layer in model.layers}
    weights: dict[str, np.ndarray] = {}
    if "embedding" in layers:
        weights["embedding"] = layers["embedding"].get_weights()[0]
    kernel, recurrent_kernel, bias = layers[cell].get_weights()
    weights.update(kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias)
    dense_kernel, dense_bias = layers["positive"].get_weights()
    weights.update(dense_kernel=dense_kernel, dense_bias=dense_bias)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}
