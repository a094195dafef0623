"""sentilite runtime: raw text -> tokens -> padded ids -> a label of the model's, without TensorFlow.

A model answers with its own labels (two to fifty): ``predict_proba`` gives
one probability per label, in the order of ``model.labels``.

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

from .model import NO_KNOWN_WORDS, NO_TEXT, Prediction, SentimentModel, load, to_probabilities
from .tokenizer import Tokenizer, TokenizerConfig, pad_ids

__all__ = [
    "LABELS",
    "NO_KNOWN_WORDS",
    "NO_TEXT",
    "Prediction",
    "SentimentModel",
    "load",
    "to_probabilities",
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
