"""Errors of the export side."""
from sentilite.shared.errors import SentiliteError


class ExportValidationError(SentiliteError, RuntimeError):
    """An exported file does not reproduce the source model within tolerance."""


class ConversionError(SentiliteError, RuntimeError):
    """A converter failed, crashed, timed out, or produced a graph of a shape the exporter does not know."""
