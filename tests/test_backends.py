"""The table of backends (runtime.backends.BACKENDS) and what reads it: create_backend, the CLI, the bench."""
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

from sentilite.runtime import backends
from sentilite.runtime.backends import BACKENDS, FORMAT_BACKENDS, Backend, available_backends, create_backend
from sentilite.runtime.model import SUFFIX_FORMAT
from sentilite.shared.errors import BackendUnavailableError, ModelFileError

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _distribution(requirement: str) -> str:
    return _normalized(re.split(r"[ ;<>=!~\[]", requirement, maxsplit=1)[0])


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_format_has_a_backend_and_every_backend_a_format():
    assert list(FORMAT_BACKENDS) == ["onnx", "tflite", "numpy"]
    assert set(FORMAT_BACKENDS) == set(SUFFIX_FORMAT.values())
    assert all(FORMAT_BACKENDS.values())
    for name, spec in BACKENDS.items():
        assert spec.formats and set(spec.formats) <= set(FORMAT_BACKENDS), name
        assert all(name in FORMAT_BACKENDS[fmt] for fmt in spec.formats), name
    assert {name for names in FORMAT_BACKENDS.values() for name in names} == set(BACKENDS)


def test_each_entry_is_keyed_by_its_class_which_implements_run_underscore():
    assert list(BACKENDS) == ["onnxruntime", "litert", "tflite", "numpy"]
    for name, spec in BACKENDS.items():
        assert spec.name == name == spec.backend_class.name
        assert issubclass(spec.backend_class, Backend)
        # run() is the base class's guard around _run(); a backend implements _run only.
        assert spec.backend_class.run is Backend.run and spec.backend_class._run is not Backend._run, name


def test_install_hints_name_an_extra_that_installs_the_engine():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    for name, spec in BACKENDS.items():
        if spec.extra:
            assert spec.install_hint == f"pip install '.[{spec.extra}]' in the sentilite repository"
            requirements = project["optional-dependencies"][spec.extra]
        else:
            assert spec.install_hint == "pip install . in the sentilite repository"
            requirements = project["dependencies"]
        assert _normalized(spec.distribution) in {_distribution(r) for r in requirements}, name


def test_module_is_the_import_name_of_the_distribution():
    installed = importlib.metadata.packages_distributions()
    checked = 0
    for name, spec in BACKENDS.items():
        if spec.module not in installed:  # e.g. tflite-runtime, never installed beside the litert backend
            continue
        assert _normalized(spec.distribution) in {_normalized(d) for d in installed[spec.module]}, name
        checked += 1
    assert checked, "no backend's engine is installed here"


def test_available_backends_are_the_formats_backends_whose_module_is_found(monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda module: None if module in ("onnxruntime", "ai_edge_litert") else real_find_spec(module))
    assert available_backends("onnx") == []
    assert available_backends("numpy") == ["numpy"]
    assert "litert" not in available_backends("tflite")
    assert available_backends("pt") == [] and available_backends("") == []


@pytest.mark.parametrize("fmt, source, backend, error_type, message", [
    ("pt", "m.pt", None, ModelFileError, "m.pt: unknown model format 'pt'; expected one of ['numpy', 'onnx', 'tflite']"),
    ("onnx", "m.onnx", "torch", BackendUnavailableError,
     "unknown backend 'torch'; choose one of ['litert', 'numpy', 'onnxruntime', 'tflite']"),
    ("onnx", "m.onnx", "litert", BackendUnavailableError,
     "m.onnx: backend 'litert' cannot run onnx files; use one of ('onnxruntime',)"),
    ("numpy", "m.npz", "tflite", BackendUnavailableError,
     "m.npz: backend 'tflite' cannot run numpy files; use one of ('numpy',)"),
    ("tflite", "m.tflite", "onnxruntime", BackendUnavailableError,
     "m.tflite: backend 'onnxruntime' cannot run tflite files; use one of ('litert', 'tflite')"),
])
def test_create_backend_refuses_unknown_names_and_formats_as_before(fmt, source, backend, error_type, message):
    with pytest.raises(error_type) as error:
        create_backend(fmt, b"", source, backend=backend)
    assert str(error.value) == message


@pytest.mark.parametrize("fmt, message", [
    ("onnx", "m: no installed backend runs onnx files (pip install '.[onnx]' in the sentilite repository)"),
    ("tflite", "m: no installed backend runs tflite files (pip install '.[tflite]' in the sentilite repository)"),
    ("numpy", "m: no installed backend runs numpy files (pip install . in the sentilite repository)"),
])
def test_without_an_installed_backend_the_formats_first_extra_is_named(monkeypatch, fmt, message):
    monkeypatch.setattr(backends, "available_backends", lambda fmt: [])
    with pytest.raises(BackendUnavailableError) as error:
        create_backend(fmt, b"", "m")
    assert str(error.value) == message


@pytest.mark.parametrize("name, fmt, modules, message", [
    ("onnxruntime", "onnx", ["onnxruntime"],
     "m: the onnxruntime backend needs onnxruntime (pip install '.[onnx]' in the sentilite repository)"),
    ("litert", "tflite", ["ai_edge_litert", "ai_edge_litert.interpreter"],
     "m: the litert backend needs ai-edge-litert (pip install '.[tflite]' in the sentilite repository)"),
    # LiteRT blocked too: where it is installed, the message names the litert backend instead (test_first_hour)
    ("tflite", "tflite",
     ["tflite_runtime", "tflite_runtime.interpreter", "ai_edge_litert", "ai_edge_litert.interpreter"],
     "m: the tflite backend needs tflite-runtime (pip install '.[tflite-legacy]' in the sentilite repository)"),
])
def test_a_missing_engine_names_its_distribution_and_extra(monkeypatch, name, fmt, modules, message):
    for module in modules:  # None in sys.modules: the import fails as if the engine were not installed
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(BackendUnavailableError) as error:
        create_backend(fmt, b"", "m", backend=name)
    assert str(error.value) == message


def test_tflite_runtime_too_old_for_a_file_names_the_litert_backend(monkeypatch):
    from test_hostile_files import tflite_bytes

    content = tflite_bytes("fp32")

    class TooOld:
        def __init__(self, **kwargs):
            raise ValueError("Didn't find op for builtin opcode 'GATHER' version '7'\nthe interpreter's next line")

    monkeypatch.setattr(backends.TFLiteRuntimeBackend, "_interpreter_class", lambda self: TooOld)
    monkeypatch.setattr(backends, "_version", lambda dist: {"tflite-runtime": "2.14.0"}[dist])
    with pytest.raises(ModelFileError) as error:
        create_backend("tflite", content, "m.tflite", backend="tflite")
    assert str(error.value) == (
        "m.tflite: this file needs a newer TFLite runtime than tflite-runtime 2.14.0 (Didn't find op for builtin "
        "opcode 'GATHER' version '7'); use the litert backend (pip install '.[tflite]' in the sentilite repository)")


def test_the_cli_and_the_bench_read_the_table():
    from sentilite.bench.bench import _bench_backend
    from sentilite.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    for command in ("predict", "score"):
        options = {a.dest: a.choices for a in commands[command]._actions}
        assert tuple(options["backend"]) == ("onnxruntime", "litert", "tflite", "numpy"), command
        assert tuple(options["format"]) == ("onnx", "tflite", "numpy"), command
    # bench.json's install_mb keys: keras, then the backend each format's files are timed on
    assert [_bench_backend(fmt) for fmt in FORMAT_BACKENDS] == ["onnxruntime", "litert", "numpy"]
