"""Inference backends: each turns padded ids (n, maxlen) into P(positive) (n,).

A backend whose ``variable_length`` is true also takes (n, T) with T < maxlen
and reads each row as if it were left-padded to maxlen.

Engines are imported only when a backend is created, so the runtime imports
with numpy alone. Every backend is safe to call from many threads at once.
"""
from __future__ import annotations

import io
import threading
import zipfile

import numpy as np

from .errors import BackendUnavailableError, ModelFileError
from .flatbuffer import read_tflite_metadata
from .embedded import TFLITE_METADATA_NAME

FORMAT_BACKENDS = {"onnx": ("onnxruntime",), "tflite": ("litert", "tflite"), "numpy": ("numpy",)}


def _threads(num_threads: int | None) -> int:
    return int(num_threads) if num_threads else 1


class Backend:
    name = "backend"
    batch_size_limit: int | None = None  # a fixed batch dimension, if the file has one
    # True when the file reads rows shorter than maxlen as if they were left-padded to it,
    # so the runtime may cut the leading padding off (runtime.model.run_batches).
    variable_length: bool = False

    def run(self, ids: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    metadata: dict[str, str] = {}


# -- onnxruntime ------------------------------------------------------------------
class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, content: bytes, source: str, num_threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendUnavailableError(
                f"{source}: the onnxruntime backend needs onnxruntime (pip install 'sentilite[onnx]')"
            ) from None
        _maybe_check_onnx(content, source)
        options = ort.SessionOptions()
        options.intra_op_num_threads = _threads(num_threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(content, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            raise ModelFileError(f"{source}: onnxruntime cannot load the file ({_first_line(exc)})") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelFileError(f"{source}: expected one input and one output, found {len(inputs)} and {len(outputs)}")
        self.input_name = inputs[0].name
        self.input_shape = inputs[0].shape
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.variable_length = len(self.input_shape) == 2 and not isinstance(self.input_shape[1], int) \
            and _declared_input(self.metadata).get("variable_length") is True

    def run(self, ids: np.ndarray) -> np.ndarray:
        out = self.session.run(None, {self.input_name: ids.astype(np.int32, copy=False)})[0]
        return np.asarray(out, dtype=np.float32).reshape(-1)


def _declared_input(metadata: dict[str, str]) -> dict:
    """The file's ``sentilite.input`` object ({} when absent or unreadable: load() names that problem)."""
    import json

    try:
        declared = json.loads(metadata.get("sentilite.input", "{}"))
    except json.JSONDecodeError:
        return {}
    return declared if isinstance(declared, dict) else {}


def _maybe_check_onnx(content: bytes, source: str) -> None:
    """Run onnx.checker when onnx happens to be installed; the runtime does not need it."""
    try:
        import onnx
    except ImportError:
        return
    try:
        onnx.checker.check_model(onnx.load_model_from_string(content))
    except Exception as exc:
        raise ModelFileError(f"{source}: not a valid ONNX model ({_first_line(exc)})") from None


# -- TFLite (ai-edge-litert / tflite-runtime) -------------------------------------------
class _TFLiteBackend(Backend):
    module = ""
    extra = ""

    def __init__(self, content: bytes, source: str, num_threads: int | None = None):
        try:
            interpreter_cls = self._interpreter_class()
        except ImportError:
            raise BackendUnavailableError(
                f"{source}: the {self.name} backend needs {self.module} (pip install 'sentilite[{self.extra}]')"
            ) from None
        try:
            self.metadata = _tflite_string_metadata(content)
        except ValueError as exc:
            raise ModelFileError(f"{source}: not a valid TFLite file ({exc})") from None
        self._content = content
        self._source = source
        self._interpreter_cls = interpreter_cls
        self._num_threads = _threads(num_threads)
        self._local = threading.local()
        first = self._interpreter()  # fail at load time, not at the first prediction
        detail = first.get_input_details()[0]
        self.input_shape = [int(v) for v in detail["shape"]]
        signature = [int(v) for v in detail.get("shape_signature", detail["shape"])]
        # A fixed batch dimension (the converter needs one for RNNs) is fed row by row.
        self.batch_size_limit = None if signature[0] == -1 else self.input_shape[0]
        self.variable_length = len(signature) == 2 and signature[1] == -1 \
            and _declared_input(self.metadata).get("variable_length") is True
        if self.variable_length:
            self.input_shape = [signature[0], None]

    def _interpreter_class(self):
        raise NotImplementedError

    def _interpreter(self):
        """One interpreter per thread: TFLite interpreters are not thread-safe."""
        interp = getattr(self._local, "interpreter", None)
        if interp is None:
            try:
                interp = self._interpreter_cls(model_content=self._content, num_threads=self._num_threads)
                interp.allocate_tensors()
            except (ValueError, RuntimeError) as exc:
                reason = _first_line(exc)
                if "Didn't find op for builtin opcode" in str(exc) and self.name == "tflite":
                    raise ModelFileError(
                        f"{self._source}: this file needs a newer TFLite runtime than tflite-runtime "
                        f"{_version('tflite-runtime')} ({reason}); use the litert backend (pip install 'sentilite[tflite]')"
                    ) from None
                raise ModelFileError(f"{self._source}: the {self.name} interpreter cannot run this file ({reason})") from None
            self._local.interpreter = interp
            detail = interp.get_input_details()[0]
            self._local.input = detail["index"]
            self._local.shape = tuple(int(v) for v in detail["shape"])
            out = interp.get_output_details()[0]
            self._local.output = out["index"]
            # A full-integer file answers in int8: probability = (q - zero_point) * scale.
            scale, zero_point = out.get("quantization", (0.0, 0))
            self._local.dequantize = (float(scale), int(zero_point)) if out["dtype"] != np.float32 and scale else None
        return interp

    def run(self, ids: np.ndarray) -> np.ndarray:
        interp = self._interpreter()
        local = self._local
        ids = ids.astype(np.int32, copy=False)
        step = self.batch_size_limit or len(ids)
        out = np.empty(len(ids), dtype=np.float32)
        for start in range(0, len(ids), step):
            chunk = ids[start: start + step]
            n = len(chunk)
            if self.batch_size_limit is not None and n != step:  # fixed batch: pad the last chunk
                chunk = np.concatenate([chunk, np.zeros((step - n, chunk.shape[1]), np.int32)])
            if chunk.shape != local.shape:  # this thread's interpreter is resized, never another's
                interp.resize_tensor_input(local.input, list(chunk.shape))
                interp.allocate_tensors()
                local.shape = chunk.shape
            interp.set_tensor(local.input, chunk)
            interp.invoke()
            res = interp.get_tensor(local.output).reshape(-1)[:n]
            if local.dequantize is not None:
                scale, zero_point = local.dequantize
                res = (res.astype(np.float32) - zero_point) * scale
            out[start: start + n] = res
        return out


class LiteRTBackend(_TFLiteBackend):
    name, module, extra = "litert", "ai-edge-litert", "tflite"

    def _interpreter_class(self):
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter


class TFLiteRuntimeBackend(_TFLiteBackend):
    name, module, extra = "tflite", "tflite-runtime", "tflite-legacy"

    def _interpreter_class(self):
        from tflite_runtime.interpreter import Interpreter

        return Interpreter


def _tflite_string_metadata(content: bytes) -> dict[str, str]:
    import json

    raw = read_tflite_metadata(content).get(TFLITE_METADATA_NAME)
    if raw is None:
        return {}
    try:
        meta = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"metadata {TFLITE_METADATA_NAME!r} is not JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"metadata {TFLITE_METADATA_NAME!r} is not a JSON object")
    return {str(k): str(v) for k, v in meta.items()}


# -- numpy ------------------------------------------------------------------------------
class NumpyBackend(Backend):
    name = "numpy"

    def __init__(self, content: bytes, source: str, num_threads: int | None = None):
        from .numpy_model import NumpyRecurrentModel

        try:
            with np.load(io.BytesIO(content), allow_pickle=False) as npz:
                arrays = {key: npz[key] for key in npz.files}
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
            raise ModelFileError(f"{source}: not a readable .npz of arrays ({_first_line(exc)})") from None
        meta_raw = arrays.pop("__metadata__", None)
        if meta_raw is None:
            raise ModelFileError(f"{source}: the .npz carries no __metadata__ entry")
        import json

        try:
            self.metadata = {str(k): str(v) for k, v in json.loads(bytes(meta_raw).decode("utf-8")).items()}
        except (ValueError, UnicodeDecodeError, AttributeError) as exc:
            raise ModelFileError(f"{source}: __metadata__ is not a JSON object ({exc})") from None
        cell = self.metadata.get("sentilite.cell")
        try:
            maxlen = _declared_input(self.metadata).get("maxlen")
            self.model = NumpyRecurrentModel(cell, arrays, maxlen=maxlen)
            self.variable_length = maxlen is not None  # the numpy model computes its own pad states
        except (KeyError, ValueError, IndexError, TypeError, AttributeError) as exc:
            raise ModelFileError(f"{source}: weights do not form a {cell} model ({_first_line(exc)})") from None
        self.input_shape = [-1, None]

    def run(self, ids: np.ndarray) -> np.ndarray:
        if ids.size and (ids.min() < 0 or ids.max() >= self.model.vocab_size):
            raise ValueError(f"ids outside 0..{self.model.vocab_size - 1}")
        return self.model.predict_positive(ids)


BACKENDS = {
    "onnxruntime": OnnxRuntimeBackend,
    "litert": LiteRTBackend,
    "tflite": TFLiteRuntimeBackend,
    "numpy": NumpyBackend,
}


def available_backends(fmt: str) -> list[str]:
    """Backends for a format whose engine imports here, in order of preference."""
    import importlib.util

    modules = {"onnxruntime": "onnxruntime", "litert": "ai_edge_litert", "tflite": "tflite_runtime", "numpy": "numpy"}
    return [b for b in FORMAT_BACKENDS.get(fmt, ()) if importlib.util.find_spec(modules[b]) is not None]


def create_backend(fmt: str, content: bytes, source: str, backend: str | None = None,
                   num_threads: int | None = None) -> Backend:
    if backend is not None:
        if backend not in BACKENDS:
            raise BackendUnavailableError(f"unknown backend {backend!r}; choose one of {sorted(BACKENDS)}")
        if backend not in FORMAT_BACKENDS[fmt]:
            raise BackendUnavailableError(
                f"{source}: backend {backend!r} cannot run {fmt} files; use one of {FORMAT_BACKENDS[fmt]}"
            )
        return BACKENDS[backend](content, source, num_threads)
    candidates = available_backends(fmt)
    if not candidates:
        wanted = {"onnx": "sentilite[onnx]", "tflite": "sentilite[tflite]"}.get(fmt, fmt)
        raise BackendUnavailableError(f"{source}: no installed backend runs {fmt} files (pip install '{wanted}')")
    errors = []
    for name in candidates:
        try:
            return BACKENDS[name](content, source, num_threads)
        except ModelFileError as exc:
            errors.append(str(exc))
    raise ModelFileError("; ".join(errors))


def _version(dist: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
