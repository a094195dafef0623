"""Inference backends: each turns padded ids (n, maxlen) into P(positive) (n,).

A backend whose ``variable_length`` is true also takes (n, T) with T < maxlen
and reads each row as if it were left-padded to maxlen.

Engines are imported only when a backend is created, so the runtime imports
with numpy alone. Every backend is safe to call from many threads at once.
Every file is treated as hostile until checked: the bytes are verified
before an engine sees them where the format allows (TFLite flatbuffer
structure, .npz headers), and every engine error becomes a ModelFileError.
"""
from __future__ import annotations

import io
import math
import struct
import threading
import zipfile

import numpy as np

from sentilite.shared.errors import BackendUnavailableError, ModelFileError
from sentilite.shared.files import parse_json
from sentilite.shared.seal import check_seal

from .architecture import ModelConfig
from .embedded import DeclaredInput, TFLITE_METADATA_NAME, key, read_declared_input, read_json_field
from .flatbuffer import read_tflite_metadata, verify_tflite_model

FORMAT_BACKENDS = {"onnx": ("onnxruntime",), "tflite": ("litert", "tflite"), "numpy": ("numpy",)}
_MODULES = {"onnxruntime": "onnxruntime", "litert": "ai_edge_litert", "tflite": "tflite_runtime", "numpy": "numpy"}
_EXTRAS = {"onnx": "sentilite[onnx]", "tflite": "sentilite[tflite]", "numpy": "sentilite"}


def _threads(num_threads: int | None) -> int:
    return int(num_threads) if num_threads else 1


