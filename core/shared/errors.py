"""The exception types the runtime needs; training and export add theirs in their own parts."""


class SentiliteError(Exception):
    """Base class of every error sentilite raises on purpose."""


class ConfigError(SentiliteError, ValueError):
    """A configuration value or file is invalid."""


class TokenizerFileError(SentiliteError, ValueError):
    """A tokenizer.json (or its embedded copy) is malformed or of an unknown version."""


class ModelFileError(SentiliteError, ValueError):
    """A model file, manifest or package cannot be used (missing, corrupt, inconsistent, hostile)."""


class BackendUnavailableError(SentiliteError, RuntimeError):
    """No installed inference backend can run the requested file."""


class MissingExtraError(SentiliteError, RuntimeError):
    """A command needs an optional part of sentilite that is not installed."""


def first_line(exc: BaseException) -> str:
    """An engine's error as one short line for a message of ours (engines raise pages of C++ context)."""
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
