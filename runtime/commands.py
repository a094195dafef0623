"""Runtime subcommands, all a device needs: `predict` and `info`."""
from __future__ import annotations

import argparse
import logging
import os
import select
import sys

from sentilite.shared.arguments import positive_int
from sentilite.shared.errors import SentiliteError

from .backends import BACKENDS, FORMAT_BACKENDS, available_backends
from .model import NO_KNOWN_WORDS, NO_TEXT, PRECISIONS

log = logging.getLogger("sentilite.runtime")
CLIENT_NAMES = {"mediapipe": "MediaPipe"}  # a manifest's "client" -> how the listing names it

PREDICT_DESCRIPTION = f"""\
Classify texts: the arguments, or else one text per line of standard input.

Each text gets one line of JSON on standard output, in input order:
  {{"label": "positive", "score": 0.93, "probabilities": {{"negative": 0.07, "positive": 0.93}}}}
  label    the model's label: negative or positive (a package's own labels,
           two to fifty of them)
  score    the probability of that label, 0.5 to 1 for two labels, the
           largest of the probabilities for more
  probabilities  the probability of every label, in the model's order
  warning  only where the answer read nothing of the text: "{NO_TEXT}" (empty
           or white space only) or "{NO_KNOWN_WORDS}" (emoji, another language:
           no word of the model's vocabulary): label and score then say
           nothing about this text

Standard input is answered line by line as it arrives (typed, or `tail -f`),
in batches of up to --batch-size lines where more are already waiting.

Which file and backend answer goes to standard error, one line, so that
standard output stays JSON a program reads; --quiet leaves it out. In a
package the default file is the fastest one this machine runs: ONNX (fp32,
dynamic-int8, fp16) where onnxruntime is installed, then TFLite (LiteRT),
then the static int8 ONNX file, then numpy. --precision int8 without
--format takes model.int8.tflite where LiteRT is installed, else the
dynamic-int8 ONNX file (8-bit weights too): the static int8 ONNX file runs
several times slower on a CPU, and --format onnx --precision int8 picks it."""


def _default_model_help() -> str:
    try:
        from . import bundled
    except ImportError:
        return "package folder or a single .onnx / .tflite / .npz file"
    return (f"package folder, a single .onnx / .tflite / .npz file, or the name of a bundled model "
            f"({', '.join(bundled.NAMES)}) (default: the bundled {bundled.DEFAULT_MODEL})")


