"""The real clients, run in their own venv (``client_venv``), and the emulation the export evaluates with."""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..child import run_child
from ..errors import ExportValidationError
from .client_venv import read_stamp, venv_python
from .reader import MediapipeFile
from .regex_tokenizer import client_rows


def emulate_client(path: str | os.PathLike, texts: Sequence[str]) -> np.ndarray:
    """The file's answers as the clients give them, in the runtime's form: P(second label) (n,) for a file of two
    labels, else every label's score (n, N). Their tokenizer is reproduced here (mediapipe_regex_tokens), the
    file run by ai-edge-litert one text a call. The tests hold it equal to MediaPipe's own answers."""
    from ai_edge_litert.interpreter import Interpreter

    file = MediapipeFile.read(path)
    interpreter = Interpreter(model_content=file.content, num_threads=1)
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]["index"]
    vocabulary, length = file.vocabulary(), int(source["shape"][1])
    classes = int(interpreter.get_output_details()[0]["shape"][1])
    out = np.empty((len(texts), classes), np.float32)
    for start in range(0, len(texts), 1024):
        for r, row in enumerate(client_rows(texts[start: start + 1024], vocabulary, length), start):
            interpreter.set_tensor(source["index"], row[None, :])
            interpreter.invoke()
            out[r] = interpreter.get_tensor(target)[0]
    return out[:, 1].copy() if classes == 2 else out


CLIENT_SCRIPT = Path(__file__).with_name("client_venv.py")
# The client venv: $SENTILITE_MEDIAPIPE_VENV, else .venv-mediapipe in the repository (`make mediapipe-client`).
VENV_ENV = "SENTILITE_MEDIAPIPE_VENV"
DEFAULT_VENV = ".venv-mediapipe"
CLIENT_TIMEOUT_S = 3600


def find_client() -> tuple[Path, dict] | None:
    """(the client venv's Python, its setup stamp), or None when there is none; a named venv must be complete."""
    named = os.environ.get(VENV_ENV)
    folders = [Path(named)] if named else [Path(__file__).resolve().parents[2] / DEFAULT_VENV,
                                           Path.cwd() / DEFAULT_VENV]
    for folder in folders:
        stamp = read_stamp(folder)
        if stamp and venv_python(folder).exists():
            return venv_python(folder), stamp
    if named:
        raise ExportValidationError(f"{VENV_ENV}={named} is not a finished client venv; create it with "
                                    f"`python {CLIENT_SCRIPT} setup {named}` (or `make mediapipe-client`)")
    return None


def run_client(models: Sequence[str | os.PathLike], texts: Sequence[str], python: str | os.PathLike,
               engines: Sequence[str] = ("mediapipe",), timeout: float = CLIENT_TIMEOUT_S) -> dict:
    """Run the real clients in their venv on every text, one subprocess for all models:
    {"probabilities": {engine: {model: (n, N) scores in label order}}, "positive": {engine: {model: (n,)
    P(second label)}} for the files of two labels, "texts_per_second": {engine: n}}."""
    with tempfile.TemporaryDirectory(prefix="sentilite-mediapipe-") as tmp:
        texts_file, out_file = Path(tmp) / "texts.json", Path(tmp) / "out.json"
        texts_file.write_text(json.dumps(list(texts), ensure_ascii=False), encoding="utf-8")
        cmd = [os.fspath(python), os.fspath(CLIENT_SCRIPT), "classify", "--texts", str(texts_file),
               "--out", str(out_file), *map(os.fspath, models), "--engines", *engines]
        run_child(cmd, what=f"the MediaPipe client on {len(texts):,} texts and {', '.join(map(os.fspath, models))}",
                  output=out_file, timeout=timeout, error=ExportValidationError,
                  env={"GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "3"})
        out = json.loads(out_file.read_text(encoding="utf-8"))
    for key in ("probabilities", "positive"):
        out[key] = {engine: {model: np.asarray(v, np.float32) for model, v in by_model.items()}
                    for engine, by_model in out[key].items()}
    return out


def client_answers(result: dict, engine: str, model: str | os.PathLike) -> np.ndarray:
    """One engine's answers for one model of ``run_client``'s result, in emulate_client's form."""
    scores = result["probabilities"][engine][os.fspath(model)]
    return scores[:, 1].copy() if scores.ndim == 2 and scores.shape[1] == 2 else scores