class Backend:
    name = "backend"
    # True when the file reads rows shorter than maxlen as if they were left-padded to it,
    # so the runtime may cut the leading padding off (runtime.model.run_batches).
    variable_length: bool = False
    metadata: dict[str, str] = {}
    declared: DeclaredInput | None = None
    _source = "model file"

    def run(self, ids: np.ndarray) -> np.ndarray:
        """P(positive) per row, as float32 (n,).

        A damaged file can load and still answer with another number of
        values (its output points at another tensor) or with NaN (its
        weights are garbage): both are refused here, not later as an
        IndexError or a "NaN" score.
        """
        out = self._run(ids)
        if out.shape != (len(ids),):
            raise ModelFileError(f"{self._source}: the file gives {out.size} values for {len(ids)} rows")
        # math.isfinite over the Python floats, not np.isfinite(out).all(): right after an engine
        # call the numpy ufunc and reduction took 5-6 µs of a 0.17 ms review (one review at a
        # time, onnxruntime, measured in a loop like the bench's); this way takes about 1 µs.
        if not all(map(math.isfinite, out.tolist())):
            raise ModelFileError(f"{self._source}: the file computed a non-finite probability (damaged weights?)")
        return out

    def _run(self, ids: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _declare(self, source: str, dynamic_time: bool) -> None:
        self.declared = read_declared_input(self.metadata, source)
        self.variable_length = bool(dynamic_time and self.declared and self.declared.variable_length)


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
        check_seal(content, source, ModelFileError)
        options = ort.SessionOptions()
        options.intra_op_num_threads = _threads(num_threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(content, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            raise ModelFileError(f"{source}: onnxruntime cannot load the file ({_first_line(exc)})") from None
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
                                 f"({_first_line(exc)})") from None
        if len(self.input_shape) != 2:
            raise ModelFileError(f"{source}: expected an input of shape (batch, ids), got {self.input_shape}")
        self._source = source
        self._declare(source, dynamic_time=not isinstance(self.input_shape[1], int))

    def _run(self, ids: np.ndarray) -> np.ndarray:
        try:
            out = self.session.run(None, {self.input_name: ids.astype(np.int32, copy=False)})[0]
        except Exception as exc:  # a file that loaded but cannot run (corrupt weights, bad shapes)
            raise ModelFileError(f"{self._source}: onnxruntime failed to run the file ({_first_line(exc)})") from None
        return np.asarray(out, dtype=np.float32).reshape(-1)


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
            try:
                interp = self._interpreter_cls(model_content=self._content, num_threads=self._num_threads)
                interp.allocate_tensors()
                inputs, outputs = interp.get_input_details(), interp.get_output_details()
            except (ValueError, RuntimeError) as exc:
                reason = _first_line(exc)
                if "Didn't find op for builtin opcode" in str(exc) and self.name == "tflite":
                    raise ModelFileError(
                        f"{self._source}: this file needs a newer TFLite runtime than tflite-runtime "
                        f"{_version('tflite-runtime')} ({reason}); use the litert backend (pip install 'sentilite[tflite]')"
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
                                 f"({_first_line(exc)})") from None
        if local.dequantize is not None:
            scale, zero_point = local.dequantize
            return (out.astype(np.float32) - zero_point) * scale
        return out.astype(np.float32, copy=False)


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
MAX_NPZ_MEMBERS = 16
MAX_NPZ_METADATA_BYTES = 32 << 20
# All arrays of one .npz together, as its declared config implies them (a default model is ~3 MB).
# The config comes from the file, so without this cap a 1 KB file could ask for terabytes.
MAX_NPZ_ARRAY_BYTES = 512 << 20
# The zip's central directory: 16 members need ~1.5 KB; it is read whole before any member.
MAX_NPZ_DIRECTORY_BYTES = 64 << 10


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
            raise ModelFileError(f"{source}: weights do not form a {config.cell} model ({_first_line(exc)})") from None
        self.input_shape = [None, None]

    def _run(self, ids: np.ndarray) -> np.ndarray:
        return self.model.predict_positive(ids)


def read_npz(content: bytes, source: str) -> tuple[dict[str, str], dict[str, np.ndarray], ModelConfig]:
    """Metadata, arrays and model config of a sentilite .npz, every array checked before it is read.

    Each array's .npy header (dtype, shape) is compared with the shapes the
    declared config implies, and its stored size with that shape, before any
    array memory is allocated; pickles are never loaded.
    """
    from .numpy_model import expected_shapes

    _check_zip_directory(content, source)
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ModelFileError(f"{source}: not a readable .npz of arrays ({_first_line(exc)})") from None
    members = {info.filename: info for info in infos}
    if len(infos) > MAX_NPZ_MEMBERS or len(members) != len(infos):
        raise ModelFileError(f"{source}: expected at most {MAX_NPZ_MEMBERS} distinct arrays, found {len(infos)}")
    meta_info = members.get("__metadata__.npy")
    if meta_info is None:
        raise ModelFileError(f"{source}: the .npz carries no __metadata__ entry")
    raw = _read_npy(archive, meta_info, source, np.dtype(np.uint8), None, MAX_NPZ_METADATA_BYTES)
    meta = parse_json(raw.tobytes(), f"{source}: __metadata__", ModelFileError, MAX_NPZ_METADATA_BYTES)
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ModelFileError(f"{source}: __metadata__ is not a JSON object of strings")
    declared = read_declared_input(meta, source)
    if declared is None:
        raise ModelFileError(f"{source}: carries no sentilite metadata (not exported by sentilite?)")
    config = _model_config(meta, archive, members, source)
    try:
        shapes = expected_shapes(config, declared.vocab_size)
    except (KeyError, TypeError) as exc:
        raise ModelFileError(f"{source}: metadata describes no model ({_first_line(exc)})") from None
    total = sum(math.prod(shape) for shape in shapes.values()) * 4
    if total > MAX_NPZ_ARRAY_BYTES:
        raise ModelFileError(f"{source}: its config implies {total:,} bytes of weights, over the "
                             f"{MAX_NPZ_ARRAY_BYTES:,}-byte limit")
    extra = sorted(name[:-4] for name in members if name[:-4] not in shapes and name != "__metadata__.npy")
    if extra:
        raise ModelFileError(f"{source}: unexpected arrays {extra[:5]} for a {config.cell} model")
    arrays = {}
    for name, shape in shapes.items():
        info = members.get(f"{name}.npy")
        if info is None:
            raise ModelFileError(f"{source}: array {name!r} is missing")
        arrays[name] = _read_npy(archive, info, source, np.dtype(np.float32), shape, None)
    return meta, arrays, config


def _check_zip_directory(content: bytes, source: str) -> None:
    """Refuse a zip whose central directory is large or ZIP64 before zipfile reads it whole.

    zipfile builds one object per directory entry: a hostile 100 MB file of
    empty entries would cost gigabytes before the member count is known.
    sentilite's .npz files are never ZIP64 (16 small members).
    """
    end = content.rfind(b"PK\x05\x06", max(0, len(content) - (1 << 16) - 22))
    if end < 0 or end + 22 > len(content):
        raise ModelFileError(f"{source}: not a readable .npz of arrays (no end of zip directory)")
    entries, directory_bytes, directory_at = struct.unpack_from("<HII", content, end + 10)
    if entries == 0xFFFF or directory_bytes == 0xFFFFFFFF or directory_at == 0xFFFFFFFF:
        raise ModelFileError(f"{source}: a ZIP64 archive, which sentilite .npz files never are")
    if entries > MAX_NPZ_MEMBERS or directory_bytes > MAX_NPZ_DIRECTORY_BYTES:
        raise ModelFileError(f"{source}: {entries:,} zip entries in a {directory_bytes:,}-byte directory; "
                             f"a sentilite .npz has at most {MAX_NPZ_MEMBERS}")


def _model_config(meta: dict, archive: zipfile.ZipFile, members: dict, source: str) -> ModelConfig:
    from sentilite.shared.errors import ConfigError

    data = read_json_field(meta, "model", source, required=False)
    try:
        if data is not None:
            return ModelConfig.from_dict(data, f"{source}: metadata {key('model')}")
        # Files from sentilite 0.1 carry only the cell: the other settings follow from the arrays.
        units = _npy_header(archive, members["recurrent_kernel.npy"], source)[0][0]
        embedding = members.get("embedding.npy")
        dim = _npy_header(archive, embedding, source)[0][1] if embedding else 1
        return ModelConfig(cell=meta.get(key("cell")), input="ids" if embedding else "onehot",
                           units=int(units), embedding_dim=int(dim))
    except ConfigError as exc:
        raise ModelFileError(str(exc)) from None
    except (KeyError, IndexError) as exc:
        raise ModelFileError(f"{source}: weights do not form a model (missing {_first_line(exc)})") from None


def _npy_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, source: str):
    """(shape, fortran_order, dtype) of one member, reading only its header."""
    try:
        with archive.open(info) as handle:
            return _read_header(handle)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, RuntimeError) as exc:
        raise ModelFileError(f"{source}: array {info.filename[:-4]!r}: {_first_line(exc)}") from None


