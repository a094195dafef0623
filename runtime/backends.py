"""Inference backends: each turns padded ids (n, maxlen) into the model's answer per row.

A file of two labels answers P(labels[1]) per row, (n,); a file of N > 2
labels answers the N probabilities of each row in label order, (n, N).

A backend whose ``variable_length`` is true also takes (n, T) with T < maxlen
and reads each row as if it were left-padded to maxlen.

``BACKENDS`` is the one table of them: which formats each runs, the module
of its engine and the extra that installs it. Engines are imported only
when a backend is created, so the runtime imports with numpy alone. Every
backend is safe to call from many threads at once. Every file is treated as
hostile until checked: the bytes are verified before an engine sees them
where the format allows (TFLite flatbuffer structure, .npz headers), and
every engine error becomes a ModelFileError.
"""
from __future__ import annotations

import base64
import math
import os
import sys
import tempfile
import threading
from dataclasses import dataclass

import numpy as np

from sentilite.shared.errors import BackendUnavailableError, ModelFileError, first_line
from sentilite.shared.extras import install_hint
from sentilite.shared.files import parse_json
from sentilite.shared.seal import check_seal

from .embedded import DeclaredInput, TFLITE_METADATA_NAME, has_metadata, read_declared_input, read_labels
from .flatbuffer import read_tflite_metadata, verify_tflite_model
from .npz_file import read_npz


def _threads(num_threads: int | None) -> int:
    return int(num_threads) if num_threads else 1


