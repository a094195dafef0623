"""`sentilite info`: what a package folder or a single model file holds."""
from __future__ import annotations

from pathlib import Path

from sentilite.shared.errors import ModelFileError, TokenizerFileError

from .embedded import key, read_labels, read_tokenizer
from .model import MAX_MODEL_BYTES, SUFFIX_FORMAT, _read, read_manifest
from .tokenizer import Tokenizer


def describe(path: str) -> dict:
    p = Path(path)
    if p.is_dir():
        manifest = read_manifest(p)
        try:
            tokenizer = Tokenizer.from_file(p / manifest["tokenizer"].get("file", "tokenizer.json"))
        except TokenizerFileError as exc:
            raise ModelFileError(str(exc)) from None
        files = [{"file": a["file"], "format": a["format"], "precision": a.get("precision"), "bytes": a["bytes"],
                  "client": a.get("client"), "accuracy": (a.get("eval") or {}).get("accuracy")}
                 for a in manifest["artifacts"]]
        return {"path": str(p), "kind": "package", "cell": manifest.get("cell"), "labels": manifest["labels"],
                "tokenizer": tokenizer.config.to_dict(), "files": files,
                "source_test_accuracy": (manifest.get("source") or {}).get("test_accuracy")}
    fmt = SUFFIX_FORMAT.get(p.suffix.lower())
    if fmt is None or not p.is_file():
        raise ModelFileError(f"{p}: not a package folder or a .onnx / .tflite / .npz file")
    meta = _file_metadata(p, fmt)
    tokenizer, _ = read_tokenizer(meta, str(p))
    files = [{"file": p.name, "format": fmt, "precision": meta.get(key("precision")),
              "bytes": p.stat().st_size, "accuracy": None}]
    return {"path": str(p), "kind": "file", "cell": meta.get(key("cell")),
            "labels": list(read_labels(meta, str(p))), "tokenizer": tokenizer.config.to_dict(), "files": files}


def _file_metadata(path: Path, fmt: str) -> dict:
    from .backends import create_backend, read_npz, tflite_string_metadata
    from .flatbuffer import verify_tflite_model

    data = _read(path, limit=MAX_MODEL_BYTES)
    if fmt == "tflite":  # no interpreter needed just to read metadata
        try:
            verify_tflite_model(data)
            return tflite_string_metadata(data)
        except ValueError as exc:
            raise ModelFileError(f"{path}: not a valid TFLite file ({exc})") from None
    if fmt == "numpy":
        return read_npz(data, str(path))[0]
    return create_backend(fmt, data, str(path)).metadata
