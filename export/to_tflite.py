"""TFLite export: the forward pass is rebuilt from the Keras weights as a tf.function.

Converting the Keras RNN layer itself fails or misbehaves in three ways:
- with a dynamic batch the converter stops at `tf.TensorListReserve requires
  element_shape to be static`;
- full-integer calibration of the loop Keras 3 generates segfaults inside the
  calibrator (tensorflow/tensorflow#62281, #87468, #41305; LiteRT#557);
- unrolling works but adds ~17 operators a step, so the file grows with the
  sequence length (a GRU at length 100 was 766 KB around 15 KB of weights).
A plain `tf.while_loop` that carries only the state converts with a dynamic
batch into builtin operators, stays ~10 operators long whatever the length,
and calibrates. The TF quantizer still leaves the loop-carried state float
(QUANTIZE/DEQUANTIZE inside the body); `intify_while_state` rewrites it to
int8 so every operator between the input and the output runs on integers.

Rows may be shorter than maxlen (the batch and time axes are both dynamic):
the loop starts from the state the left-out padding would have reached, a
row of a small table (``NumpyRecurrentModel.pad_states``), so the runtime
runs a review's own length. Full-integer calibration feeds rows the same way,
so the calibrator sees those states.

Full-integer conversion runs in a child process, so a crash inside the
converter or calibrator becomes an error message, not a dead exporter.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from sentilite.runtime._io import atomic_write_bytes
from sentilite.runtime.embedded import TFLITE_METADATA_NAME
from sentilite.runtime.errors import SentiliteError
from sentilite.runtime.model import cut_widths
from sentilite.runtime.numpy_model import NumpyRecurrentModel

# The converter's dynamic-range quantizer leaves constants under 1024 elements
# float; the recurrent kernel is cut into chunks under that size so it stays
# float in dynamic-int8 (an int8 recurrent kernel alone cost a SimpleRNN ~3.5
# points of label agreement over 200 steps, for at most 16 KB).
_FLOAT_CHUNK_ELEMENTS = 512


class TFLiteConversionError(SentiliteError, RuntimeError):
    """The TFLite converter failed (or crashed) on this model."""


def build_function(cell: str, weights: dict[str, np.ndarray], maxlen: int, keep_recurrent_float: bool = False):
    import tensorflow as tf

    w = {k: np.asarray(v, np.float32) for k, v in weights.items()}
    embedding = w.get("embedding")
    if embedding is None:  # one-hot input: the table is the identity
        embedding = np.eye(w["kernel"].shape[0], dtype=np.float32)
    kernel, recurrent, bias = w["kernel"], w["recurrent_kernel"], w["bias"]
    units = recurrent.shape[0]
    const = lambda a: tf.constant(a, tf.float32)  # noqa: E731
    if cell == "rnn":  # fold the input projection into the table: same size, one operator less
        table, projection = const(embedding @ kernel + bias), None
    else:
        table, projection = const(embedding), (const(kernel), const(bias[0] if cell == "gru" else bias))
    recurrent_full = const(recurrent)
    cols = max(1, _FLOAT_CHUNK_ELEMENTS // units)
    chunks = [const(recurrent[:, j: j + cols]) for j in range(0, recurrent.shape[1], cols)]
    recurrent_bias = const(bias[1]) if cell == "gru" else None  # GRU reset_after: (2, 3*units)
    dense_kernel, dense_bias = const(w["dense_kernel"]), const(w["dense_bias"])

    def recurrent_matmul(h):
        if keep_recurrent_float:
            return tf.concat([tf.matmul(h, c) for c in chunks], axis=-1)
        return tf.matmul(h, recurrent_full)

    def step(x, state):
        if cell == "rnn":
            return (tf.tanh(x + recurrent_matmul(state[0])),)
        if cell == "lstm":  # Keras gate order i, f, c, o
            h, c = state
            i, f, g, o = tf.split(x + recurrent_matmul(h), 4, axis=-1)
            c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            return (tf.sigmoid(o) * tf.tanh(c), c)
        h = state[0]  # GRU gate order z, r, h
        inner = recurrent_matmul(h) + recurrent_bias
        z, r = tf.split(tf.sigmoid(x[:, : 2 * units] + inner[:, : 2 * units]), 2, axis=-1)
        candidate = tf.tanh(x[:, 2 * units:] + r * inner[:, 2 * units:])
        return (candidate + z * (h - candidate),)  # == z*h + (1-z)*candidate

    # Rows shorter than maxlen start from the state their left-out padding would reach.
    pad_tables = [const(t) for t in NumpyRecurrentModel(cell, weights).pad_states(maxlen)]
    last_pad_state = int(pad_tables[0].shape[0]) - 1

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name="ids")])
    def positive(ids):
        x = tf.gather(table, ids)  # (batch, time, features)
        if projection is not None:
            x = tf.einsum("bte,eg->btg", x, projection[0]) + projection[1]  # one FC over all steps
        batch, time_steps = tf.shape(ids)[0], tf.shape(ids)[1]
        pad_index = tf.minimum(tf.maximum(maxlen - time_steps, 0), last_pad_state)
        state = tuple(tf.tile(tf.gather(t, pad_index[None]), tf.stack([batch, 1])) for t in pad_tables)
        steps = tf.transpose(x, [1, 0, 2])  # (time, batch, features)

        def body(t, *s):
            return (t + 1,) + step(tf.gather(steps, t), s)

        state = tf.while_loop(lambda t, *s: t < time_steps, body, (tf.constant(0),) + state,
                              maximum_iterations=maxlen)[1:]
        return tf.sigmoid(tf.matmul(state[0], dense_kernel) + dense_bias)

    return positive


def convert(cell: str, weights: dict[str, np.ndarray], precision: str, maxlen: int,
            calibration_ids: np.ndarray | None = None) -> bytes:
    """Model bytes (before metadata), in this process."""
    import tensorflow as tf
    from tensorflow.lite.tools import flatbuffer_utils

    fn = build_function(cell, weights, maxlen, keep_recurrent_float=(precision == "dynamic-int8"))
    holder = tf.Module()
    holder.fn = fn
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], holder)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex, no custom ops
    if precision == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "dynamic-int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif precision == "int8":
        if calibration_ids is None or len(calibration_ids) == 0:
            raise ValueError("full-integer conversion needs calibration ids")
        rows = np.asarray(calibration_ids, np.int32)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        # Calibrate on rows as the runtime feeds them (runtime.model.cut_widths), so the
        # pad-state tables are seen (on whole rows only their zero row is).
        widths = cut_widths(rows)
        converter.representative_dataset = lambda: ([row[None, len(row) - w:]] for row, w in zip(rows, widths))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_output_type = tf.int8  # the input stays int32 ids
    elif precision != "fp32":
        raise ValueError(f"unknown precision {precision!r}")
    data = converter.convert()
    if precision != "int8":
        return bytes(data)
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
    intify_while_state(model)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def add_metadata(model_bytes: bytes, metadata: dict[str, str]) -> bytes:
    """Append the sentilite keys as one JSON metadata buffer (read back by runtime.flatbuffer)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
    buffer = schema.BufferT()
    buffer.data = bytearray(json.dumps(metadata, separators=(",", ":")).encode("utf-8"))
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = TFLITE_METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name not in (TFLITE_METADATA_NAME, TFLITE_METADATA_NAME.encode())]
    model.metadata.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def export_tflite(cell: str, weights: dict[str, np.ndarray], precision: str, path: str | os.PathLike, *,
                  maxlen: int, metadata: dict[str, str], calibration_ids: np.ndarray | None = None) -> Path:
    if precision == "int8":
        data = _convert_in_child(cell, weights, precision, maxlen, calibration_ids)
    else:
        data = convert(cell, weights, precision, maxlen, calibration_ids)
    return atomic_write_bytes(path, add_metadata(data, metadata))


