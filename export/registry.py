"""One registry of exporters (format -> how to write, describe and load a file), as Optimum keeps its own.

Adding a format means adding one ``Exporter`` here; ``export_package``
loops over the registry and validates every file the same way, apart from
how it was written.
"""
from __future__ import annotations

import os
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
    write: Callable[[ExportContext, str, Path, dict], None]  # (context, precision, path, metadata)
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


def _onnx_write(ctx: ExportContext, precision: str, path: Path, metadata: dict) -> None:
    from .to_onnx import export_onnx

    export_onnx(ctx, precision, path, metadata=metadata)


def _onnx_describe(path: Path) -> dict:
    from .to_onnx import describe_onnx

    return describe_onnx(path)


def _tflite_write(ctx: ExportContext, precision: str, path: Path, metadata: dict) -> None:
    from .to_tflite import export_tflite

    export_tflite(ctx, precision, path, metadata=metadata)


def _tflite_describe(path: Path) -> dict:
    from .to_tflite import describe_tflite

    return describe_tflite(path)


def _numpy_write(ctx: ExportContext, precision: str, path: Path, metadata: dict) -> None:
    from .to_numpy import export_numpy

    export_numpy(ctx.weights, path, metadata=metadata)


def _numpy_describe(path: Path) -> dict:
    from .to_numpy import describe_numpy

    return describe_numpy(path)


def _mediapipe_write(ctx: ExportContext, precision: str, path: Path, metadata: dict) -> None:
    from .to_mediapipe import export_mediapipe

    export_mediapipe(ctx, precision, path, metadata=metadata)


def _mediapipe_describe(path: Path) -> dict:
    from .to_mediapipe import describe_mediapipe

    return describe_mediapipe(path)


def _mediapipe_validate(*args) -> dict:
    from .to_mediapipe import validate_mediapipe

    return validate_mediapipe(*args)


EXPORTERS: dict[str, Exporter] = {}


def register(exporter: Exporter) -> Exporter:
    key = exporter.client or exporter.format
    if key in EXPORTERS:
        raise ValueError(f"an exporter for {key!r} is already registered")
    exporter = Exporter(**{**exporter.__dict__, "key": key})
    EXPORTERS[key] = exporter
    return exporter


register(Exporter("tflite", "tflite", PRECISIONS, _tflite_write, _tflite_describe))
register(Exporter("onnx", "onnx", PRECISIONS, _onnx_write, _onnx_describe))
register(Exporter("numpy", "npz", ("fp32",), _numpy_write, _numpy_describe))
register(Exporter("tflite", "tflite", ("int8",), _mediapipe_write, _mediapipe_describe, client="mediapipe",
                  validate=_mediapipe_validate))

FORMATS = tuple(EXPORTERS)


def exporters_for(formats: tuple[str, ...]) -> list[Exporter]:
    return [EXPORTERS[f] for f in formats]


