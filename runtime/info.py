"""`sentilite info`: what a package folder or a single model file holds."""
from __future__ import annotations

from pathlib import Path

from .embedded import KEY_PREFIX, read_json_field, read_tokenizer
from .errors import ModelFileError
from .model import SUFFIX_FORMAT, read_manifest
from .tokenizer import Tokenizer


def describe(path: str) -> dict:
    p = Path(path)
    if p.is_dir():
        manifest = read_manifest(p)
        tokenizer = Tokenizer.from_file(p / manifest["tokenizer"]["file"])
        files = [{"file": a["file"], "format": a["format"], "precision": a["precision"], "bytes": a["bytes"],
                  "accuracy": a.get("eval", {}).get("accuracy")} for a in manifest["artifacts"]]
        return {"path": str(p), "kind": "package", "cell": manifest.get("cell"), "labels": manifest["labels"],
                "tokenizer": tokenizer.config.to_dict(), "files": files,
                "source_test_accuracy": manifest.get("source", {}).get("test_accuracy")}
    fmt = SUFFIX_FORMAT.get(p.suffix.lower())
    if fmt is None or not p.is_file():
        raise ModelFileError(f"{p}: not a package folder or a .onnx / .tflite / .npz file")
    meta = _file_metadata(p, fmt)
    tokenizer, _ = read_tokenizer(meta, str(p))
    files = [{"file": p.name, "format": fmt, "precision": meta.get(f"{KEY_PREFIX}.precision"),
              "bytes": p.stat().st_size, "accuracy": None}]
    return {"path": str(p), "kind": "file", "cell": meta.get(f"{KEY_PREFIX}.cell"),
            "labels": read_json_field(meta, "labels", str(p)), "tokenizer": tokenizer.config.to_dict(), "files": files}


def _file_metadata(path: Path, fmt: str) -> dict:
    from .backends import create_backend

    data = path.read_bytes()
    if fmt == "tflite":  # no interpreter needed just to read metadata
        from .backends import _tflite_string_metadata

        try:
            return _tflite_string_metadata(data)
        except ValueError as exc:
            raise ModelFileError(f"{path}: not a valid TFLite file ({exc})") from None
    return create_backend(fmt, data, str(path)).metadata
