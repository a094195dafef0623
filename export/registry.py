"""One registry of exporters (format -> how to write, describe and load a file), as Optimum keeps its own.

Adding a format means adding one ``Exporter`` here; ``export_package``
loops over the registry and validates every file the same way, apart from
how it was written.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from sentilite.runtime.architecture import ModelConfig
from sentilite.runtime.model import PRECISIONS

from .validate import Validator, validate_with_runtime


@dataclass(frozen=True)
class ExportContext:
    """Everything an exporter may use; built once per package."""

    weights: dict[str, np.ndarray]
    model: ModelConfig
    maxlen: int
    vocab_size: int
    name: str
    calibration_ids: np.ndarray  # padded rows of training reviews (never test reviews)
    tokenizer_json: bytes
    labels: tuple[str, ...]  # the model's labels, in the order of its outputs
    # Training reviews as text (never test reviews): the MediaPipe file picks its vocabulary lines from them.
    training_texts: tuple[str, ...] = ()


class WriteFile(Protocol):
    """Writes one file of ``precision`` to ``path`` (atomically), carrying ``metadata``; returns the path."""

    def __call__(self, context: ExportContext, precision: str, path: Path, *, metadata: dict[str, str]) -> Path: ...


class DescribeFile(Protocol):
    """What the manifest says of a written file beyond its checks: operators, inputs, quantized parts."""

    def __call__(self, path: Path) -> dict: ...


@dataclass(frozen=True)
class Exporter:
    format: str  # the runtime format that loads the file: onnx, tflite, numpy
    suffix: str
    precisions: tuple[str, ...]
    write: WriteFile
    describe: DescribeFile
    # A file made for another client (e.g. MediaPipe's TextClassifier) rather than the sentilite runtime.
    client: str | None = None
    # A client's file cannot be loaded by the runtime: it brings its own check, with the same signature.
    validate: Validator = validate_with_runtime
    key: str = ""

    def file_name(self, precision: str) -> str:
        if self.client:
            return f"model.{self.client}.{self.suffix}"
        return f"model.{precision}.{self.suffix}"


def _lazy(module: str, function: str) -> Callable:
    """``sentilite.export.<module>.<function>``, imported when first called: the registry imports no TensorFlow."""
    def call(*args, **kwargs):
        return getattr(importlib.import_module(f"sentilite.export.{module}"), function)(*args, **kwargs)

    call.__qualname__ = call.__name__ = f"{module}.{function}"
    return call


EXPORTERS: dict[str, Exporter] = {}


def register(exporter: Exporter) -> Exporter:
    key = exporter.client or exporter.format
    if key in EXPORTERS:
        raise ValueError(f"an exporter for {key!r} is already registered")
    exporter = Exporter(**{**exporter.__dict__, "key": key})
    EXPORTERS[key] = exporter
    return exporter


register(Exporter("tflite", "tflite", PRECISIONS, _lazy("tflite.convert", "export_tflite"),
                  _lazy("tflite.describe", "describe_tflite")))
register(Exporter("onnx", "onnx", PRECISIONS, _lazy("onnx", "export_onnx"), _lazy("onnx", "describe_onnx")))
register(Exporter("numpy", "npz", ("fp32",), _lazy("to_numpy", "export_numpy_file"),
                  _lazy("to_numpy", "describe_numpy")))
register(Exporter("tflite", "tflite", ("int8",), _lazy("mediapipe.file", "export_mediapipe"),
                  _lazy("mediapipe.reader", "describe_mediapipe"), client="mediapipe",
                  validate=_lazy("mediapipe.validation", "validate_mediapipe")))

FORMATS = tuple(EXPORTERS)


def exporters_for(formats: tuple[str, ...]) -> list[Exporter]:
    return [EXPORTERS[f] for f in formats]


