"""The runtime installed alone, as an edge app gets it: a fresh venv, no TensorFlow."""
import os
import shutil
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
    result = subprocess.run([str(python), "-m", "pip", "install", "--quiet", f"{_source_copy(tmp_path)}[{extra}]"],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return python


def _source_copy(tmp_path) -> Path:
    """The repository's files without builds and venvs: what a clean checkout installs from.

    setuptools keeps build/ in the source folder and never empties it, so a
    module deleted since an earlier build would still ship
    (pypa/setuptools#1871).
    """
    source = tmp_path / "source"
    if not source.exists():
        shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
            ".git", ".venv*", "artifacts", "build", "*.egg-info", "__pycache__", ".pytest_cache", "node_modules"))
    return source


IMPORT_CHECK = "import sentilite.runtime; from sentilite.runtime import load; print(sentilite.runtime.__file__)"


def _clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def test_wheel_imports_from_the_repository_root(tmp_path, runtime_only_python):
    """A normal install (pip builds the wheel of a clean copy and installs it) answers imports from the repository
    root too, not only from elsewhere.

    Python puts the working directory first on sys.path, so a root folder
    named like the package would shadow the install; the import must find the
    installed files from both places.
    """
    python = runtime_only_python("onnx")
    env_dir = python.parent.parent
    for cwd in (ROOT, tmp_path):
        result = subprocess.run([str(python), "-c", IMPORT_CHECK], capture_output=True, text=True, cwd=cwd,
                                timeout=120, env=_clean_env())
        assert result.returncode == 0, f"from {cwd}: {result.stderr[-2000:]}"
        assert Path(result.stdout.strip()).resolve().is_relative_to(env_dir.resolve()), result.stdout


def test_editable_install_imports_from_the_repository_root_and_elsewhere(tmp_path):
    """The development install (make install: pip install -e) answers from the root and from any folder."""
    for cwd in (ROOT, tmp_path):
        result = subprocess.run([sys.executable, "-c", IMPORT_CHECK], capture_output=True, text=True, cwd=cwd,
                                timeout=120, env=_clean_env())
        assert result.returncode == 0, f"from {cwd}: {result.stderr[-2000:]}"
        assert Path(result.stdout.strip()) == ROOT / "runtime" / "__init__.py"


def _predict(python: Path, folder: Path, files: list[str]):
    result = subprocess.run([str(python), "-c", PREDICT, str(folder), *files], capture_output=True, text=True,
                            cwd=python.parent, timeout=300, env=_clean_env())
    return result


@pytest.mark.parametrize("extra, files", [
    ("onnx", ["model.fp32.onnx", "model.fp16.onnx", "model.dynamic-int8.onnx", "model.int8.onnx", "model.fp32.npz"]),
    ("tflite", ["model.fp32.tflite", "model.fp16.tflite", "model.dynamic-int8.tflite", "model.int8.tflite"]),
])
def test_runtime_alone_predicts(exported, tmp_path, runtime_only_python, extra, files):
    python = runtime_only_python(extra)
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
            f"(this looks like a runtime-only install): pip install '.[train]' in the sentilite repository"]


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
