"""Keras models: ids -> [n-gram branch] + Dense(cell(Embedding(last window ids))) -> sigmoid.

The layers compute exactly what ``sentilite.runtime.recurrence`` computes in
numpy, which every exported graph is checked against.
"""
from __future__ import annotations

import os

import keras

from sentilite.runtime.architecture import ModelConfig
from sentilite.runtime.tokenizer import TokenizerConfig

NGRAM_LAYER = "ngrams"
CELL_LOGIT_LAYER = "cell_logit"
OUTPUT_LAYER = "positive"


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


@keras.saving.register_keras_serializable(package="sentilite")
class LastSteps(keras.layers.Layer):
    """The last ``steps`` ids of each row: the cell reads the end of a review, where its verdict usually is."""

    def __init__(self, steps: int, **kwargs):
        super().__init__(**kwargs)
        self.steps = int(steps)

    def call(self, ids):
        return ids[:, -self.steps:]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.steps)

    def get_config(self):
        return {**super().get_config(), "steps": self.steps}


@keras.saving.register_keras_serializable(package="sentilite")
class NgramLogit(keras.layers.Layer):
    """Unigram and hashed-bigram weights of a row, summed and divided by sqrt(their count).

    ``recurrence.ngram_logit`` in Keras: row 0 of the table (padding) is
    zero and a bigram with a padding id reads it. The table is fitted
    outside Keras (train.ngrams) and stays frozen.
    """

    def __init__(self, vocab_size: int, buckets: int, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.buckets = int(vocab_size), int(buckets)

    def build(self, input_shape):
        self.table = self.add_weight(name="table", shape=(self.vocab_size + self.buckets,), initializer="zeros",
                                     trainable=False)

    def call(self, ids):
        ops = keras.ops
        ids = ops.cast(ids, "int32")
        real = ops.not_equal(ids, 0)
        prev, cur = ids[:, :-1], ids[:, 1:]
        both = ops.logical_and(real[:, :-1], real[:, 1:])
        code = ops.mod(prev * self.vocab_size + cur, self.buckets)
        bigram = ops.where(both, code + self.vocab_size, ops.zeros_like(code))
        rows = ops.concatenate([ids, bigram], axis=1)
        total = ops.sum(ops.take(self.table, rows, axis=0), axis=1)
        count = ops.sum(ops.cast(real, "float32"), axis=1) + ops.sum(ops.cast(both, "float32"), axis=1)
        return ops.expand_dims(total / ops.sqrt(ops.maximum(count, 1.0)), -1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "buckets": self.buckets}


_CELL_LAYERS = {"rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


class CellBranch:
    """The cell's layers, shared by the saved model and by the stage-2 training model."""

    def __init__(self, model_config: ModelConfig, tokenizer_config: TokenizerConfig):
        c = model_config
        self.steps = c.steps(tokenizer_config.maxlen)
        self.layers = []
        if c.input == "onehot":
            self.layers.append(OneHot(tokenizer_config.vocab_size, name="onehot"))
        else:
            self.layers.append(keras.layers.Embedding(tokenizer_config.vocab_size, c.embedding_dim, name="embedding"))
        if c.embedding_dropout:
            self.layers.append(keras.layers.SpatialDropout1D(c.embedding_dropout, name="embedding_dropout"))
        self.layers.append(_CELL_LAYERS[c.cell](c.units, name=c.cell))
        if c.dropout:
            self.layers.append(keras.layers.Dropout(c.dropout, name="dropout"))
        self.layers.append(keras.layers.Dense(1, name=CELL_LOGIT_LAYER))

    def __call__(self, window_ids):
        x = window_ids
        for layer in self.layers:
            x = layer(x)
        return x


def build_model(model_config: ModelConfig, tokenizer_config: TokenizerConfig) -> tuple[keras.Model, keras.Model]:
    """(the model that is saved and exported, the cell alone as it is trained).

    The cell model reads the last ``window`` ids and answers sigmoid(cell
    logit); the saved model adds the n-gram branch's logit to the same
    cell's. Both share their layers, so training one trains the other.
    """
    maxlen = tokenizer_config.maxlen
    cell = CellBranch(model_config, tokenizer_config)
    window_in = keras.Input(shape=(cell.steps,), dtype="int32", name="window_ids")
    cell_model = keras.Model(window_in, keras.layers.Activation("sigmoid")(cell(window_in)), name="cell")
    ids = keras.Input(shape=(maxlen,), dtype="int32", name="ids")
    window = ids if cell.steps == maxlen else LastSteps(cell.steps, name="window")(ids)
    logit = cell(window)
    if model_config.ngram_buckets:
        ngram = NgramLogit(tokenizer_config.vocab_size, model_config.ngram_buckets, name=NGRAM_LAYER)(ids)
        logit = keras.layers.Add(name="logit")([logit, ngram])
    model = keras.Model(ids, keras.layers.Activation("sigmoid", name=OUTPUT_LAYER)(logit),
                        name=f"sentilite_{model_config.cell}")
    return model, cell_model


def load_keras_model(path: str | os.PathLike) -> keras.Model:
    """Load a saved model; importing this module registers the custom layers."""
    return keras.saving.load_model(os.fspath(path), compile=False)


def count_weights(model: keras.Model) -> int:
    return int(sum(int(w.numpy().size) for w in model.weights))
