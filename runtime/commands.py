"""Runtime subcommands, all a device needs: `predict` and `info`."""
from __future__ import annotations

import sys


def add_commands(sub) -> None:
    p = sub.add_parser("predict", help="classify texts: arguments, or one per line on standard input")
    p.add_argument("--model", required=True, help="package folder or a single .onnx / .tflite / .npz file")
    p.add_argument("--backend", choices=("onnxruntime", "litert", "tflite", "numpy"))
    p.add_argument("--format", choices=("onnx", "tflite", "numpy"))
    p.add_argument("--precision", choices=("fp32", "fp16", "dynamic-int8", "int8"))
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("texts", nargs="*", help="texts to classify (default: read lines from standard input)")
    p.set_defaults(func=run_predict)

    p = sub.add_parser("info", help="what a package folder or model file holds")
    p.add_argument("path")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_info)


def read_lines(stream, keep_chars: int, keep_end: bool = True, chunk_size: int = 1 << 16):
    """Lines of a binary stream as text, holding at most about 4 x ``keep_chars`` bytes of any line.

    The tokenizer reads only ``max_chars`` characters of a text (its end, or
    its start), so a single endless line costs bounded memory here too.
    Undecodable bytes become U+FFFD; CRLF line endings are accepted.
    """
    keep_bytes = 4 * keep_chars  # UTF-8 needs at most 4 bytes a character
    line = bytearray()
    while True:
        chunk = stream.read(chunk_size)
        if not chunk:
            break
        pieces = chunk.split(b"\n")
        for index, piece in enumerate(pieces):
            line += piece
            if len(line) > 2 * keep_bytes:
                line = line[-keep_bytes:] if keep_end else line[:keep_bytes]
            if index < len(pieces) - 1:
                yield _decode_line(line)
                line = bytearray()
    if line:
        yield _decode_line(line)


def _decode_line(line: bytearray) -> str:
    return bytes(line).rstrip(b"\r").decode("utf-8", errors="replace")


def run_predict(args) -> int:
    import json

    from .model import load

    model = load(args.model, format=args.format, precision=args.precision, backend=args.backend,
                 batch_size=args.batch_size)
    if args.texts:
        texts = args.texts
    else:  # lines stream, a batch at a time
        config = model.tokenizer.config
        texts = read_lines(sys.stdin.buffer, config.max_chars, keep_end=config.truncating == "pre")
    out = sys.stdout
    for label, score in model.iter_predict(texts):
        out.write(json.dumps({"label": label, "score": round(score, 6)}) + "\n")
    out.flush()
    return 0


def run_info(args) -> int:
    import json

    from .info import describe

    info = describe(args.path)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    tok = info["tokenizer"]
    print(f"{info['path']}: {info['kind']}, cell {info.get('cell')}, labels {', '.join(info['labels'])}")
    print(f"tokenizer: {tok['vocab_size']} ids, length {tok['maxlen']}, padding {tok['padding']}, "
          f"truncating {tok['truncating']}, lowercase {tok['lowercase']}, unicode {tok['unicode_form']}")
    if info.get("source_test_accuracy") is not None:
        print(f"Keras source: test accuracy {info['source_test_accuracy']:.4f}")
    for a in info["files"]:
        acc = f"test accuracy {a['accuracy']:.4f}" if a.get("accuracy") is not None else ""
        print(f"  {a['file']:<26} {a['format']:<7} {str(a['precision']):<13} {a['bytes']:>10,} bytes  {acc}")
    return 0
