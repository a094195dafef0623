"""The app developers' clients of model.mediapipe.tflite, in a virtual environment of their own.

MediaPipe (about 650 MB with OpenCV) and tflite-support (which pins
protobuf 3.20.3) must never enter the runtime's or the exporter's
environment, so they live in their own venv and this file is run there by
path. It imports only the standard library at the top, so the same file
also creates that venv from any Python:

    python export/mediapipe/client_venv.py setup .venv-mediapipe
    .venv-mediapipe/bin/python export/mediapipe/client_venv.py classify --texts T.json --out P.json MODEL...
    .venv-mediapipe/bin/python export/mediapipe/client_venv.py describe MODEL

``classify`` runs each model on every text, one text a call as an app
would, and writes per model and engine each text's score of every label
in the order of the file's label file, and P(positive), the second label's
score, for a file of two labels: MediaPipe Tasks
``TextClassifier`` and, when tflite-support is installed, the TFLite Task
Library ``NLClassifier``.
"""
from __future__ import annotations

import argparse
import ctypes.util
import json
import os
import subprocess
import sys
import time
import venv
import zipfile
from pathlib import Path

# The versions the file is checked with; pyproject's [mediapipe] extra lists the same (a test holds them equal).
MEDIAPIPE_REQUIREMENT = "mediapipe==1.2.3"
TASK_LIBRARY_REQUIREMENT = "tflite-support==0.4.4"
CLIENT_REQUIREMENTS = (MEDIAPIPE_REQUIREMENT, TASK_LIBRARY_REQUIREMENT)
# Written last by `setup`: what was installed. A venv without it is unfinished.
STAMP_FILE = ".sentilite-client.json"
ENGINES = ("mediapipe", "nlclassifier")
LABEL_FILE = "labels.txt"  # metadata.LABEL_FILE: this script imports nothing of sentilite


def venv_python(folder: Path) -> Path:
    return folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def read_stamp(folder: Path) -> dict | None:
    try:
        return json.loads((folder / STAMP_FILE).read_text())
    except (OSError, ValueError):
        return None


def setup(folder: Path, quiet: bool = False) -> dict:
    """Create ``folder`` with the pinned clients; tflite-support is optional (wheels stop at CPython 3.11).

    NLClassifier also needs the system library libusb-1.0 (``apt-get install
    libusb-1.0-0``); without it tflite-support installs but does not import,
    and the stamp says so.
    """
    python = str(venv_python(folder))
    stamp = read_stamp(folder)
    if stamp and stamp.get("requirements") == list(CLIENT_REQUIREMENTS) and Path(python).exists():
        if stamp.get("nlclassifier_missing", "").startswith("tflite-support does not import") \
                and _task_library_imports(python):  # libusb-1.0 installed since
            stamp["engines"] = list(ENGINES)
            del stamp["nlclassifier_missing"]
            (folder / STAMP_FILE).write_text(json.dumps(stamp, indent=1) + "\n")
        return stamp
    started = time.time()
    venv.EnvBuilder(with_pip=True, clear=True).create(folder)
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check"] + (["-q"] if quiet else [])
    subprocess.run(pip + [MEDIAPIPE_REQUIREMENT], check=True)
    task_library = subprocess.run(pip + [TASK_LIBRARY_REQUIREMENT]).returncode == 0
    importable = task_library and _task_library_imports(python)
    stamp = {"requirements": list(CLIENT_REQUIREMENTS),
             "engines": ["mediapipe"] + (["nlclassifier"] if importable else []),
             "setup_seconds": round(time.time() - started, 1)}
    if task_library and not importable:
        stamp["nlclassifier_missing"] = ("tflite-support does not import" + (
            "; the system library libusb-1.0 is missing (apt-get install libusb-1.0-0)"
            if ctypes.util.find_library("usb-1.0") is None else ""))
    elif not task_library:
        stamp["nlclassifier_missing"] = f"pip could not install {TASK_LIBRARY_REQUIREMENT} for this Python"
    (folder / STAMP_FILE).write_text(json.dumps(stamp, indent=1) + "\n")
    return stamp


