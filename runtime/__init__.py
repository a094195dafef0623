"""sentilite runtime: raw text -> tokens -> padded ids -> sentiment, without TensorFlow.

Only numpy is required; an inference backend (onnxruntime, ai-edge-litert,
tflite-runtime) is imported when a model that needs it is loaded.
"""
from .errors import (
    BackendUnavailableError,
    ChecksumError,
    ConfigError,
    DatasetError,
    ExportValidationError,
    ModelFileError,
    SentiliteError,
    TokenizerFileError,
)
from .model import SentimentModel, load
from .tokenizer import Tokenizer, TokenizerConfig, pad_ids

__version__ = "0.1.0"
LABELS = ("negative", "positive")

__all__ = [
    "LABELS",
    "SentimentModel",
    "load",
    "BackendUnavailableError",
    "ChecksumError",
    "ConfigError",
    "DatasetError",
    "ExportValidationError",
    "ModelFileError",
    "SentiliteError",
    "Tokenizer",
    "TokenizerConfig",
    "TokenizerFileError",
    "pad_ids",
]
