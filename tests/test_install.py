"""The runtime installed alone, as an edge app gets it: a fresh venv, no TensorFlow."""
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.integration

PREDICT = """
import sys, json
from sentilite.runtime import load
folder, files = sys.argv[1], sys.argv[2:]
for f in files:
    model = load(folder + '/' + f)
    print(json.dumps({"file": f, "backend": model.info["backend"], "labels": model.predict(["A wonderful film.", "Dull and awful."])}))
try:
    import tensorflow
    print("tensorflow importable")
except ImportError:
    print("no tensorflow")
"""


def _venv_with(tmp_path, extra: str) -> Path:
    env_dir = tmp_path / f"venv-{extra}"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    result = subprocess.run([str(python), "-m", "pip", "install", "--quiet", f"{ROOT}[{extra}]"],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return python


def _predict(python: Path, folder: Path, files: list[str]):
    # cwd outside the repository: from its root, `import sentilite` would find the source folder, not the install
    result = subprocess.run([str(python), "-c", PREDICT, str(folder), *files], capture_output=True, text=True,
                            cwd=python.parent,
                            timeout=300, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    return result


@pytest.mark.parametrize("extra, files", [
    ("onnx", ["model.fp32.onnx", "model.fp16.onnx", "model.dynamic-int8.onnx", "model.int8.onnx", "model.fp32.npz"]),
    ("tflite", ["model.fp32.tflite", "model.fp16.tflite", "model.dynamic-int8.tflite", "model.int8.tflite"]),
])
def test_runtime_alone_predicts(exported, tmp_path, extra, files):
    python = _venv_with(tmp_path, extra)
    folder = exported["gru"][0]
    result = _predict(python, folder, files)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[-1] == "no tensorflow"
    assert len(lines) == len(files) + 1
    # the command works for what a device needs, and says in one line what the rest would need
    sentilite = python.parent / "sentilite"
    info = subprocess.run([str(sentilite), "info", str(folder)], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert info.returncode == 0 and "cell gru" in info.stdout, info.stderr
    for command in (["train", "--cell", "gru", "--out", str(tmp_path / "m")], ["export", str(folder)]):
        refused = subprocess.run([str(sentilite), *command], capture_output=True, text=True, timeout=120,
                                 cwd=tmp_path)
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.strip().splitlines() == [
            f"sentilite {command[0]}: error: `sentilite {command[0]}` needs tensorflow, which is not installed here "
            f"(this looks like a runtime-only install): pip install 'sentilite[train]'"]


def test_legacy_tflite_runtime_runs_what_it_can(exported, tmp_path):
    """tflite-runtime 2.14 (numpy < 2): runs the files it supports, names the backend for the others."""
    if sys.version_info >= (3, 12):
        pytest.skip("tflite-runtime 2.14 has no wheels for Python 3.12+")
    python = _venv_with(tmp_path, "tflite-legacy")
    folder = exported["gru"][0]
    ran, refused = [], []
    for f in ["model.fp32.tflite", "model.fp16.tflite", "model.dynamic-int8.tflite", "model.int8.tflite"]:
        result = _predict(python, folder, [f])
        assert result.returncode == 0 or "ModelFileError" in result.stderr, result.stderr[-2000:]
        (ran if result.returncode == 0 else refused).append(f)
        if result.returncode != 0:
            assert "needs a newer TFLite runtime" in result.stderr and "litert" in result.stderr
    print("tflite-runtime 2.14 ran:", ran, "refused:", refused)
    assert ran, "tflite-runtime 2.14 could run none of the files"
