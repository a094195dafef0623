"""The project's exception types: every failure a user can act on has one."""


class SentiliteError(Exception):
    """Base class of every error sentilite raises on purpose."""


class TokenizerFileError(SentiliteError, ValueError):
    """A tokenizer.json (or its embedded copy) is malformed or of an unknown version."""


class DatasetError(SentiliteError, ValueError):
    """The IMDB data is missing, incomplete, corrupt or in an unexpected layout."""


class ChecksumError(DatasetError):
    """A downloaded or cached archive does not have the pinned sha256."""


class ConfigError(SentiliteError, ValueError):
    """A configuration value or file is invalid."""


class ModelFileError(SentiliteError, ValueError):
    """A model file, manifest or package cannot be used (missing, corrupt, inconsistent)."""


class BackendUnavailableError(SentiliteError, RuntimeError):
    """No installed inference backend can run the requested file."""


class ExportValidationError(SentiliteError, RuntimeError):
    """An exported file does not reproduce the source model within tolerance."""