def _convert_in_child(cell, weights, precision, maxlen, calibration_ids) -> bytes:
    with tempfile.TemporaryDirectory(prefix="sentilite-tflite-") as tmp:
        inputs = Path(tmp) / "inputs.npz"
        output = Path(tmp) / "model.tflite"
        np.savez(inputs, calibration_ids=np.asarray(calibration_ids, np.int32),
                 **{f"w_{k}": v for k, v in weights.items()})
        cmd = [sys.executable, "-m", "sentilite.export.to_tflite", cell, precision, str(maxlen), str(inputs), str(output)]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        result = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if result.returncode != 0 or not output.exists():
            tail = (result.stderr or "").strip().splitlines()[-5:]
            how = f"crashed with signal {-result.returncode}" if result.returncode < 0 else f"exited {result.returncode}"
            raise TFLiteConversionError(f"{precision} TFLite conversion of the {cell} model {how}: " + " | ".join(tail))
        return output.read_bytes()


def _child_main(argv: list[str]) -> int:
    cell, precision, maxlen, inputs, output = argv
    with np.load(inputs, allow_pickle=False) as npz:
        weights = {k[2:]: npz[k] for k in npz.files if k.startswith("w_")}
        calibration_ids = npz["calibration_ids"]
    data = convert(cell, weights, precision, int(maxlen), calibration_ids)
    Path(output).write_bytes(data)
    return 0


