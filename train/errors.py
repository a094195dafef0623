"""Errors of the training side: the data set and its download."""
from sentilite.shared.errors import SentiliteError


class DatasetError(SentiliteError, ValueError):
    """The IMDB data is missing, incomplete, corrupt or in an unexpected layout."""


class ChecksumError(DatasetError):
    """A downloaded or cached archive does not have the pinned sha256."""
