"""sentilite.score: score many texts at once, on one machine or on Apache Spark.

`sentilite score` reads JSONL, CSV, Parquet or plain text and writes
Parquet or JSONL parts: one row per input row with its id, label, the
label's probabilities (``p_positive`` for a binary sentiment model; a
``score`` and one ``p_<label>`` per label for any other) and an error for
rows that cannot be scored. One machine runs worker processes and resumes
a killed run; `--engine spark` runs the same rows through the same
functions on PySpark. `sentilite.score.spark` (needs ``sentilite[spark]``)
has `sentiment_udf` for your own Spark code.
"""
from .errors import JobChangedError, LabelColumnError, ScoreInputError, ScoreOutputError, ScoreWorkerError
from .run import score

__all__ = ["score", "JobChangedError", "LabelColumnError", "ScoreInputError", "ScoreOutputError",
           "ScoreWorkerError"]
