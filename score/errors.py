"""Errors of `sentilite score`: each says what to change before running the same command again."""
from sentilite.shared.errors import SentiliteError


class ScoreInputError(SentiliteError, ValueError):
    """The input cannot be scored as asked: no files, unknown format, a named column that is not there."""


class ScoreOutputError(SentiliteError, RuntimeError):
    """The output folder cannot be used: not empty and not ours, or another run is writing to it."""


class JobChangedError(SentiliteError, RuntimeError):
    """A restart whose input, model or settings differ from the run that started the output folder."""


class ScoreWorkerError(SentiliteError, RuntimeError):
    """A worker process failed or died; finished parts are kept and a rerun does the rest."""


class LabelColumnError(SentiliteError, ValueError):
    """Two of the model's labels would get the same probability column (``p_<label>``)."""
