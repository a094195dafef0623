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
from .ngrams import per_label_table_scales
from .schema import model_bytes, read_model, set_metadata

# How long the full-integer converter (a child process) may take before it is stopped.
CONVERSION_TIMEOUT_S = 900
# What the child runs (``python -m``): this module.
_CHILD_MODULE = "sentilite.export.tflite.convert"


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
        name_output(graph, PROBABILITIES)
    return model_bytes(graph)


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
