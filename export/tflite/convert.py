"""The runtime's TFLite files: the loop graph (``graph.build_loop_function``) converted at each precision.

Full-integer conversion runs in a child process, so a crash inside the
converter or calibrator becomes an error message, not a dead exporter.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from sentilite.runtime.architecture import ModelConfig
from sentilite.runtime.embedded import TFLITE_METADATA_NAME
from sentilite.runtime.model import cut_widths
from sentilite.shared.files import atomic_write_bytes
from sentilite.shared.seal import seal

from ..child import run_child
from ..errors import ConversionError
from . import loop_state
from .graph import PROBABILITIES, build_loop_function
from .ngrams import NGRAM_FLOAT_TENSOR, per_label_table_scales
from .schema import (builtin_code, model_bytes, operator_code_index, operator_names, read_model, set_metadata,
                     tflite_schema)

# How long the full-integer converter (a child process) may take before it is stopped.
CONVERSION_TIMEOUT_S = 900
# What the child runs (``python -m``): this module.
_CHILD_MODULE = "sentilite.export.tflite.convert"
# The float constant an int8 file of three or more labels multiplies the n-gram sum by (see float_softmax).
NGRAM_SCALE_TENSOR = "ngram_sum_scale"


def convert_tflite(model: ModelConfig, weights: dict[str, np.ndarray], precision: str, maxlen: int,
                   vocab_size: int, calibration_ids: np.ndarray | None = None) -> bytes:
    """The runtime's model bytes at ``precision`` (before metadata), converted in this process."""
    import tensorflow as tf

    fn = build_loop_function(model, weights, maxlen, vocab_size, precision)
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
    if precision != "int8" and model.outputs == 1:
        return bytes(data)
    graph = read_model(data)
    if precision == "int8":
        loop_state.intify_while_state(graph)
    if model.outputs != 1:
        if precision == "dynamic-int8" and model.ngram_buckets:
            per_label_table_scales(graph, np.asarray(weights["ngram_weights"], np.float32), vocab_size)
        if precision == "int8":
            float_softmax(graph)
        name_output(graph, PROBABILITIES)
    return model_bytes(graph)


def float_softmax(graph) -> None:
    """Make the full-integer file's closing ADD (cell logit + n-gram logit) and SOFTMAX run in float32.

    TFLite's int8 SOFTMAX writes probabilities in steps of 1/256, and the ADD
    before it rounds the per-label logits to one int8 scale (~0.05 of a
    logit): on a model of five labels whose answers are unsure (top
    probabilities near 0.35) the two top labels of many rows came out equal,
    and the file's top label left the Keras model's on 1.45% of validation
    texts. Here the cell's int8 logit is dequantized, the n-gram logit is
    taken from the exact float sum (``ngrams.NGRAM_FLOAT_TENSOR``) before it
    was quantized, and the sum and softmax are float; every operator before
    them stays on integers.
    """
    schema = tflite_schema()
    main = graph.subgraphs[0]
    if len(main.outputs) != 1:
        raise ConversionError(f"the converted graph has {len(main.outputs)} outputs, expected one")
    softmax = _only_writer(graph, main, main.outputs[0], schema.BuiltinOperator.SOFTMAX, "the int8 graph's output")
    logits = softmax.inputs[0]
    add = next((op for op in main.operators if logits in list(op.outputs)), None)
    if (add is not None and builtin_code(graph, add) == schema.BuiltinOperator.ADD and len(add.inputs) == 2
            and _readers(main, logits) == 1):  # the cell's logit + the n-gram logit
        add.inputs = [_float_term(graph, main, term, add) for term in add.inputs]
        retyped = [logits, main.outputs[0]]
    else:  # no n-grams: the cell's logit alone
        softmax.inputs = [_float_term(graph, main, logits, softmax)]
        retyped = [main.outputs[0]]
    for tensor in retyped:
        if main.tensors[tensor].type != schema.TensorType.INT8:
            raise ConversionError("the int8 graph's logits or probabilities are not int8")
        main.tensors[tensor].type, main.tensors[tensor].quantization = schema.TensorType.FLOAT32, None
    _drop_unread(graph, main)


def _only_writer(graph, main, tensor: int, builtin: int, what: str):
    writers = [op for op in main.operators if tensor in list(op.outputs)]
    if len(writers) != 1 or builtin_code(graph, writers[0]) != builtin:
        raise ConversionError(f"{what} is not written by one {operator_names().get(builtin, builtin)}")
    return writers[0]


def _readers(main, tensor: int) -> int:
    return sum(list(op.inputs).count(tensor) for op in main.operators) + list(main.outputs).count(tensor)


