"""A second converter's view of the model: tf2onnx's conversion of the Keras model's forward function.

The shipped ONNX files are written from the weights (``fp32.py``, ``int8.py``), because
tf2onnx's ``from_keras`` does not read Keras 3 models
(onnx/tensorflow-onnx#2329, #2348). Its ``from_function`` does: it traces
``model(ids)`` through TensorFlow, custom layers (``LastSteps``,
``NgramLogit``) included, and converts the traced ops. That file is never
shipped (for SimpleRNN and GRU its recurrence is a ``Loop`` of small ops,
several times slower than the native cell), but it is an independent
conversion of the same model, so a parity test (tests/test_reference.py)
holds the hand-built graph to it on real reviews.
"""
from __future__ import annotations

import numpy as np
import onnx

from ..errors import ConversionError
from .graph import INPUT_NAME, OPSET


def reference_onnx(keras_model, maxlen: int, opset: int = OPSET) -> onnx.ModelProto:
    """tf2onnx's ONNX of ``keras_model``: int32 ids (batch, maxlen) -> P(positive) (batch, 1), or (batch, N)."""
    import tensorflow as tf
    import tf2onnx

    signature = (tf.TensorSpec((None, maxlen), tf.int32, name=INPUT_NAME),)
    forward = tf.function(lambda ids: keras_model(ids, training=False), input_signature=signature)
    try:
        model, _ = tf2onnx.convert.from_function(forward, input_signature=signature, opset=opset)
    except Exception as exc:  # tf2onnx raises whatever the traced graph or its handlers raise
        raise ConversionError(f"tf2onnx could not convert the model's forward function: "
                              f"{type(exc).__name__}: {exc}") from exc
    if len(model.graph.input) != 1 or len(model.graph.output) != 1:
        raise ConversionError(f"tf2onnx wrote {len(model.graph.input)} inputs and {len(model.graph.output)} "
                              "outputs; the model has one of each")
    return model


def run_reference(model: onnx.ModelProto, ids: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The reference's answer on whole padded rows, with onnxruntime: P(positive) (n,), or (n, N) for N labels."""
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    ids = np.asarray(ids, np.int32)
    out = [session.run(None, {name: ids[i: i + batch_size]})[0] for i in range(0, len(ids), batch_size)]
    if not out:
        return np.zeros(0, np.float32)
    answers = np.concatenate(out)
    return answers.reshape(-1) if answers.shape[-1] == 1 else answers
