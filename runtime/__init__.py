"""sentilite runtime: raw text -> tokens -> padded ids -> sentiment, without TensorFlow.

Only numpy is required; an inference backend (onnxruntime, ai-edge-litert,
tflite-runtime) is imported when a model that needs it is loaded.
"""
from sentilite import LABELS, __version__
from sentilite.shared.errors import (
    BackendUnavailableError,
    ConfigError,
    ModelFileError,
    SentiliteError,
    TokenizerFileError,
)

from .model import NO_KNOWN_WORDS, NO_TEXT, Prediction, SentimentModel, load
from .tokenizer import Tokenizer, TokenizerConfig, pad_ids

__all__ = [
    "LABELS",
    "NO_KNOWN_WORDS",
    "NO_TEXT",
    "Prediction",
    "SentimentModel",
    "load",
    "BackendUnavailableError",
    "ConfigError",
    "ModelFileError",
    "SentiliteError",
    "Tokenizer",
    "TokenizerConfig",
    "TokenizerFileError",
    "pad_ids",
    "__version__",
]