def add_commands(sub) -> None:
    p = sub.add_parser("predict", help="classify texts: arguments, or one per line on standard input",
                       description=PREDICT_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help=_default_model_help())
    p.add_argument("--backend", choices=tuple(BACKENDS),
                   help="the engine (default: the first installed one that runs the chosen file)")
    p.add_argument("--format", choices=tuple(FORMAT_BACKENDS), help="in a package: only files of this format")
    p.add_argument("--precision", choices=PRECISIONS, help="in a package: only files of this precision")
    p.add_argument("--batch-size", type=positive_int, default=64,
                   help="texts run together, at least 1 (default: 64)")
    p.add_argument("--quiet", action="store_true", help="no line on standard error saying which file answers")
    p.add_argument("texts", nargs="*", help="texts to classify (default: read lines from standard input)")
    p.set_defaults(func=run_predict)

    p = sub.add_parser("info", help="what a package folder or model file holds")
    p.add_argument("path", nargs="?", help="package folder, model file or bundled model's name "
                                           "(default: the bundled model)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_info)


class NoInputError(SentiliteError, OSError):
    """Standard input is closed or unreadable, and no texts were given as arguments."""


def read_batches(stream, keep_chars: int, keep_end: bool = True, max_lines: int = 64, chunk_size: int = 1 << 16):
    """Lists of up to ``max_lines`` lines of a binary stream, as text.

    A list ends early when the stream has nothing more to read right now, so
    a line typed or appended (`tail -f`) is answered at once, while lines
    already waiting (a file, a fast pipe) still go to the model together; a
    read returns what the stream holds, without waiting to fill
    ``chunk_size``. The tokenizer reads only ``max_chars`` characters of a
    text (its end, or its start), so at most about 4 x ``keep_chars`` bytes
    of any line are kept: a single endless line costs bounded memory too.
    Undecodable bytes become U+FFFD; CRLF line endings are accepted.
    """
    keep_bytes = 4 * keep_chars  # UTF-8 needs at most 4 bytes a character
    line = bytearray()
    batch: list[str] = []
    for chunk, more_waiting in _chunks(stream, chunk_size):
        pieces = chunk.split(b"\n")
        for index, piece in enumerate(pieces):
            line += piece
            if len(line) > 2 * keep_bytes:
                line = line[-keep_bytes:] if keep_end else line[:keep_bytes]
            if index < len(pieces) - 1:
                batch.append(_decode_line(line))
                line = bytearray()
                if len(batch) == max_lines:
                    yield batch
                    batch = []
        if batch and not more_waiting:
            yield batch
            batch = []
    if line:
        batch.append(_decode_line(line))
    if batch:
        yield batch


def _chunks(stream, chunk_size: int):
    """(bytes, whether more can be read at once) until the end of the stream."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # an in-memory stream: each read is one chunk
        fd = None
    while True:
        try:
            chunk = os.read(fd, chunk_size) if fd is not None else stream.read(chunk_size)
        except BlockingIOError:  # a non-blocking stdin (set so by whoever started us): wait until it has data
            if fd is None:
                raise NoInputError("cannot read standard input (it is non-blocking and empty)") from None
            select.select([fd], [], [])
            continue
        except OSError as exc:
            raise NoInputError(f"cannot read standard input ({exc.strerror or exc})") from None
        if not chunk:
            return
        yield chunk, fd is not None and _readable_now(fd)


def _readable_now(fd: int) -> bool:
    """Whether a read of ``fd`` would return at once (a regular file always does)."""
    try:
        return bool(select.select([fd], [], [], 0)[0])
    except (OSError, ValueError):  # select cannot watch this fd (e.g. a pipe on Windows): answer each chunk
        return False


def _decode_line(line: bytearray) -> str:
    return bytes(line).rstrip(b"\r").decode("utf-8", errors="replace")


def _stdin():
    """Standard input as a binary stream; a clear error where it is closed (`<&-`)."""
    stdin = sys.stdin
    if stdin is None or getattr(stdin, "buffer", None) is None:
        raise NoInputError("standard input is closed and no texts were given: pass texts as arguments, or "
                           "pipe them in, one a line")
    return stdin.buffer


def run_predict(args) -> int:
    import json

    from .model import eight_bit_choice, load, read_manifest, resolve_model_path

    fmt, precision = args.format, args.precision
    path, bundled_name = resolve_model_path(args.model)
    if precision == "int8" and fmt is None and args.backend is None and path.is_dir():
        fmt, precision = eight_bit_choice(read_manifest(path)) or (fmt, precision)
    model = load(path, format=fmt, precision=precision, backend=args.backend, batch_size=args.batch_size)
    if bundled_name is not None:
        model.info["bundled"] = bundled_name
    log.info("%s", answering_line(model))
    if args.precision == "int8" and precision == "dynamic-int8":
        why = "LiteRT is not installed here" if not available_backends("tflite") else "the package has none"
        log.info("--precision int8: no model.int8.tflite to run (%s), so the dynamic-int8 ONNX file answers (8-bit "
                 "weights too); --format onnx --precision int8 takes the static int8 file, several times slower on "
                 "a CPU", why)
    out = sys.stdout
    if args.texts:
        batches = [args.texts]
    else:
        stream = _stdin()
        if stream.isatty():
            log.info("reading texts from the terminal, one a line; Ctrl-D ends")
        config = model.tokenizer.config
        batches = read_batches(stream, config.max_chars, keep_end=config.truncating == "pre",
                               max_lines=model.batch_size)
    for batch in batches:
        for prediction in model.iter_predictions(batch):
            record = {"label": prediction.label, "score": round(prediction.score, 6),
                      "probabilities": dict(zip(model.labels, (round(p, 6) for p in prediction.probabilities)))}
            if prediction.warning is not None:
                record["warning"] = prediction.warning
            out.write(json.dumps(record) + "\n")
        out.flush()
    return 0


def answering_line(model) -> str:
    """Which file of which model answers, on which backend: the line `sentilite predict` writes to stderr."""
    info = model.info
    what = f"{info.get('format')} {info.get('precision')}, {info.get('backend')} backend"
    if info.get("bundled"):
        from pathlib import Path

        return f"answering with the bundled model {info['bundled']}: {Path(info['file']).name} ({what})"
    return f"answering with {info['file']} ({what})"


def run_info(args) -> int:
    import json

    from .info import describe

    info = describe(args.path)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    if info["kind"] == "mediapipe":
        print(format_mediapipe(info))
        return 0
    tok = info["tokenizer"]
    name = f" (bundled model {info['bundled']})" if info.get("bundled") else ""
    print(f"{info['path']}{name}: {info['kind']}, cell {info.get('cell')}, labels {', '.join(info['labels'])}")
    print(f"tokenizer: {tok['vocab_size']} ids, length {tok['maxlen']}, padding {tok['padding']}, "
          f"truncating {tok['truncating']}, lowercase {tok['lowercase']}, unicode {tok['unicode_form']}")
    if info.get("source_test_accuracy") is not None:
        print(f"Keras source: test accuracy {info['source_test_accuracy']:.4f}")
    if info.get("commit"):
        print(f"trained from commit {info['commit']}")
    for a in info["files"]:
        acc = f"test accuracy {a['accuracy']:.4f}" if a.get("accuracy") is not None else ""
        client = a.get("client")
        client = f"  for {CLIENT_NAMES.get(client, client)}'s clients, not this runtime" if client else ""
        print(f"  {a['file']:<26} {a['format']:<7} {str(a['precision']):<13} {a['bytes']:>10,} bytes  {acc}{client}")
    return 0


def format_mediapipe(info: dict) -> str:
    lines = [f"{info['path']}: MediaPipe TextClassifier file ({info['bytes']:,} bytes), for MediaPipe's clients "
             f"(Android, iOS, web), not for sentilite's runtime"]
    if info.get("name"):
        lines.append(f"model: {info['name']}" + (f", version {info['version']}" if info.get("version") else ""))
    if info.get("labels"):
        lines.append(f"labels: {', '.join(info['labels'])}")
    if info.get("vocabulary_lines") is not None:
        lines.append(f"vocab.txt: {info['vocabulary_lines']:,} lines of MediaPipe's own token ids, "
                     f"after MediaPipe's RegexTokenizer")
    lines.append(f"to run it with sentilite: {info['use_instead']}")
    return "\n".join(lines)
