"""Keras model -> named float32 arrays: the single source every exporter builds from."""
from __future__ import annotations

import numpy as np

from sentilite.runtime.architecture import ModelConfig
from sentilite.runtime.recurrence import NgramDictionary


def extract_weights(model, config: ModelConfig) -> dict[str, np.ndarray]:
    """Weights under the names the numpy runtime reads (no embedding for one-hot input).

    Models saved before the n-gram branch name their output Dense "positive".
    """
    from sentilite.train.keras_model import CELL_LOGIT_LAYER, NGRAM_LAYER

    layers = {layer.name: layer for layer in model.layers}
    weights: dict[str, np.ndarray] = {}
    if "embedding" in layers:
        weights["embedding"] = layers["embedding"].get_weights()[0]
    kernel, recurrent_kernel, bias = layers[config.cell].get_weights()
    weights.update(kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias)
    dense = layers.get(CELL_LOGIT_LAYER) or layers["positive"]
    dense_kernel, dense_bias = dense.get_weights()
    weights.update(dense_kernel=dense_kernel, dense_bias=dense_bias)
    if config.ngram_buckets:
        table = np.array(layers[NGRAM_LAYER].get_weights()[0], dtype=np.float32)
        table[0] = 0.0  # padding (recurrence.ngram_rows)
        weights["ngram_weights"] = table
    if config.ngram_dictionary:
        displacements, fingerprints = layers[NGRAM_LAYER].get_weights()[1:]
        weights.update(ngram_displacements=displacements, ngram_fingerprints=fingerprints)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}


def ngram_dictionary(model: ModelConfig, weights: dict[str, np.ndarray]) -> NgramDictionary | None:
    """The model's dictionary, its arrays checked, or None for a hashed branch or none."""
    if not model.ngram_dictionary:
        return None
    return NgramDictionary(weights["ngram_displacements"], weights["ngram_fingerprints"])
