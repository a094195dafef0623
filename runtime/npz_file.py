"""A sentilite .npz (the numpy backend's file), read as hostile data.

Every size is capped before it is read: the zip's central directory before
zipfile parses it, each array's .npy header (dtype, shape) against the
shapes the declared config implies before any array memory is allocated.
Pickles are never loaded.
"""
from __future__ import annotations

import io
import math
import struct
import zipfile

import numpy as np

from sentilite.shared.errors import ConfigError, ModelFileError, first_line
from sentilite.shared.files import parse_json

from .architecture import ModelConfig
from .embedded import key, read_declared_input, read_json_field

MAX_NPZ_MEMBERS = 16
MAX_NPZ_METADATA_BYTES = 32 << 20
# All arrays of one .npz together, as its declared config implies them (a default model is ~3 MB).
# The config comes from the file, so without this cap a 1 KB file could ask for terabytes.
MAX_NPZ_ARRAY_BYTES = 512 << 20
# The zip's central directory: 16 members need ~1.5 KB; it is read whole before any member.
MAX_NPZ_DIRECTORY_BYTES = 64 << 10


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
        raise ModelFileError(f"{source}: not a readable .npz of arrays ({first_line(exc)})") from None
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
        raise ModelFileError(f"{source}: metadata describes no model ({first_line(exc)})") from None
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
        raise ModelFileError(f"{source}: weights do not form a model (missing {first_line(exc)})") from None


def _npy_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, source: str):
    """(shape, fortran_order, dtype) of one member, reading only its header."""
    try:
        with archive.open(info) as handle:
            return _read_header(handle)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, RuntimeError) as exc:
        raise ModelFileError(f"{source}: array {info.filename[:-4]!r}: {first_line(exc)}") from None


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
        raise ModelFileError(f"{source}: array {name!r}: {first_line(exc)}") from None
    except Exception as exc:  # zlib.error and the like from a damaged member
        raise ModelFileError(f"{source}: array {name!r} is damaged ({first_line(exc)})") from None
    return np.frombuffer(data, dtype=dtype).reshape(found_shape)