def _task_library_imports(python: str) -> bool:
    return subprocess.run([python, "-c", "from tflite_support.task import text"], capture_output=True).returncode == 0


def _mediapipe_classifier(model: str):
    from mediapipe.tasks.python.core import base_options
    from mediapipe.tasks.python.text import text_classifier

    options = text_classifier.TextClassifierOptions(base_options=base_options.BaseOptions(model_asset_path=model))
    classifier = text_classifier.TextClassifier.create_from_options(options)
    return classifier, lambda text: classifier.classify(text).classifications[0].categories


def _nlclassifier(model: str):
    from tflite_support.task import core, text

    options = text.NLClassifierOptions(base_options=core.BaseOptions(file_name=model))
    classifier = text.NLClassifier.create_from_options(options)
    return None, lambda text: classifier.classify(text).classifications[0].categories


def label_names(model: str) -> list[str]:
    """The lines of the file's label file: its output's columns in order (NLClassifier gives no category index)."""
    with zipfile.ZipFile(model) as archive:
        return [line for line in archive.read(LABEL_FILE).decode("utf-8").split("\n") if line]


def classify(models: list[str], texts: list[str], engines: list[str]) -> dict:
    """{"probabilities": {engine: {model: [[score of each label] per text]}}, "positive": the same for files of
    two labels, [P(second label) per text]}, the category names seen, the largest |sum of scores - 1|, and texts
    per second per engine."""
    out, positive, speed, names, sum_error = {}, {}, {}, {}, {}
    for engine in engines:
        make = _mediapipe_classifier if engine == "mediapipe" else _nlclassifier
        out[engine], positive[engine], seen, worst = {}, {}, set(), 0.0
        started = time.perf_counter()
        for model in models:
            closable, run = make(model)
            labels, rows = label_names(model), []
            for text in texts:
                categories = {c.category_name: c.score for c in run(text)}
                seen.update(categories)
                worst = max(worst, abs(sum(categories.values()) - 1.0))
                rows.append([categories[label] for label in labels])
            out[engine][model] = rows
            if rows and len(rows[0]) == 2:
                positive[engine][model] = [row[1] for row in rows]
            if closable is not None:
                closable.close()
        speed[engine] = round(len(models) * len(texts) / max(time.perf_counter() - started, 1e-9), 1)
        names[engine], sum_error[engine] = sorted(seen), worst
    return {"probabilities": out, "positive": positive, "categories": names, "max_sum_error": sum_error,
            "texts_per_second": speed}


def describe(model: str) -> dict:
    """The metadata as tflite-support reads it, and the associated files it finds."""
    from tflite_support import metadata

    displayer = metadata.MetadataDisplayer.with_model_file(model)
    return {"metadata": json.loads(displayer.get_metadata_json()),
            "associated_files": sorted(displayer.get_packed_associated_file_list())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("setup", help="create the client venv")
    p.add_argument("folder", type=Path)
    p.add_argument("--quiet", action="store_true")
    p = sub.add_parser("classify", help="P(positive) of each text by each model (run with the client venv's Python)")
    p.add_argument("models", nargs="+")
    p.add_argument("--texts", required=True, help="JSON list of texts")
    p.add_argument("--out", required=True, help="JSON written here")
    p.add_argument("--engines", nargs="+", choices=ENGINES, default=["mediapipe"])
    p = sub.add_parser("describe", help="metadata JSON via tflite-support")
    p.add_argument("model")
    args = parser.parse_args(argv)
    if args.command == "setup":
        print(json.dumps(setup(args.folder, args.quiet)))
    elif args.command == "classify":
        texts = json.loads(Path(args.texts).read_text(encoding="utf-8"))
        result = classify(args.models, texts, args.engines)
        Path(args.out).write_text(json.dumps(result), encoding="utf-8")
    else:
        print(json.dumps(describe(args.model)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