# -- full-integer loop state -----------------------------------------------------------
def intify_while_state(model) -> int:
    """Make every float32 loop variable of each WHILE an int8 one; returns how many changed.

    The quantizer leaves loop-carried tensors float with QUANTIZE/DEQUANTIZE
    in the body. Each such variable takes the quantization of the integer
    tensor that feeds the body output, the body's QUANTIZE/DEQUANTIZE pair
    goes, and the ops around the WHILE become int8->int8 requantizations.
    Raises if the graph is not of the expected shape (seen with TF 2.21).
    """
    from tensorflow.lite.python import schema_py_generated as schema

    names = {v: k for k, v in schema.BuiltinOperator.__dict__.items() if not k.startswith("_")}

    def op_name(op):
        code = model.operatorCodes[op.opcodeIndex]
        return names[max(code.builtinCode, code.deprecatedBuiltinCode)]

    def quantize_code():
        want = schema.BuiltinOperator.QUANTIZE
        for i, code in enumerate(model.operatorCodes):
            if max(code.builtinCode, code.deprecatedBuiltinCode) == want:
                return i
        code = schema.OperatorCodeT()
        code.builtinCode, code.deprecatedBuiltinCode, code.version = want, min(want, 127), 1
        model.operatorCodes.append(code)
        return len(model.operatorCodes) - 1

    q_index = quantize_code()

    def make_quantize(op):
        op.opcodeIndex = q_index
        op.builtinOptionsType = schema.BuiltinOptions.QuantizeOptions
        op.builtinOptions = schema.QuantizeOptionsT()

    def producer(g, t):
        return next((op for op in g.operators if t in list(op.outputs)), None)

    def consumers(g, t):
        return [op for op in g.operators if t in list(op.inputs)]

    def same_quantization(a, b):
        return a is not None and b is not None and list(a.scale) == list(b.scale) and list(a.zeroPoint) == list(b.zeroPoint)

    def fail(why):
        raise TFLiteConversionError(f"int8 loop-state rewrite: {why}")

    changed = 0
    for g in model.subgraphs:
        for loop in [op for op in g.operators if op_name(op) == "WHILE"]:
            cond = model.subgraphs[loop.builtinOptions.condSubgraphIndex]
            body = model.subgraphs[loop.builtinOptions.bodySubgraphIndex]
            for k, t_in in enumerate(list(body.inputs)):
                tensor = body.tensors[t_in]
                if tensor.type != schema.TensorType.FLOAT32:
                    continue
                users = consumers(body, t_in)
                if len(users) != 1 or op_name(users[0]) != "QUANTIZE":
                    fail(f"loop variable {k} is not consumed by a single QUANTIZE")
                quant = users[0]
                q_out = quant.outputs[0]
                params, int_type = body.tensors[q_out].quantization, body.tensors[q_out].type
                out_producer = producer(body, body.outputs[k]) if body.outputs[k] != t_in else None
                if (out_producer is not None and op_name(out_producer) == "DEQUANTIZE"
                        and body.tensors[out_producer.inputs[0]].type == int_type):
                    params = body.tensors[out_producer.inputs[0]].quantization
                # 1. the body input becomes integer and its QUANTIZE goes
                tensor.type, tensor.quantization = int_type, copy.deepcopy(params)
                for op in body.operators:
                    op.inputs = [t_in if i == q_out else i for i in op.inputs]
                body.outputs = [t_in if i == q_out else i for i in body.outputs]
                body.operators.remove(quant)
                # 2. the body output
                t_out = body.outputs[k]
                if t_out != t_in:
                    p = producer(body, t_out)
                    if p is None or op_name(p) != "DEQUANTIZE":
                        fail(f"loop variable {k}: body output not produced by DEQUANTIZE")
                    src = p.inputs[0]
                    if same_quantization(body.tensors[src].quantization, params) and not consumers(body, t_out):
                        body.outputs[k] = src
                        body.operators.remove(p)
                    else:
                        make_quantize(p)
                        body.tensors[t_out].type = int_type
                        body.tensors[t_out].quantization = copy.deepcopy(params)
                # 3. the condition's copy of the variable (unused by the condition here)
                if consumers(cond, cond.inputs[k]):
                    fail(f"the loop condition reads float loop variable {k}")
                cond.tensors[cond.inputs[k]].type = int_type
                cond.tensors[cond.inputs[k]].quantization = copy.deepcopy(params)
                # 4. the WHILE input in the outer graph
                w_in = loop.inputs[k]
                p = producer(g, w_in)
                if p is not None and op_name(p) == "DEQUANTIZE" and len(consumers(g, w_in)) == 1:
                    src = p.inputs[0]
                    if same_quantization(g.tensors[src].quantization, params):
                        loop.inputs[k] = src
                        g.operators.remove(p)
                    else:
                        make_quantize(p)
                        g.tensors[w_in].type = int_type
                        g.tensors[w_in].quantization = copy.deepcopy(params)
                else:
                    t = copy.deepcopy(g.tensors[w_in])
                    t.type, t.quantization, t.buffer = int_type, copy.deepcopy(params), 0
                    t.name = (t.name or b"") + b"_int8"
                    g.tensors.append(t)
                    new_op = schema.OperatorT()
                    new_op.inputs, new_op.outputs = [w_in], [len(g.tensors) - 1]
                    make_quantize(new_op)
                    g.operators.insert(g.operators.index(loop), new_op)
                    loop.inputs[k] = len(g.tensors) - 1
                # 5. the WHILE output
                w_out = loop.outputs[k]
                g.tensors[w_out].type = int_type
                g.tensors[w_out].quantization = copy.deepcopy(params)
                for user in consumers(g, w_out):
                    if op_name(user) != "QUANTIZE":
                        fail(f"WHILE output {k} is read by {op_name(user)}")
                    u_out = user.outputs[0]
                    if same_quantization(g.tensors[u_out].quantization, params):
                        for op in g.operators:
                            op.inputs = [w_out if i == u_out else i for i in op.inputs]
                        g.outputs = [w_out if i == u_out else i for i in g.outputs]
                        g.operators.remove(user)
                if w_out in list(g.outputs):
                    fail("a float WHILE output is a graph output")
                changed += 1
    return changed


