"""The int8 loop-state rewrite, step by step, on a tiny model converted by the real converter.

One tiny LSTM (three float loop variables: h, c and the input sequence the
loop indexes) is converted full-int8 once; each test rewrites a fresh copy
of that graph. Tests that change the graph first show what happens when
the converter writes another shape: the exporter raises ConversionError
and writes no file.
"""
import copy
import stat
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("ai_edge_litert")

from sentilite.export.tflite import convert  # noqa: E402
from sentilite.export.tflite import loop_state as tg  # noqa: E402
from sentilite.export.errors import ConversionError  # noqa: E402
from sentilite.runtime.architecture import ModelConfig  # noqa: E402
from sentilite.runtime.flatbuffer import verify_tflite_model  # noqa: E402

MAXLEN, VOCAB = 12, 20
CONFIG = ModelConfig(cell="lstm", embedding_dim=4, units=4, window=8)


def _weights(config: ModelConfig, seed: int = 0) -> dict:
    from sentilite.runtime.numpy_model import expected_shapes

    rng = np.random.default_rng(seed)
    return {k: rng.normal(0, 0.4, s).astype(np.float32) for k, s in expected_shapes(config, VOCAB).items()}


def _rows(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(1, VOCAB, (n, MAXLEN)).astype(np.int32)


@pytest.fixture(scope="module")
def raw_int8() -> bytes:
    """The converter's full-int8 output before the rewrite (loop state still float)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tg, "intify_while_state", lambda model: 0)
        return convert.convert_tflite(CONFIG, _weights(CONFIG), "int8", MAXLEN, VOCAB, _rows(24))


def _graph(data: bytes):
    from tensorflow.lite.tools import flatbuffer_utils

    return flatbuffer_utils.convert_bytearray_to_object(bytearray(data))


def _bytes(model) -> bytes:
    from tensorflow.lite.tools import flatbuffer_utils

    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


@pytest.fixture
def model(raw_int8):
    return _graph(raw_int8)


def _loop(model):
    loops = tg.while_loops(model)
    assert len(loops) == 1
    return loops[0]


def _variables(model):
    g, loop, cond, body = _loop(model)
    return [tg.find_loop_variable(model, g, loop, cond, body, k) for k in tg.float_loop_variables(model, body)]


def _state_and_sequence(model):
    """(a state variable, the input-sequence variable the body passes through unchanged)."""
    variables = _variables(model)
    state = next(v for v in variables if v.body.outputs[v.index] != v.body.inputs[v.index])
    sequence = next(v for v in variables if v.body.outputs[v.index] == v.body.inputs[v.index])
    return state, sequence


def _name(model, op) -> str:
    return tg.op_name(model, op)


def _types(graph, tensors) -> list[str]:
    return [tg.type_name(graph.tensors[t].type) for t in tensors]


# -- each step on the real graph ----------------------------------------------------------------
def test_find_loop_variables_takes_the_float_ones_and_the_scale_of_the_closing_dequantize(model):
    g, loop, cond, body = _loop(model)
    outer_float = [k for k, t in enumerate(loop.inputs) if tg.type_name(g.tensors[t].type) == "FLOAT32"]
    assert tg.float_loop_variables(model, body) == outer_float and len(outer_float) == 3  # h, c, the sequence
    for var in _variables(model):
        assert _name(model, var.quantize) == "QUANTIZE" and list(var.quantize.inputs) == [body.inputs[var.index]]
        assert tg.type_name(var.int_type) == "INT8" and len(var.params.scale) == 1
        closing = tg.producer(body, body.outputs[var.index])
        if closing is not None:  # a state: the scale the new value already has, so no requantization
            assert _name(model, closing) == "DEQUANTIZE"
            assert tg.same_quantization(var.params, body.tensors[closing.inputs[0]].quantization)
        else:  # the sequence: the scale of the body's QUANTIZE
            assert tg.same_quantization(var.params, body.tensors[var.quantize.outputs[0]].quantization)


def test_retype_body_input_drops_its_quantize(model):
    for var in _variables(model):
        body, t_in, q_out = var.body, var.body.inputs[var.index], var.quantize.outputs[0]
        before = len(body.operators)
        tg.retype_body_input(model, var)
        assert len(body.operators) == before - 1 and var.quantize not in body.operators
        assert _types(body, [t_in]) == ["INT8"] and tg.same_quantization(body.tensors[t_in].quantization, var.params)
        assert not any(q_out in list(op.inputs) for op in body.operators) and q_out not in list(body.outputs)
        assert tg.consumers(body, t_in)  # what read the QUANTIZE's output reads the input now


def test_retype_body_output_bypasses_the_closing_dequantize(model):
    state, sequence = _state_and_sequence(model)
    body = state.body
    tg.retype_body_input(model, state)
    tg.retype_body_input(model, sequence)
    dequantizes = sum(_name(model, op) == "DEQUANTIZE" for op in body.operators)
    assert tg.retype_body_output(model, state) == "bypassed"
    assert sum(_name(model, op) == "DEQUANTIZE" for op in body.operators) == dequantizes - 1
    new_value = body.outputs[state.index]
    assert _types(body, [new_value]) == ["INT8"] and _name(model, tg.producer(body, new_value)) != "DEQUANTIZE"
    assert tg.retype_body_output(model, sequence) == "passthrough"


def test_retype_body_output_requantizes_when_the_closing_dequantize_reads_another_type(model):
    state, _ = _state_and_sequence(model)
    body = state.body
    closing = tg.producer(body, body.outputs[state.index])
    source = body.tensors[closing.inputs[0]]
    source.type = 7  # INT8 -> INT16 at another scale: the variable keeps its QUANTIZE's scale
    source.quantization.scale = [s * 0.5 for s in source.quantization.scale]
    state = tg.find_loop_variable(model, state.graph, state.loop, state.cond, body, state.index)
    tg.retype_body_input(model, state)
    assert tg.retype_body_output(model, state) == "requantized"
    assert _name(model, closing) == "QUANTIZE" and body.outputs[state.index] == closing.outputs[0]
    assert _types(body, closing.outputs) == ["INT8"]
    assert tg.same_quantization(body.tensors[closing.outputs[0]].quantization, state.params)


def test_retype_condition_input(model):
    for var in _variables(model):
        tg.retype_condition_input(model, var)
        t = var.cond.inputs[var.index]
        assert _types(var.cond, [t]) == ["INT8"] and tg.same_quantization(var.cond.tensors[t].quantization, var.params)


def test_retype_while_input_requantizes_a_state_and_bypasses_the_sequence(model):
    state, sequence = _state_and_sequence(model)
    g, loop = state.graph, state.loop
    feeding = tg.producer(g, loop.inputs[state.index])
    assert tg.retype_while_input(model, state) == "requantized"
    assert _name(model, feeding) == "QUANTIZE" and loop.inputs[state.index] == feeding.outputs[0]
    assert _types(g, [loop.inputs[state.index]]) == ["INT8"]
    assert tg.same_quantization(g.tensors[loop.inputs[state.index]].quantization, state.params)
    dequantize = tg.producer(g, loop.inputs[sequence.index])
    assert tg.retype_while_input(model, sequence) == "bypassed"
    assert dequantize not in g.operators and loop.inputs[sequence.index] == dequantize.inputs[0]


def test_retype_while_input_inserts_a_quantize_when_the_float_value_has_other_readers(model):
    state, _ = _state_and_sequence(model)
    g, loop = state.graph, state.loop
    w_in = loop.inputs[state.index]
    g.outputs = list(g.outputs) + [w_in]  # another reader of the float initial state
    tensors = len(g.tensors)
    assert tg.retype_while_input(model, state) == "inserted"
    inserted = g.operators[g.operators.index(loop) - 1]
    assert _name(model, inserted) == "QUANTIZE" and list(inserted.inputs) == [w_in]
    assert list(inserted.outputs) == [tensors] and loop.inputs[state.index] == tensors
    assert _types(g, [w_in, tensors]) == ["FLOAT32", "INT8"] and g.tensors[tensors].name.endswith(b"_int8")
    assert _name(model, tg.producer(g, w_in)) == "DEQUANTIZE"  # kept for the other reader


def test_retype_while_output_keeps_a_requantizing_quantize_and_drops_one_that_is_not(model):
    state, _ = _state_and_sequence(model)
    g, loop = state.graph, state.loop
    w_out = loop.outputs[state.index]
    (after,) = tg.consumers(g, w_out)
    assert tg.retype_while_output(model, state) == 0  # the converter's scale differs: a requantization
    assert _types(g, [w_out]) == ["INT8"] and after in g.operators

    fresh = _graph(_bytes(model))  # same graph, but the QUANTIZE after the loop keeps the loop's scale
    state, _ = _state_and_sequence(fresh)
    g, loop = state.graph, state.loop
    w_out = loop.outputs[state.index]
    (after,) = tg.consumers(g, w_out)
    g.tensors[after.outputs[0]].quantization = copy.deepcopy(state.params)
    readers = tg.consumers(g, after.outputs[0])
    assert tg.retype_while_output(fresh, state) == 1
    assert after not in g.operators and all(w_out in list(op.inputs) for op in readers)


def test_the_whole_rewrite_runs_on_integers_and_answers_like_the_float_loop(raw_int8):
    from ai_edge_litert.interpreter import Interpreter

    model = _graph(raw_int8)
    assert tg.intify_while_state(model) == 3
    data = _bytes(model)
    verify_tflite_model(data)
    for g in model.subgraphs:  # no operator reads or writes a float tensor any more
        for op in g.operators:
            touched = [t for t in list(op.inputs) + list(op.outputs) if t >= 0]
            assert "FLOAT32" not in _types(g, touched), _name(model, op)
    assert tg.intify_while_state(_graph(data)) == 0  # nothing left to do: the rewrite is idempotent

    def run(content, rows):
        interp = Interpreter(model_content=content)
        inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
        interp.resize_tensor_input(inp["index"], list(rows.shape))
        interp.allocate_tensors()
        interp.set_tensor(inp["index"], rows)
        interp.invoke()
        scale, zero = out["quantization"]
        return (interp.get_tensor(out["index"]).reshape(-1).astype(np.float32) - zero) * scale, scale

    rows = _rows(64, seed=5)
    before, scale = run(raw_int8, rows)
    after, _ = run(data, rows)
    assert np.abs(after - before).max() <= 4 * scale  # a few output steps of int8 rounding
    short_before, _ = run(raw_int8, rows[:, -5:])
    short_after, _ = run(data, rows[:, -5:])
    assert np.abs(short_after - short_before).max() <= 4 * scale


# -- another graph shape: ConversionError, never a broken file ------------------------------------
def _tamper_second_reader(model):
    state, _ = _state_and_sequence(model)
    other = next(op for op in state.body.operators if op is not state.quantize)
    other.inputs = list(other.inputs) + [state.body.inputs[state.index]]


def _tamper_closing_op(model):
    state, _ = _state_and_sequence(model)
    closing = tg.producer(state.body, state.body.outputs[state.index])
    closing.opcodeIndex = next(op.opcodeIndex for op in state.body.operators if _name(model, op) == "TANH")


def _tamper_body_reads_new_value(model):
    state, _ = _state_and_sequence(model)
    new_value = state.body.outputs[state.index]
    last = state.body.operators[-1]
    last.inputs = list(last.inputs) + [new_value]


def _tamper_output_reader(model):
    state, _ = _state_and_sequence(model)
    (after,) = tg.consumers(state.graph, state.loop.outputs[state.index])
    after.opcodeIndex = next(op.opcodeIndex for op in state.graph.operators if _name(model, op) == "LOGISTIC")


def _tamper_output_is_graph_output(model):
    state, _ = _state_and_sequence(model)
    state.graph.outputs = list(state.graph.outputs) + [state.loop.outputs[state.index]]


def _tamper_missing_body(model):
    _loop(model)[1].builtinOptions.bodySubgraphIndex = 99


def _tamper_body_is_condition(model):
    options = _loop(model)[1].builtinOptions
    options.condSubgraphIndex = options.bodySubgraphIndex


def _tamper_no_options(model):
    _loop(model)[1].builtinOptions = None


def _tamper_quantize_without_scale(model):
    state, _ = _state_and_sequence(model)
    state.body.tensors[state.quantize.outputs[0]].quantization = None


def _tamper_fewer_body_inputs(model):
    body = _loop(model)[3]
    body.inputs = list(body.inputs)[:-1]


TAMPERED = {
    "second reader of a loop variable": (_tamper_second_reader, "not consumed by a single QUANTIZE"),
    "closing op not a DEQUANTIZE": (_tamper_closing_op, "body output not produced by DEQUANTIZE .TANH"),
    "new value also read in the body": (_tamper_body_reads_new_value, "also read inside the body"),
    "WHILE output read by a float op": (_tamper_output_reader, "WHILE output 2 is read by LOGISTIC"),
    "WHILE output is a graph output": (_tamper_output_is_graph_output, "float WHILE output is a graph output"),
    "missing body subgraph": (_tamper_missing_body, "refers to subgraph 99"),
    "body doubles as condition": (_tamper_body_is_condition, "serve more than one WHILE"),
    "WHILE without options": (_tamper_no_options, "has no WhileOptions"),
    "QUANTIZE without scale": (_tamper_quantize_without_scale, "without a scale"),
    "body of another arity": (_tamper_fewer_body_inputs, "a body of 5 inputs"),
}


@pytest.mark.parametrize("case", list(TAMPERED))
def test_a_graph_of_another_shape_is_a_conversion_error(raw_int8, case):
    tamper, message = TAMPERED[case]
    model = _graph(raw_int8)
    tamper(model)
    with pytest.raises(ConversionError, match=message):
        tg.intify_while_state(model)


def test_check_loop_types_catches_a_half_rewritten_loop(raw_int8):
    model = _graph(raw_int8)
    tg.intify_while_state(model)
    g, loop, cond, body = _loop(model)
    k = tg.float_loop_variables(_graph(raw_int8), _loop(_graph(raw_int8))[3])[0]
    cond.tensors[cond.inputs[k]].type = 0  # back to FLOAT32
    with pytest.raises(ConversionError, match=f"loop variable {k}: condition input is FLOAT32 but the WHILE input is INT8"):
        tg.check_loop_types(model)
    cond.tensors[cond.inputs[k]].type = 9  # INT8
    cond.tensors[cond.inputs[k]].quantization.scale = [123.0]
    with pytest.raises(ConversionError, match="condition input has another quantization"):
        tg.check_loop_types(model)


@pytest.mark.filterwarnings("ignore:Statistics for quantized inputs")
def test_a_converter_that_reads_the_state_in_the_condition_is_refused():
    """A tf.while_loop whose condition reads the float state: the converter's own graph, not a tampered one."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
    def f(x):
        return tf.while_loop(lambda i, h: tf.logical_and(i < 4, tf.reduce_max(h) < 50.0),
                             lambda i, h: (i + 1, tf.tanh(h * 1.5) * 8.0), (tf.constant(0), x))[1]

    converter = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([np.full((1, 3), v, np.float32)] for v in (-2.0, 0.5, 3.0))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    model = _graph(converter.convert())
    with pytest.raises(ConversionError, match="int8 loop-state rewrite: the loop condition reads float loop variable 1"):
        tg.intify_while_state(model)


def test_the_exporter_writes_no_file_when_the_rewrite_fails(tmp_path, monkeypatch):
    """export_tflite end to end (conversion in this process): the tampered graph gives no file at all."""
    from tensorflow.lite.tools import flatbuffer_utils

    real = flatbuffer_utils.convert_bytearray_to_object

    def tampered(data):
        model = real(data)
        if tg.while_loops(model):
            _tamper_second_reader(model)
        return model

    monkeypatch.setattr(flatbuffer_utils, "convert_bytearray_to_object", tampered)
    monkeypatch.setattr(convert, "_convert_in_child", lambda ctx, precision: convert.convert_tflite(
        ctx.model, ctx.weights, precision, ctx.maxlen, ctx.vocab_size, ctx.calibration_ids))
    ctx = SimpleNamespace(model=CONFIG, weights=_weights(CONFIG), maxlen=MAXLEN, vocab_size=VOCAB,
                          calibration_ids=_rows(24))
    path = tmp_path / "model.int8.tflite"
    with pytest.raises(ConversionError, match="not consumed by a single QUANTIZE"):
        convert.export_tflite(ctx, "int8", path, metadata={"sentilite.metadata_version": "1"})
    assert list(tmp_path.iterdir()) == []


# -- the conversion child: a timeout and a crash are our errors -----------------------------------
def _fake_python(tmp_path, body: str):
    script = tmp_path / "fake-python"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def _tiny_context():
    return SimpleNamespace(model=CONFIG, weights=_weights(CONFIG), maxlen=MAXLEN, vocab_size=VOCAB,
                           calibration_ids=_rows(4))


def test_a_hanging_conversion_child_is_stopped_at_its_timeout(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", _fake_python(tmp_path, "exec sleep 60"))
    start = time.monotonic()
    with pytest.raises(ConversionError, match=r"int8 TFLite conversion of the lstm model took longer than 1 s "
                                              r"and was stopped"):
        convert._convert_in_child(_tiny_context(), "int8", timeout=1)
    assert time.monotonic() - start < 10


def test_a_crashing_conversion_child_is_a_conversion_error(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", _fake_python(tmp_path, "echo 'Fatal Python error: Segmentation fault' >&2\n"
                                                                  "kill -SEGV $$"))
    with pytest.raises(ConversionError, match=r"crashed with signal 11: Fatal Python error: Segmentation fault"):
        convert._convert_in_child(_tiny_context(), "int8")
    monkeypatch.setattr(sys, "executable", _fake_python(tmp_path, "echo 'ValueError: no' >&2; exit 3"))
    with pytest.raises(ConversionError, match=r"exited 3: ValueError: no"):
        convert._convert_in_child(_tiny_context(), "int8")


def test_a_failing_mediapipe_client_is_a_validation_error(tmp_path):
    from sentilite.export.errors import ExportValidationError
    from sentilite.export.mediapipe import client

    python = _fake_python(tmp_path, "echo 'Illegal instruction' >&2; exit 2")
    with pytest.raises(ExportValidationError, match=r"the MediaPipe client on 2 texts and m.tflite exited 2: "
                                                    r"Illegal instruction"):
        client.run_client(["m.tflite"], ["good", "bad"], python)
    python = _fake_python(tmp_path, "exec sleep 60")
    with pytest.raises(ExportValidationError, match=r"took longer than 1 s and was stopped"):
        client.run_client(["m.tflite"], ["good"], python, timeout=1)


# -- the MediaPipe file's int8 weights, and metadata entries: the other rewrites of a converted file ---------
LENGTH = 16


@pytest.fixture(scope="module")
def unrolled_fp32() -> bytes:
    """MediaPipe's float32 graph of the tiny LSTM (unrolled over its window, one subgraph), before its int8 weights."""
    from sentilite.export.mediapipe.graph import convert_unrolled

    return convert_unrolled(CONFIG, _weights(CONFIG), MAXLEN, VOCAB, VOCAB, LENGTH)


def _client_output(content: bytes, rows: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=content)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    answers = []
    for row in rows:
        interp.set_tensor(inp, row[None, :])
        interp.invoke()
        answers.append(interp.get_tensor(out)[0, 1])
    return np.array(answers)


def test_store_weights_int8_dequantizes_int8_weights_inside_the_graph(unrolled_fp32):
    from sentilite.export.mediapipe.int8_weights import MIN_QUANTIZED_ELEMENTS, store_weights_int8
    from sentilite.export.quantization import symmetric_int8

    data = store_weights_int8(unrolled_fp32)
    before, model = _graph(unrolled_fp32), _graph(data)
    (graph,) = model.subgraphs
    constants = [t for t in graph.tensors if t.buffer > 0 and model.buffers[t.buffer].data is not None]
    int8 = [t for t in constants if tg.type_name(t.type) == "INT8"]
    assert int8 and all(list(t.quantization.zeroPoint) == [0] * len(t.quantization.scale) for t in int8)
    for t in constants:  # what stays float is small or a vector
        assert tg.type_name(t.type) == "INT8" or len(t.shape) != 2 or np.prod(t.shape) < MIN_QUANTIZED_ELEMENTS
    embedding = _weights(CONFIG)["embedding"]
    q, scale = symmetric_int8(embedding, axis=1)  # the lookup table: one scale per column
    table = next(t for t in int8 if list(t.shape) == list(embedding.shape))
    assert bytes(model.buffers[table.buffer].data) == q.tobytes() and list(table.quantization.scale) == list(scale)
    for op in graph.operators:  # every GATHER of an int8 table is dequantized right after
        if _name(model, op) == "GATHER" and tg.type_name(graph.tensors[op.inputs[0]].type) == "INT8":
            (reader,) = tg.consumers(graph, op.outputs[0])
            assert _name(model, reader) == "DEQUANTIZE"
    assert sorted(t.name for t in graph.tensors if t.name) == [b"ids", b"probabilities"]
    assert all(b.data is not None and len(b.data) for b in model.buffers[1:])  # the empty activation buffers went
    assert len(data) < len(unrolled_fp32) and len(before.buffers) > len(model.buffers)
    rows = np.zeros((32, LENGTH), np.int32)
    for r, n in enumerate(np.random.default_rng(3).integers(0, LENGTH + 1, len(rows))):
        rows[r, :n] = np.random.default_rng(r).integers(1, VOCAB, n)
    assert np.abs(_client_output(data, rows) - _client_output(unrolled_fp32, rows)).max() < 0.02


def test_store_weights_int8_refuses_a_graph_of_several_subgraphs(raw_int8):
    from sentilite.export.mediapipe.int8_weights import store_weights_int8

    with pytest.raises(ConversionError, match="the MediaPipe graph has 3 subgraphs; MediaPipe needs one"):
        store_weights_int8(raw_int8)


def test_metadata_entries_are_added_once_each_and_replaced_by_name(raw_int8):
    from sentilite.export.mediapipe.metadata import METADATA_NAME, attach_metadata
    from sentilite.runtime.embedded import TFLITE_METADATA_NAME
    from sentilite.runtime.flatbuffer import read_tflite_metadata

    first = convert.add_metadata(raw_int8, {"sentilite.metadata_version": "1"})
    again = convert.add_metadata(first, {"sentilite.metadata_version": "2"})
    assert read_tflite_metadata(again)[TFLITE_METADATA_NAME] == b'{"sentilite.metadata_version":"2"}'
    assert [m.name for m in _graph(again).metadata].count(TFLITE_METADATA_NAME.encode()) == 1
    both = attach_metadata(again, b"M001 flatbuffer", {"vocab.txt": b"<PAD> 0\n"})
    found = read_tflite_metadata(both)
    assert found[METADATA_NAME] == b"M001 flatbuffer" and TFLITE_METADATA_NAME in found
