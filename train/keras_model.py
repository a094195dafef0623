"""Keras models: ids -> [n-gram branch] + Dense(cell(Embedding(last window ids))) -> sigmoid or softmax.

The layers compute exactly what ``sentilite.runtime.recurrence`` computes in
numpy, which every exported graph is checked against.
"""
from __future__ import annotations

import os

import keras

from sentilite.runtime.architecture import ModelConfig
from sentilite.runtime.recurrence import EMPTY_FINGERPRINT, FINGERPRINT_MODULUS, dictionary_groups, trigram_modulus
from sentilite.runtime.tokenizer import TokenizerConfig

NGRAM_LAYER = "ngrams"
CELL_LOGIT_LAYER = "cell_logit"
OUTPUT_LAYER = "positive"  # two labels: one output, P(labels[1])
PROBABILITIES_LAYER = "probabilities"  # three or more labels: a softmax over them


def output_layer_name(model_config: ModelConfig) -> str:
    return OUTPUT_LAYER if model_config.outputs == 1 else PROBABILITIES_LAYER


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
    """The weights of a row's unigrams and bigrams (and trigrams), summed and divided by sqrt(their count).

    ``recurrence.ngram_logit`` in Keras: row 0 of the table (padding) is
    zero, and an n-gram with a padding id, or one the dictionary does not
    hold, reads it. The tables are fitted outside Keras (train.ngrams) and
    stay frozen; the dictionary's integers are kept as float32 weights
    (exact below 2**24) so the layer saves like any other. With ``outputs``
    > 1 each table row holds one weight per label, and the layer gives one
    logit per label.
    """

    def __init__(self, vocab_size: int, buckets: int, lookup: str = "hashed", outputs: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.buckets, self.lookup = int(vocab_size), int(buckets), str(lookup)
        self.outputs = int(outputs)

    def build(self, input_shape):
        rows = self.vocab_size + self.buckets
        self.table = self.add_weight(name="table", shape=(rows,) if self.outputs == 1 else (rows, self.outputs),
                                     initializer="zeros", trainable=False)
        if self.lookup == "dictionary":
            self.displacements = self.add_weight(name="displacements", shape=(dictionary_groups(self.buckets),),
                                                 initializer="zeros", trainable=False)
            self.fingerprints = self.add_weight(name="fingerprints", shape=(self.buckets,),
                                                initializer=keras.initializers.Constant(EMPTY_FINGERPRINT),
                                                trainable=False)

    def call(self, ids):
        ops = keras.ops
        ids = ops.cast(ids, "int32")
        real = ops.not_equal(ids, 0)
        v = self.vocab_size
        prev, cur = ids[:, :-1], ids[:, 1:]
        both = ops.logical_and(real[:, :-1], real[:, 1:])
        if self.lookup == "dictionary":
            pair = prev * v + cur
            triple = v * v + ops.mod(pair[:, :-1], trigram_modulus(v)) * v + ids[:, 2:]
            keys = ops.concatenate([pair, triple], axis=1)
            valid = ops.concatenate([both, ops.logical_and(both[:, :-1], real[:, 2:])], axis=1)
            displacement = ops.cast(ops.take(self.displacements, ops.mod(keys, self.displacements.shape[0])), "int32")
            slot = ops.mod(ops.mod(keys, self.buckets) + displacement, self.buckets)
            stored = ops.cast(ops.take(self.fingerprints, slot), "int32")
            found = ops.logical_and(valid, ops.equal(stored, ops.mod(keys, FINGERPRINT_MODULUS)))
            longer = ops.where(found, slot + v, ops.zeros_like(slot))
        else:
            code = ops.mod(prev * v + cur, self.buckets)
            longer = ops.where(both, code + v, ops.zeros_like(code))
            valid = both
        rows = ops.concatenate([ids, longer], axis=1)
        total = ops.sum(ops.take(self.table, rows, axis=0), axis=1)
        count = ops.sum(ops.cast(real, "float32"), axis=1) + ops.sum(ops.cast(valid, "float32"), axis=1)
        scale = ops.sqrt(ops.maximum(count, 1.0))
        if self.outputs == 1:
            return ops.expand_dims(total / scale, -1)
        return total / ops.expand_dims(scale, -1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.outputs)

    def get_config(self):
        config = {**super().get_config(), "vocab_size": self.vocab_size, "buckets": self.buckets,
                  "lookup": self.lookup}
        if self.outputs != 1:  # models of two labels save as they always did
            config["outputs"] = self.outputs
        return config


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
        self.layers.append(keras.layers.Dense(c.outputs, name=CELL_LOGIT_LAYER))

    def __call__(self, window_ids):
        x = window_ids
        for layer in self.layers:
            x = layer(x)
        return x


def build_model(model_config: ModelConfig, tokenizer_config: TokenizerConfig) -> tuple[keras.Model, keras.Model]:
    """(the model that is saved and exported, the cell alone as it is trained).

    The cell model reads the last ``window`` ids and answers sigmoid(cell
    logit), or the softmax of its logits for three or more labels; the saved
    model adds the n-gram branch's logits to the same cell's. Both share
    their layers, so training one trains the other.
    """
    maxlen = tokenizer_config.maxlen
    activation = "sigmoid" if model_config.outputs == 1 else "softmax"
    cell = CellBranch(model_config, tokenizer_config)
    window_in = keras.Input(shape=(cell.steps,), dtype="int32", name="window_ids")
    cell_model = keras.Model(window_in, keras.layers.Activation(activation)(cell(window_in)), name="cell")
    ids = keras.Input(shape=(maxlen,), dtype="int32", name="ids")
    window = ids if cell.steps == maxlen else LastSteps(cell.steps, name="window")(ids)
    logit = cell(window)
    if model_config.ngram_buckets:
        ngram = NgramLogit(tokenizer_config.vocab_size, model_config.ngram_buckets, model_config.ngram_lookup,
                           outputs=model_config.outputs, name=NGRAM_LAYER)(ids)
        logit = keras.layers.Add(name="logit")([logit, ngram])
    model = keras.Model(ids, keras.layers.Activation(activation, name=output_layer_name(model_config))(logit),
                        name=f"sentilite_{model_config.cell}")
    return model, cell_model


def load_keras_model(path: str | os.PathLike) -> keras.Model:
    """Load a saved model; importing this module registers the custom layers."""
    return keras.saving.load_model(os.fspath(path), compile=False)


def count_weights(model: keras.Model) -> int:
    return int(sum(int(w.numpy().size) for w in model.weights))