def describe_tflite(path: str | os.PathLike) -> dict:
    """Operator names and any float tensor an operator touches (none for int8), for the manifest."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(os.fspath(path))
    names = {v: k for k, v in schema.BuiltinOperator.__dict__.items() if not k.startswith("_")}
    types = {v: k for k, v in schema.TensorType.__dict__.items() if not k.startswith("_")}
    ops, float_tensors, quantized = set(), set(), set()
    for g_index, g in enumerate(model.subgraphs):
        for op in g.operators:
            code = model.operatorCodes[op.opcodeIndex]
            builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
            name = (names.get(builtin, str(builtin)) if builtin != schema.BuiltinOperator.CUSTOM
                    else "CUSTOM:" + (code.customCode or b"").decode())
            ops.add(name)
            for t in op.inputs:  # an operator reading constant int8 weights
                if t >= 0 and g.tensors[t].type == schema.TensorType.INT8 and g.tensors[t].buffer > 0 \
                        and model.buffers[g.tensors[t].buffer].data is not None:
                    quantized.add(f"{name} (subgraph {g_index})")
            for t in list(op.inputs) + list(op.outputs):
                if t >= 0 and types.get(g.tensors[t].type) in ("FLOAT32", "FLOAT16"):
                    float_tensors.add(f"subgraph {g_index}: {(g.tensors[t].name or b'').decode(errors='replace')}")
    return {"ops": sorted(ops), "float_tensors": sorted(float_tensors), "quantized_nodes": sorted(quantized)}


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
