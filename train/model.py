"""Keras models: ids -> Embedding (or in-model one-hot) -> SimpleRNN/LSTM/GRU -> sigmoid."""
from __future__ import annotations

import os

import keras

from sentilite.runtime.tokenizer import TokenizerConfig

from .config import ModelConfig


@keras.saving.register_keras_serializable(package="sentilite")
class OneHot(keras.layers.Layer):
    """One-hot encodes ids inside the model, batch by batch.

    The notebook built all one-hot vectors up front (18,750 x 100 x 300
    floats) and ran out of memory; here memory follows the batch, not the data.
    """

    def __init__(self, depth: int, **kwargs):
        super().__init__(**kwargs)
        self.depth = int(depth)

    def call(self, ids):
        return keras.ops.one_hot(ids, self.depth)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.depth)

    def get_config(self):
        return {**super().get_config(), "depth": self.depth}


_CELL_LAYERS = {"rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


def build_model(model_config: ModelConfig, tokenizer_config: TokenizerConfig) -> keras.Model:
    ids = keras.Input(shape=(tokenizer_config.maxlen,), dtype="int32", name="ids")
    if model_config.input == "onehot":
        x = OneHot(tokenizer_config.vocab_size, name="onehot")(ids)
    else:
        x = keras.layers.Embedding(tokenizer_config.vocab_size, model_config.embedding_dim, name="embedding")(ids)
    if model_config.embedding_dropout:
        x = keras.layers.SpatialDropout1D(model_config.embedding_dropout, name="embedding_dropout")(x)
    x = _CELL_LAYERS[model_config.cell](model_config.units, name=model_config.cell)(x)
    if model_config.dropout:
        x = keras.layers.Dropout(model_config.dropout, name="dropout")(x)
    positive = keras.layers.Dense(1, activation="sigmoid", name="positive")(x)
    return keras.Model(ids, positive, name=f"sentilite_{model_config.cell}")


def load_keras_model(path: str | os.PathLike) -> keras.Model:
    """Load a saved model; importing this module registers the custom layers."""
    return keras.saving.load_model(os.fspath(path), compile=False)


def count_weights(model: keras.Model) -> int:
    return int(sum(int(w.numpy().size) for w in model.weights))
