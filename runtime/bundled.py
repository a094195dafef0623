"""The models inside the package, so `load()` and `sentilite predict` answer with no path, offline.

Each is a package folder under models/ (manifest.json, tokenizer.json, the int8 TFLite and dynamic-int8 ONNX
files), copied from a `make export` run by `make bundle` (sentilite.export.bundle), never placed by hand.
Models trained on other data are not bundled: their own package folder is passed instead.
"""
from __future__ import annotations

from pathlib import Path

from sentilite.shared.errors import ModelFileError

DEFAULT_MODEL = "imdb-gru"
NAMES = (DEFAULT_MODEL,)
MODELS_DIR = Path(__file__).resolve().parent / "models"


def path(name: str = DEFAULT_MODEL) -> Path:
    """The package folder of the bundled model ``name``, for ``load()``."""
    from .model import MANIFEST_FILE  # here, not at the top: model.py looks names up in this module

    if not isinstance(name, str) or name not in NAMES:
        raise ModelFileError(f"{str(name)[:80]!r}: no such bundled model; the package holds {', '.join(NAMES)}")
    folder = MODELS_DIR / name
    if not (folder / MANIFEST_FILE).is_file():
        raise ModelFileError(
            f"{folder}: the bundled model {name!r} is missing from this install (no {MANIFEST_FILE}); reinstall "
            "from a clone (pip install '.[onnx]'), or pass a package folder or model file of your own")
    return folder


__all__ = ["DEFAULT_MODEL", "MODELS_DIR", "NAMES", "path"]
