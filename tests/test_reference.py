"""tf2onnx's conversion of the Keras forward function against the hand-built fp32 graph, on real reviews.

Two independent converters of the same trained model: tf2onnx traces the
Keras layers (custom ones included) and writes the recurrence its own way;
``to_onnx`` writes a native recurrent node from the weights and starts short
rows from the pad state. They must agree to the fp32 file's tolerance.
"""
import numpy as np
import pytest

pytestmark = pytest.mark.integration

CELLS = ("rnn", "lstm", "gru")
REVIEWS = 300


class _OnnxRows:
    """Rows cut as the runtime cuts them (runtime.model.run_batches), run by onnxruntime."""

    variable_length = True

    def __init__(self, model):
        import onnxruntime as ort

        self.session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])

    def run(self, ids):
        return self.session.run(None, {"ids": np.ascontiguousarray(ids, np.int32)})[0].reshape(-1)


@pytest.fixture(scope="module")
def test_reviews(imdb):
    from sentilite.train.data import subset

    return subset(imdb.test, REVIEWS, seed=0).texts


@pytest.mark.parametrize("cell", CELLS)
def test_tf2onnx_reference_matches_the_hand_built_fp32_graph(trained_models, test_reviews, cell):
    from sentilite import LABELS
    from sentilite.export.package import read_model_folder
    from sentilite.export.onnx import build_fp32
    from sentilite.export.onnx.reference import reference_onnx, run_reference
    from sentilite.export.registry import ExportContext
    from sentilite.export.validate import ValidationConfig, compare
    from sentilite.export.weights import extract_weights
    from sentilite.runtime.model import run_batches
    from sentilite.train.fit import MODEL_FILE
    from sentilite.train.keras_model import load_keras_model

    folder = trained_models[cell][0]
    run_config, tokenizer_bytes, tokenizer = read_model_folder(folder)
    keras_model = load_keras_model(folder / MODEL_FILE)
    maxlen = tokenizer.config.maxlen
    ids = tokenizer.encode_batch(test_reviews)
    assert ids.shape == (REVIEWS, maxlen)

    reference = reference_onnx(keras_model, maxlen)
    # tf2onnx's own recurrence: a Loop for SimpleRNN and GRU, its LSTM rewriter's native node for LSTM.
    assert {"Loop", "LSTM"} & {node.op_type for node in reference.graph.node}
    ctx = ExportContext(weights=extract_weights(keras_model, run_config.model), model=run_config.model,
                        maxlen=maxlen, vocab_size=tokenizer.config.vocab_size, name=run_config.name,
                        calibration_ids=ids[:0], tokenizer_json=tokenizer_bytes, labels=LABELS)
    hand_built = run_batches(_OnnxRows(build_fp32(ctx)), ids, 64)  # cut rows, as the runtime runs them
    tf2onnx_probs = run_reference(reference, ids)

    fp32 = ValidationConfig().for_precision("fp32")
    stats = compare(tf2onnx_probs, hand_built)
    assert stats["n"] == REVIEWS
    assert stats["max_abs_diff"] <= fp32.max_abs_diff and stats["agreement"] == 1.0, stats
    # Both against Keras itself, so a failure says which converter drifted.
    keras = keras_model.predict(ids, batch_size=256, verbose=0).reshape(-1)
    assert compare(keras, tf2onnx_probs)["max_abs_diff"] <= fp32.max_abs_diff
    assert compare(keras, hand_built)["max_abs_diff"] <= fp32.max_abs_diff


def test_a_forward_function_tf2onnx_cannot_trace_raises_conversion_error():
    from sentilite.export.errors import ConversionError
    from sentilite.export.onnx.reference import reference_onnx

    def broken(ids, training=False):
        raise NotImplementedError("no forward pass")

    with pytest.raises(ConversionError, match="NotImplementedError: no forward pass"):
        reference_onnx(broken, maxlen=8)