def _read_header(handle):
    version = np.lib.format.read_magic(handle)
    read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}.get(version)
    if read_header is None:
        raise ValueError(f"unsupported .npy version {version}")
    return read_header(handle, max_header_size=10_000)


def _read_npy(archive: zipfile.ZipFile, info: zipfile.ZipInfo, source: str, dtype: np.dtype,
              shape: tuple[int, ...] | None, max_bytes: int | None) -> np.ndarray:
    name = info.filename[:-4]
    try:
        with archive.open(info) as handle:
            found_shape, fortran, found_dtype = _read_header(handle)
            if found_dtype != dtype or fortran:
                raise ValueError(f"dtype {found_dtype}{' (Fortran order)' if fortran else ''}, expected {dtype}")
            if shape is not None and tuple(found_shape) != tuple(shape):
                raise ValueError(f"shape {tuple(found_shape)}, expected {tuple(shape)}")
            if len(found_shape) > 2 or any(d < 0 for d in found_shape):
                raise ValueError(f"shape {tuple(found_shape)} is not a shape of a sentilite array")
            size = math.prod(found_shape) * dtype.itemsize  # Python ints: no overflow to a negative size
            if max_bytes is not None and size > max_bytes:
                raise ValueError(f"{size:,} bytes is over the {max_bytes:,}-byte limit")
            if info.file_size < size:
                raise ValueError(f"stored size {info.file_size:,} is less than its shape needs ({size:,} bytes)")
            data = handle.read(size)
            if len(data) != size:
                raise ValueError("truncated")
            if handle.read(1):  # reading to the end is also what makes zipfile check the CRC-32
                raise ValueError("has bytes after its array")
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, RuntimeError) as exc:
        raise ModelFileError(f"{source}: array {name!r}: {_first_line(exc)}") from None
    except Exception as exc:  # zlib.error and the like from a damaged member
        raise ModelFileError(f"{source}: array {name!r} is damaged ({_first_line(exc)})") from None
    return np.frombuffer(data, dtype=dtype).reshape(found_shape)


BACKENDS = {
    "onnxruntime": OnnxRuntimeBackend,
    "litert": LiteRTBackend,
    "tflite": TFLiteRuntimeBackend,
    "numpy": NumpyBackend,
}


def available_backends(fmt: str) -> list[str]:
    """Backends for a format whose engine imports here, in order of preference."""
    import importlib.util

    return [b for b in FORMAT_BACKENDS.get(fmt, ()) if importlib.util.find_spec(_MODULES[b]) is not None]


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
        return BACKENDS[backend](content, source, num_threads)
    candidates = available_backends(fmt)
    if not candidates:
        raise BackendUnavailableError(f"{source}: no installed backend runs {fmt} files (pip install '{_EXTRAS[fmt]}')")
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
