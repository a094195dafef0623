"""`score()`: the one entry point behind `sentilite score`, for both engines."""
from __future__ import annotations

from pathlib import Path

from .errors import ScoreInputError
from .inputs import check_columns, is_remote, parquet_id_is_integer, resolve_inputs
from .job import Settings, available_cores, resolve_model
from .outputs import OUTPUT_FORMATS


def id_type_of(files, fmt: str, id_column: str | None) -> str:
    """int64 for line, record and row numbers and integer id columns; string otherwise."""
    if not id_column:
        return "int64"
    if fmt != "parquet":
        return "string"
    kinds = {parquet_id_is_integer(p, id_column) for p in files}
    if len(kinds) > 1:
        raise ScoreInputError(f"the input files disagree on the type of id column {id_column!r} "
                              f"(integer in some, string in others)")
    return "int64" if kinds.pop() else "string"


def score(input: str, *, model: str, out: str, text_column: str = "text", id_column: str | None = None,
          input_format: str | None = None, output_format: str = "parquet", engine: str = "local",
          workers: int | None = None, part_rows: int = 10_000, spark_master: str | None = None,
          format: str | None = None, precision: str | None = None, backend: str | None = None,
          quiet: bool = False, spark=None) -> dict:
    """Score every row of ``input`` into the folder ``out``; return the run's summary."""
    if output_format not in OUTPUT_FORMATS:
        raise ScoreInputError(f"unknown output format {output_format!r}; choose one of {', '.join(OUTPUT_FORMATS)}")
    if engine not in ("local", "spark"):
        raise ScoreInputError(f"unknown engine {engine!r}; choose local or spark")
    if not text_column:
        raise ScoreInputError("--text-column must name a column")
    workers = workers or available_cores()
    # With worker processes, each loads (and checks) the model itself: none is loaded here for nothing.
    spec, loaded = resolve_model(model, format, precision, backend, load_here=engine == "spark" or workers == 1)
    if engine == "spark":
        if output_format != "parquet":
            raise ScoreInputError("--engine spark writes Parquet only; drop --output-format jsonl")
        from .spark import run_spark

        return run_spark(input, spec, out, text_column=text_column, id_column=id_column,
                         input_format=input_format, master=spark_master, quiet=quiet, spark=spark)
    if is_remote(input) or is_remote(out):
        raise ScoreInputError(f"{input if is_remote(input) else out}: the local engine reads and writes local "
                              f"paths only; use --engine spark for URIs")
    inputs = resolve_inputs(input, input_format, exclude=Path(out))
    for path in inputs.files:
        check_columns(path, inputs.format, text_column, id_column)
    id_type = id_type_of(inputs.files, inputs.format, id_column)
    settings = Settings("local", inputs.format, text_column, id_column, output_format, part_rows)
    from .local import run_local

    return run_local(inputs, settings, spec, loaded, Path(out).resolve(), workers=workers, id_type=id_type,
                     quiet=quiet)
