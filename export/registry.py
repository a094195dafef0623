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

import numpy as np

from sentilite.runtime.architecture import ModelConfig
from sentilite.runtime.model import PRECISIONS


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
    labels: tuple[str, str]
    # Training reviews as text (never test reviews): the MediaPipe file picks its vocabulary lines from them.
    training_texts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Exporter:
    format: str  # the runtime format that loads the file: onnx, tflite, numpy
    suffix: str
    precisions: tuple[str, ...]
    write: Callable[..., None]  # (context, precision, path, *, metadata)
    describe: Callable[[Path], dict]
    # A file made for another client (e.g. MediaPipe's TextClassifier) rather than the sentilite runtime.
    client: str | None = None
    # Replaces validate_artifact for a file the runtime cannot load (a client's): same arguments but the
    # format, precision and metadata; returns the manifest fields (bytes, sha256, validation, eval, ...).
    validate: Callable[..., dict] | None = None
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


register(Exporter("tflite", "tflite", PRECISIONS, _lazy("to_tflite", "export_tflite"),
                  _lazy("to_tflite", "describe_tflite")))
register(Exporter("onnx", "onnx", PRECISIONS, _lazy("to_onnx", "export_onnx"), _lazy("to_onnx", "describe_onnx")))
register(Exporter("numpy", "npz", ("fp32",), _lazy("to_numpy", "export_numpy_file"),
                  _lazy("to_numpy", "describe_numpy")))
register(Exporter("tflite", "tflite", ("int8",), _lazy("to_mediapipe", "export_mediapipe"),
                  _lazy("to_mediapipe", "describe_mediapipe"), client="mediapipe",
                  validate=_lazy("to_mediapipe", "validate_mediapipe")))

FORMATS = tuple(EXPORTERS)


def exporters_for(formats: tuple[str, ...]) -> list[Exporter]:
    return [EXPORTERS[f] for f in formats]


