"""Rows shorter than maxlen: the state the padding would reach replaces the padding, exactly."""
import numpy as np
import pytest

from sentilite.runtime.model import run_batches
from sentilite.runtime.numpy_model import NumpyRecurrentModel

CELLS = ("rnn", "lstm", "gru")
MAXLEN = 60


def random_weights(cell: str, vocab=50, emb=8, units=6, seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    weights = {
        "embedding": rng.normal(0, 0.5, (vocab, emb)),
        "kernel": rng.normal(0, 0.5, (emb, gates * units)),
        "recurrent_kernel": rng.normal(0, 0.25, (units, gates * units)),  # contractive: converges
        "bias": rng.normal(0, 0.1, (2, gates * units) if cell == "gru" else (gates * units,)),
        "dense_kernel": rng.normal(0, 1.0, (units, 1)),
        "dense_bias": rng.normal(0, 0.1, (1,)),
    }
    return {k: v.astype(np.float32) for k, v in weights.items()}


def padded_rows(lengths, vocab=50, seed=1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ids = np.zeros((len(lengths), MAXLEN), np.int32)
    for row, n in enumerate(lengths):
        if n:
            ids[row, MAXLEN - n:] = rng.integers(1, vocab, n)
    return ids


def trimmed(ids: np.ndarray) -> list[np.ndarray]:
    """Each row alone, without its leading padding (one id at least)."""
    out = []
    for row in ids:
        start = int(np.argmax(row != 0)) if row.any() else MAXLEN - 1
        out.append(row[None, start:])
    return out


@pytest.mark.parametrize("cell", CELLS)
def test_pad_states_start_at_zero_and_stop_once_converged(cell):
    model = NumpyRecurrentModel(cell, random_weights(cell))
    states = model.pad_states(MAXLEN)
    assert len(states) == (2 if cell == "lstm" else 1)
    assert not states[0][0].any()  # no padding read yet: the zero state
    full = NumpyRecurrentModel(cell, random_weights(cell)).pad_states(MAXLEN, tolerance=0.0)
    assert len(states[0]) < len(full[0]) <= MAXLEN + 1
    k = len(states[0]) - 1
    for short, whole in zip(states, full):
        np.testing.assert_array_equal(short, whole[: k + 1])
        assert np.abs(whole[k:] - short[k]).max() <= 1e-6


@pytest.mark.parametrize("cell", CELLS)
def test_numpy_model_reads_short_rows_as_left_padded(cell):
    model = NumpyRecurrentModel(cell, random_weights(cell), maxlen=MAXLEN)
    ids = padded_rows([0, 1, 3, 17, 59, 60])
    full = model.predict_positive(ids)
    short = np.concatenate([model.predict_positive(row) for row in trimmed(ids)])
    np.testing.assert_allclose(short, full, atol=2e-6)
    with pytest.raises(ValueError, match="longer than the model's 60"):
        model.predict_positive(np.ones((1, MAXLEN + 1), np.int32))


@pytest.mark.parametrize("cell", CELLS)
def test_onnx_graph_reads_short_rows_as_left_padded(cell):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from sentilite.export.to_onnx import build_fp32

    weights = random_weights(cell)
    reference = NumpyRecurrentModel(cell, weights)  # no maxlen: always from the zero state
    session = ort.InferenceSession(build_fp32(cell, weights, MAXLEN, "test").SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    ids = padded_rows([0, 1, 3, 17, 59, 60])
    expected = reference.predict_positive(ids)
    full = session.run(None, {"ids": ids})[0].reshape(-1)
    np.testing.assert_allclose(full, expected, atol=2e-6)
    short = np.concatenate([session.run(None, {"ids": row})[0].reshape(-1) for row in trimmed(ids)])
    np.testing.assert_allclose(short, expected, atol=2e-6)
    batch = session.run(None, {"ids": ids[2:5, MAXLEN - 17:]})[0].reshape(-1)  # the longest of 3, 17, 59 ... cut
    np.testing.assert_allclose(batch[:2], expected[2:4], atol=2e-6)


class RecordingBackend:
    variable_length = True

    def __init__(self, model):
        self.model, self.widths = model, []

    def run(self, ids):
        self.widths.append(ids.shape)
        return self.model.predict_positive(ids)


def test_run_batches_groups_by_length_and_keeps_input_order():
    model = NumpyRecurrentModel("gru", random_weights("gru"), maxlen=MAXLEN)
    lengths = [60, 2, 0, 30, 3, 31, 1, 59]
    ids = padded_rows(lengths)
    backend = RecordingBackend(model)
    out = run_batches(backend, ids, batch_size=3)
    np.testing.assert_allclose(out, model.predict_positive(ids), atol=2e-6)
    # lengths 60 2 0 30 3 31 1 59 -> widths rounded up to 16s, at most 60: 60 16 16 32 16 32 16 60
    assert backend.widths == [(3, 16), (1, 16), (2, 32), (2, 60)]

    backend.widths.clear()
    run_batches(backend, padded_rows([0, 0]), batch_size=8)
    assert backend.widths == [(2, 16)]  # empty texts still get padding steps

    alone = np.concatenate([run_batches(backend, row[None], 1) for row in ids])
    np.testing.assert_array_equal(run_batches(backend, ids, 8), alone)  # neighbours never change an answer

    backend.variable_length = False  # a fixed-length file always gets whole rows, in input order
    backend.widths.clear()
    np.testing.assert_array_equal(run_batches(backend, ids, batch_size=5), model.predict_positive(ids))
    assert backend.widths == [(5, 60), (3, 60)]