def _float_term(graph, main, term: int, reader) -> int:
    """A float32 tensor for ``reader``'s int8 input ``term``: the n-gram logit's MUL made float, or a DEQUANTIZE."""
    schema = tflite_schema()
    writer = next((op for op in main.operators if term in list(op.outputs)), None)
    if (writer is not None and builtin_code(graph, writer) == schema.BuiltinOperator.MUL and _readers(main, term) == 1
            and len(writer.inputs) == 2):
        factor = main.tensors[writer.inputs[1]]
        quantize = next((op for op in main.operators if writer.inputs[0] in list(op.outputs)), None)
        data = graph.buffers[factor.buffer].data if factor.buffer > 0 else None
        if (quantize is not None and builtin_code(graph, quantize) == schema.BuiltinOperator.QUANTIZE
                and (main.tensors[quantize.inputs[0]].name or b"").decode() == NGRAM_FLOAT_TENSOR
                and data is not None and factor.type == schema.TensorType.INT8 and factor.quantization is not None):
            # the n-gram logit: the exact float sum times its constant, in float
            values = np.frombuffer(bytes(data), np.int8).astype(np.float32)
            scale, zero_point = factor.quantization.scale[0], factor.quantization.zeroPoint[0]
            constant = _float_tensor(main, NGRAM_SCALE_TENSOR.encode(), list(factor.shape), None)
            main.tensors[constant].buffer = len(graph.buffers)
            buffer = schema.BufferT()
            buffer.data = ((values - zero_point) * np.float32(scale)).astype(np.float32).tobytes()
            graph.buffers.append(buffer)
            writer.inputs = [quantize.inputs[0], constant]
            main.tensors[term].type, main.tensors[term].quantization = schema.TensorType.FLOAT32, None
            return term
    tensor = main.tensors[term]
    if tensor.type != schema.TensorType.INT8:
        raise ConversionError(f"the int8 graph's logit {(tensor.name or b'').decode()!r} is not int8")
    float_term = _float_tensor(main, (tensor.name or b"logit") + b"_to_float", list(tensor.shape),
                               tensor.shapeSignature)
    dequantize = schema.OperatorT()
    dequantize.opcodeIndex = operator_code_index(graph, schema.BuiltinOperator.DEQUANTIZE)
    dequantize.inputs, dequantize.outputs = [term], [float_term]
    main.operators.insert(main.operators.index(reader), dequantize)
    return float_term


def _float_tensor(main, name: bytes, shape: list[int], signature) -> int:
    schema = tflite_schema()
    tensor = schema.TensorT()
    tensor.name, tensor.type, tensor.buffer, tensor.shape = name, schema.TensorType.FLOAT32, 0, shape
    tensor.shapeSignature = None if signature is None else list(signature)
    main.tensors.append(tensor)
    return len(main.tensors) - 1


def _drop_unread(graph, main) -> None:
    """Remove the QUANTIZE operators whose output nothing reads any more (left by ``_float_term``)."""
    quantize = tflite_schema().BuiltinOperator.QUANTIZE
    main.operators = [op for op in main.operators
                      if not (builtin_code(graph, op) == quantize and _readers(main, op.outputs[0]) == 0)]


def name_output(graph, name: str) -> None:
    """Give the main subgraph's one output tensor ``name`` (the converter calls it after its call op)."""
    main = graph.subgraphs[0]
    if len(main.outputs) != 1:
        raise ConversionError(f"the converted graph has {len(main.outputs)} outputs, expected one")
    main.tensors[main.outputs[0]].name = name.encode("utf-8")


def add_metadata(data: bytes, metadata: dict[str, str]) -> bytes:
    """Append the sentilite keys as one JSON metadata buffer (read back by runtime.flatbuffer)."""
    model = read_model(data)
    set_metadata(model, TFLITE_METADATA_NAME, json.dumps(metadata, separators=(",", ":")).encode("utf-8"))
    return model_bytes(model)


def export_tflite(ctx, precision: str, path: str | os.PathLike, *, metadata: dict[str, str]) -> Path:
    if precision == "int8":
        data = _convert_in_child(ctx, precision)
    else:
        data = convert_tflite(ctx.model, ctx.weights, precision, ctx.maxlen, ctx.vocab_size, ctx.calibration_ids)
    return atomic_write_bytes(path, seal(add_metadata(data, metadata)))


def _convert_in_child(ctx, precision: str, timeout: float = CONVERSION_TIMEOUT_S) -> bytes:
    """Full-integer conversion in a child process: a crash or hang in the calibrator becomes our error."""
    with tempfile.TemporaryDirectory(prefix="sentilite-tflite-") as tmp:
        inputs = Path(tmp) / "inputs.npz"
        output = Path(tmp) / "model.tflite"
        np.savez(inputs, calibration_ids=np.asarray(ctx.calibration_ids, np.int32),
                 **{f"w_{k}": v for k, v in ctx.weights.items()})
        cmd = [sys.executable, "-m", _CHILD_MODULE, json.dumps(ctx.model.to_dict()), precision,
               str(ctx.maxlen), str(ctx.vocab_size), str(inputs), str(output)]
        run_child(cmd, what=f"{precision} TFLite conversion of the {ctx.model.cell} model", output=output,
                  timeout=timeout, error=ConversionError, env={"TF_CPP_MIN_LOG_LEVEL": "3"})
        return output.read_bytes()


def _child_main(argv: list[str]) -> int:
    model_json, precision, maxlen, vocab_size, inputs, output = argv
    with np.load(inputs, allow_pickle=False) as npz:
        weights = {k[2:]: npz[k] for k in npz.files if k.startswith("w_")}
        calibration_ids = npz["calibration_ids"]
    model = ModelConfig.from_dict(json.loads(model_json))
    data = convert_tflite(model, weights, precision, int(maxlen), int(vocab_size), calibration_ids)
    Path(output).write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