class Backend:
    """One model file loaded on one engine; ``run(ids)`` gives the model's answer per row.

    The answer is P(labels[1]), (n,), for a file of two labels (one output),
    and the probabilities of the N labels, (n, N), for a file of N > 2
    (``outputs``, from the file's labels). A subclass implements
    ``_run(ids)`` (int32 rows in, float32 out), not ``run``: ``run`` is the
    guard around ``_run`` that gives the answer its shape and refuses one of
    the wrong size or with NaN. Its constructor takes ``(content, source,
    num_threads)``, checks the bytes, sets ``metadata`` and calls
    ``_declare``, which reads the file's labels and sets ``variable_length``
    when the file reads rows shorter than maxlen as if they were
    left-padded. Its ``name`` is its key in ``BACKENDS``, whose
    ``BackendSpec`` says which formats it runs and what installs its engine.
    """

    name = "backend"
    # True when the file reads rows shorter than maxlen as if they were left-padded to it,
    # so the runtime may cut the leading padding off (runtime.model.run_batches).
    variable_length: bool = False
    metadata: dict[str, str] = {}
    declared: DeclaredInput | None = None
    # The file's labels (None for a file without sentilite metadata, which is refused later for want of a
    # tokenizer); ``outputs``: 1 for two labels (P(labels[1])), else one probability per label.
    labels: tuple[str, ...] | None = None
    outputs: int = 1
    _source = "model file"

    def run(self, ids: np.ndarray) -> np.ndarray:
        """float32 (n,) P(labels[1]) per row for a file of two labels, else (n, N) probabilities.

        A damaged file can load and still answer with another number of
        values (its output points at another tensor) or with NaN (its
        weights are garbage): both are refused here, not later as an
        IndexError or a "NaN" score.
        """
        out = self._run(ids)
        n, outputs = len(ids), self.outputs
        if outputs == 1:
            if out.shape != (n,):
                raise ModelFileError(f"{self._source}: the file gives {out.size} values for {n} rows")
            values = out.tolist()
        else:
            if out.size != n * outputs:
                raise ModelFileError(f"{self._source}: the file gives {out.size} values for {n} rows of "
                                     f"{outputs} labels")
            out = out.reshape(n, outputs)
            values = out.ravel().tolist()
        # math.isfinite over Python floats: on the few values of one call it is cheaper than a numpy reduction.
        if not all(map(math.isfinite, values)):
            raise ModelFileError(f"{self._source}: the file computed a non-finite probability (damaged weights?)")
        return out

    def _run(self, ids: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _declare(self, source: str, dynamic_time: bool) -> None:
        self.declared = read_declared_input(self.metadata, source)
        self.variable_length = bool(dynamic_time and self.declared and self.declared.variable_length)
        if has_metadata(self.metadata):
            self.labels = read_labels(self.metadata, source)
            self.outputs = 1 if len(self.labels) == 2 else len(self.labels)

    def _missing_engine_error(self, source: str) -> BackendUnavailableError:
        """The engine is missing: name an installed backend that runs the same files, else what installs this one."""
        spec = BACKENDS[self.name]
        installed = [name for fmt in spec.formats for name in available_backends(fmt) if name != self.name]
        if installed:
            return BackendUnavailableError(
                f"{source}: the {self.name} backend needs {spec.distribution}, which is not installed here; the "
                f"{installed[0]} backend is, and runs the same files: use it (--backend {installed[0]}, or "
                f"backend={installed[0]!r} in load())")
        return BackendUnavailableError(f"{source}: the {self.name} backend needs {spec.distribution} "
                                       f"({spec.install_hint})")


# -- onnxruntime ------------------------------------------------------------------
class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, content: bytes, source: str, num_threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise self._missing_engine_error(source) from None
        check_seal(content, source, ModelFileError)
        options = ort.SessionOptions()
        options.intra_op_num_threads = _threads(num_threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(content, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            raise ModelFileError(f"{source}: onnxruntime cannot load the file ({first_line(exc)})") from None
        try:  # names and metadata of a damaged file may not be UTF-8
            inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
            self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
            if len(inputs) != 1 or len(outputs) != 1:
                raise ModelFileError(f"{source}: expected one input and one output, "
                                     f"found {len(inputs)} and {len(outputs)}")
            self.input_name = inputs[0].name
            self.input_shape = inputs[0].shape
        except (UnicodeDecodeError, RuntimeError, ValueError) as exc:
            if isinstance(exc, ModelFileError):
                raise
            raise ModelFileError(f"{source}: onnxruntime cannot read the file's inputs or metadata "
                                 f"({first_line(exc)})") from None
        if len(self.input_shape) != 2:
            raise ModelFileError(f"{source}: expected an input of shape (batch, ids), got {self.input_shape}")
        self._source = source
        self._declare(source, dynamic_time=not isinstance(self.input_shape[1], int))

    def _run(self, ids: np.ndarray) -> np.ndarray:
        try:
            out = self.session.run(None, {self.input_name: ids.astype(np.int32, copy=False)})[0]
        except Exception as exc:  # a file that loaded but cannot run (corrupt weights, bad shapes)
            raise ModelFileError(f"{self._source}: onnxruntime failed to run the file ({first_line(exc)})") from None
        return np.asarray(out, dtype=np.float32).reshape(-1)  # run() shapes it (n,) or (n, N)


# -- TFLite (ai-edge-litert / tflite-runtime) -------------------------------------------
class _TFLiteBackend(Backend):
    def __init__(self, content: bytes, source: str, num_threads: int | None = None):
        try:
            interpreter_cls = self._interpreter_class()
        except ImportError:
            raise self._missing_engine_error(source) from None
        check_seal(content, source, ModelFileError)
        try:
            verify_tflite_model(content)  # the interpreter trusts the flatbuffer; a damaged one could crash it
            self.metadata = tflite_string_metadata(content)
        except ValueError as exc:
            raise ModelFileError(f"{source}: not a valid TFLite file ({exc})") from None
        self._content = content
        self._source = source
        self._interpreter_cls = interpreter_cls
        self._num_threads = _threads(num_threads)
        self._local = threading.local()
        first = self._interpreter()  # fail at load time, not at the first prediction
        detail = first.get_input_details()[0]
        signature = [int(v) for v in detail.get("shape_signature", detail["shape"])]
        if len(signature) != 2:
            raise ModelFileError(f"{source}: expected an input of shape (batch, ids), got {signature}")
        self.input_shape = [None if signature[0] == -1 else signature[0],
                            None if signature[1] == -1 else signature[1]]
        self._declare(source, dynamic_time=signature[1] == -1)

    def _interpreter_class(self):
        raise NotImplementedError

    def _interpreter(self):
        """One interpreter per thread: TFLite interpreters are not thread-safe."""
        interp = getattr(self._local, "interpreter", None)
        if interp is None:
            absorb_xnnpack_note(self._interpreter_cls)
            try:
                interp = self._interpreter_cls(model_content=self._content, num_threads=self._num_threads)
                interp.allocate_tensors()
                inputs, outputs = interp.get_input_details(), interp.get_output_details()
            except (ValueError, RuntimeError) as exc:
                reason = first_line(exc)
                if "Didn't find op for builtin opcode" in str(exc) and self.name == "tflite":
                    legacy = BACKENDS[self.name].distribution
                    raise ModelFileError(
                        f"{self._source}: this file needs a newer TFLite runtime than {legacy} {_version(legacy)} "
                        f"({reason}); use the litert backend ({BACKENDS['litert'].install_hint})"
                    ) from None
                raise ModelFileError(f"{self._source}: the {self.name} interpreter cannot run this file ({reason})") from None
            if len(inputs) != 1 or len(outputs) != 1:
                raise ModelFileError(f"{self._source}: expected one input and one output, "
                                     f"found {len(inputs)} and {len(outputs)}")
            self._local.interpreter = interp
            self._local.input = inputs[0]["index"]
            self._local.shape = tuple(int(v) for v in inputs[0]["shape"])
            self._local.output = outputs[0]["index"]
            # A full-integer file answers in int8: probability = (q - zero_point) * scale.
            scale, zero_point = outputs[0].get("quantization", (0.0, 0))
            self._local.dequantize = (float(scale), int(zero_point)) \
                if outputs[0]["dtype"] != np.float32 and scale else None
        return interp

    def _run(self, ids: np.ndarray) -> np.ndarray:
        interp = self._interpreter()
        local = self._local
        ids = ids.astype(np.int32, copy=False)
        try:
            if ids.shape != local.shape:  # this thread's interpreter is resized, never another's
                interp.resize_tensor_input(local.input, list(ids.shape))
                interp.allocate_tensors()
                local.shape = ids.shape
            interp.set_tensor(local.input, ids)
            interp.invoke()
            out = interp.get_tensor(local.output).reshape(-1)
        except (ValueError, RuntimeError) as exc:
            raise ModelFileError(f"{self._source}: the {self.name} interpreter failed to run the file "
                                 f"({first_line(exc)})") from None
        if local.dequantize is not None:
            scale, zero_point = local.dequantize
            return (out.astype(np.float32) - zero_point) * scale
        return out.astype(np.float32, copy=False)


# The TFLite engine's C++ logger writes this line to fd 2 the first time a process applies the default XNNPACK
# delegate (at the first allocate_tensors), and neither ai-edge-litert nor tflite-runtime lets Python lower
# its log level: TF_CPP_MIN_LOG_LEVEL does not reach it (tensorflow/tensorflow#58050,
# google-ai-edge/LiteRT#7420). So a trusted model of our own is run first, once an engine, with fd 2 going
# to a file; what it wrote there, but for this line, is written back to stderr. The engine does not write the
# line again, and no user file ever runs with stderr redirected: its errors, a crash's included, stay visible.
XNNPACK_NOTE = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
# float32 [1] -> x + 1.0, one ADD (tf.lite.TFLiteConverter of a tf.function); it passes verify_tflite_model.
WARM_UP_MODEL = base64.b64decode(
    "HAAAAFRGTDMUACAAHAAYABQAEAAMAAAACAAEABQAAAAcAAAAHAAAAHQAAAA8AQAATAEAAIwCAAADAAAAAAAAAAIAAAA0AAAA"
    "BAAAANz///8FAAAABAAAABMAAABDT05WRVJTSU9OX01FVEFEQVRBAAgADAAIAAQACAAAAAQAAAAEAAAAEwAAAG1pbl9ydW50"
    "aW1lX3ZlcnNpb24ABgAAAMQAAAC8AAAAqAAAAJgAAAB0AAAABAAAAG7///8EAAAAYAAAABAAAAAAAAAACAAOAAgABAAIAAAA"
    "EAAAACQAAAAAAAYACAAEAAYAAAAEAAAAAAAAAAwAGAAUABAADAAEAAwAAAD/W6tjfSDdiQMAAAACAAAABAAAAAYAAAAyLjIx"
    "LjAAANr///8EAAAAEAAAADEuNS4wAAAAAAAAAAAAAAAEAAYABAAAAAAABgAIAAQABgAAAAQAAAAEAAAAAACAP5j+//+c/v//"
    "DwAAAE1MSVIgQ29udmVydGVkLgABAAAAFAAAAAAADgAYABQAEAAMAAgABAAOAAAAFAAAABwAAABcAAAAYAAAAGQAAAAEAAAA"
    "bWFpbgAAAAABAAAAFAAAAAAADgAUAAAAEAAMAAsABAAOAAAAEAAAAAAAAAsMAAAAEAAAABz///8BAAAAAgAAAAIAAAAAAAAA"
    "AQAAAAEAAAACAAAAAQAAAAAAAAADAAAAhAAAADwAAAAEAAAAnv///wAAAAEQAAAAEAAAAAMAAAAYAAAAbP///wgAAABJZGVu"
    "dGl0eQAAAAABAAAAAQAAANL///8AAAABEAAAABAAAAACAAAAFAAAAKD///8FAAAAYWRkL3kAAAAAAAAAAAAWABgAFAAAABAA"
    "DAAIAAAAAAAAAAcAFgAAAAAAAAEQAAAAEAAAAAEAAAAQAAAA5P///wEAAAB4AAAAAQAAAAEAAAABAAAACAAAAAQABAAEAAAA"
)
_absorbed: set = set()  # the interpreter classes whose engine has written its note already
_absorb_lock = threading.Lock()


def absorb_xnnpack_note(interpreter_cls) -> None:
    """Have the engine of ``interpreter_cls`` write its once-a-process XNNPACK note now, into a file, not stderr."""
    if interpreter_cls in _absorbed:
        return
    with _absorb_lock:
        if interpreter_cls in _absorbed:
            return
        _absorbed.add(interpreter_cls)
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2 (stderr closed): nothing to keep clean
            return
        with tempfile.TemporaryFile() as captured:
            if sys.stderr is not None:
                sys.stderr.flush()  # what Python buffered so far goes out before, not into, the capture
            os.dup2(captured.fileno(), 2)
            try:
                interpreter = interpreter_cls(model_content=WARM_UP_MODEL, num_threads=1)
                interpreter.allocate_tensors()
            except (ValueError, RuntimeError):
                pass  # an engine that cannot run it says why again on the user's file, with stderr in place
            finally:
                if sys.stderr is not None:
                    sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                captured.seek(0)
                _write_all(2, captured.read().replace(XNNPACK_NOTE, b"", 1))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class LiteRTBackend(_TFLiteBackend):
    name = "litert"

    def _interpreter_class(self):
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter


class TFLiteRuntimeBackend(_TFLiteBackend):
    name = "tflite"

    def _interpreter_class(self):
        from tflite_runtime.interpreter import Interpreter

        return Interpreter


def tflite_string_metadata(content: bytes) -> dict[str, str]:
    """The sentilite keys of a .tflite file ({} when it has none); ValueError when they are malformed."""
    raw = read_tflite_metadata(content).get(TFLITE_METADATA_NAME)
    if raw is None:
        return {}
    meta = parse_json(raw, f"metadata {TFLITE_METADATA_NAME!r}", ValueError)
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ValueError(f"metadata {TFLITE_METADATA_NAME!r} is not a JSON object of strings")
    return meta


# -- numpy ------------------------------------------------------------------------------
class NumpyBackend(Backend):
    name = "numpy"

    def __init__(self, content: bytes, source: str, num_threads: int | None = None):
        from .numpy_model import NumpySentimentModel

        self._source = source
        self.metadata, arrays, config = read_npz(content, source)
        self._declare(source, dynamic_time=True)
        try:
            self.model = NumpySentimentModel(config, arrays, self.declared.maxlen, self.declared.vocab_size)
        except (KeyError, ValueError, IndexError, TypeError) as exc:
            raise ModelFileError(f"{source}: weights do not form a {config.cell} model ({first_line(exc)})") from None
        self.input_shape = [None, None]

    def _run(self, ids: np.ndarray) -> np.ndarray:
        return self.model.predict(ids)


# -- the table of backends ----------------------------------------------------------------
@dataclass(frozen=True)
class BackendSpec:
    """One backend of the runtime: the formats it runs and what installs its engine."""

    backend_class: type[Backend]
    formats: tuple[str, ...]
    module: str  # the engine's import name: installed here when it can be found
    distribution: str  # the engine's pip distribution, named when it is missing
    extra: str  # the sentilite extra that installs the engine; "" for the base install

    @property
    def name(self) -> str:
        """What ``load(backend=)`` and ``--backend`` take."""
        return self.backend_class.name

    @property
    def install_hint(self) -> str:
        return install_hint(self.extra)


# In order of preference: a format's first backend whose engine is installed runs it.
BACKENDS: dict[str, BackendSpec] = {spec.name: spec for spec in (
    BackendSpec(OnnxRuntimeBackend, ("onnx",), module="onnxruntime", distribution="onnxruntime", extra="onnx"),
    BackendSpec(LiteRTBackend, ("tflite",), module="ai_edge_litert", distribution="ai-edge-litert", extra="tflite"),
    BackendSpec(TFLiteRuntimeBackend, ("tflite",), module="tflite_runtime", distribution="tflite-runtime",
                extra="tflite-legacy"),
    BackendSpec(NumpyBackend, ("numpy",), module="numpy", distribution="numpy", extra=""),
)}
# Derived from BACKENDS: format -> the names of the backends that run it, in order of preference.
FORMAT_BACKENDS: dict[str, tuple[str, ...]] = {
    fmt: tuple(name for name, spec in BACKENDS.items() if fmt in spec.formats)
    for fmt in dict.fromkeys(fmt for spec in BACKENDS.values() for fmt in spec.formats)
}


def available_backends(fmt: str) -> list[str]:
    """Backends for a format whose engine imports here, in order of preference."""
    import importlib.util

    return [b for b in FORMAT_BACKENDS.get(fmt, ()) if importlib.util.find_spec(BACKENDS[b].module) is not None]


def create_backend(fmt: str, content: bytes, source: str, backend: str | None = None,
                   num_threads: int | None = None) -> Backend:
    if fmt not in FORMAT_BACKENDS:
        raise ModelFileError(f"{source}: unknown model format {fmt!r}; expected one of {sorted(FORMAT_BACKENDS)}")
    if backend is not None:
        if backend not in BACKENDS:
            raise BackendUnavailableError(f"unknown backend {backend!r}; choose one of {sorted(BACKENDS)}")
        if backend not in FORMAT_BACKENDS[fmt]:
            raise BackendUnavailableError(
                f"{source}: backend {backend!r} cannot run {fmt} files; use one of {FORMAT_BACKENDS[fmt]}"
            )
        return BACKENDS[backend].backend_class(content, source, num_threads)
    candidates = available_backends(fmt)
    if not candidates:
        preferred = BACKENDS[FORMAT_BACKENDS[fmt][0]]
        raise BackendUnavailableError(f"{source}: no installed backend runs {fmt} files ({preferred.install_hint})")
    errors = []
    for name in candidates:
        try:
            return BACKENDS[name].backend_class(content, source, num_threads)
        except ModelFileError as exc:
            errors.append(str(exc))
    raise ModelFileError("; ".join(errors))


def _version(dist: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"
