"""`sentilite info`: what a package folder, a single model file or a bundled model holds."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

from sentilite.shared.errors import ModelFileError, TokenizerFileError

from .embedded import key, read_labels, read_tokenizer
from .model import (MAX_MODEL_BYTES, MEDIAPIPE_METADATA_NAME, SUFFIX_FORMAT, _read, is_mediapipe_file,
                    mediapipe_alternative, read_manifest, resolve_model_path)
from .tokenizer import Tokenizer

# A MediaPipe file's labels.txt and vocab.txt are read whole; sentilite writes a few KB of each.
MAX_ASSOCIATED_FILE_BYTES = 16 << 20


def describe(path: str | None = None) -> dict:
    """What ``path`` holds; with no path (or a bundled model's name), the bundled model."""
    p, bundled_name = resolve_model_path(path)
    if p.is_dir():
        manifest = read_manifest(p)
        try:
            tokenizer = Tokenizer.from_file(p / manifest["tokenizer"].get("file", "tokenizer.json"))
        except TokenizerFileError as exc:
            raise ModelFileError(str(exc)) from None
        files = [{"file": a["file"], "format": a["format"], "precision": a.get("precision"), "bytes": a["bytes"],
                  "client": a.get("client"), "accuracy": (a.get("eval") or {}).get("accuracy")}
                 for a in manifest["artifacts"]]
        out = {"path": str(p), "kind": "package", "cell": manifest.get("cell"), "labels": manifest["labels"],
               "tokenizer": tokenizer.config.to_dict(), "files": files,
               "source_test_accuracy": (manifest.get("source") or {}).get("test_accuracy")}
        bundle = manifest.get("bundle")
        if isinstance(bundle, dict) and isinstance(bundle.get("commit"), str):
            out["commit"] = bundle["commit"]
        if bundled_name is not None:
            out["bundled"] = bundled_name
        return out
    fmt = SUFFIX_FORMAT.get(p.suffix.lower())
    if fmt is None or not p.is_file():
        raise ModelFileError(f"{p}: not a package folder or a .onnx / .tflite / .npz file")
    data = _read(p, limit=MAX_MODEL_BYTES)
    if fmt == "tflite" and is_mediapipe_file(data):
        return describe_mediapipe(p, data)
    meta = _file_metadata(p, fmt, data)
    tokenizer, _ = read_tokenizer(meta, str(p))
    files = [{"file": p.name, "format": fmt, "precision": meta.get(key("precision")),
              "bytes": p.stat().st_size, "accuracy": None}]
    return {"path": str(p), "kind": "file", "cell": meta.get(key("cell")),
            "labels": list(read_labels(meta, str(p))), "tokenizer": tokenizer.config.to_dict(), "files": files}


def describe_mediapipe(path: Path, data: bytes) -> dict:
    """A MediaPipe TextClassifier file: its model name, labels and vocabulary, and which file sentilite runs.

    Read as hostile data like every file: a part that cannot be read is left
    out of the description, never trusted.
    """
    from .flatbuffer import read_tflite_metadata

    out = {"path": str(path), "kind": "mediapipe", "client": "mediapipe", "bytes": len(data),
           "use_instead": mediapipe_alternative(path)}
    out.update(_model_metadata(read_tflite_metadata(data).get(MEDIAPIPE_METADATA_NAME, b"")))
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        files = {i.filename: i for i in archive.infolist() if i.file_size <= MAX_ASSOCIATED_FILE_BYTES}
        if "labels.txt" in files:
            out["labels"] = archive.read(files["labels.txt"]).decode("utf-8", errors="replace").split()
        if "vocab.txt" in files:
            out["vocabulary_lines"] = sum(1 for line in archive.read(files["vocab.txt"]).splitlines() if line)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, NotImplementedError, EOFError, OSError):
        pass  # no readable associated files: the description says less
    return out


def _model_metadata(raw: bytes) -> dict:
    """name, description and version of a TFLite Support ModelMetadata flatbuffer ("M001"), where readable."""
    from .flatbuffer import _Reader

    if len(raw) < 8 or raw[4:8] != b"M001":
        return {}
    out = {}
    try:
        r = _Reader(raw)
        root = r.deref(0)
        for index, name in ((0, "name"), (1, "description"), (2, "version")):
            offset = r.field(root, index)
            if offset is not None:
                out[name] = r.bytes_at(*r.vector(offset, 1)).decode("utf-8", errors="replace")[:1000]
    except ValueError:
        return out
    return out


def _file_metadata(path: Path, fmt: str, data: bytes) -> dict:
    from .backends import create_backend, tflite_string_metadata
    from .flatbuffer import verify_tflite_model
    from .npz_file import read_npz

    if fmt == "tflite":  # no interpreter needed just to read metadata
        try:
            verify_tflite_model(data)
            return tflite_string_metadata(data)
        except ValueError as exc:
            raise ModelFileError(f"{path}: not a valid TFLite file ({exc})") from None
    if fmt == "numpy":
        return read_npz(data, str(path))[0]
    return create_backend(fmt, data, str(path)).metadata
