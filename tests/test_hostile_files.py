"""Hostile and broken files get sentilite's own error, in bounded time and memory.

The unit tests build a tiny package from random weights (no IMDB data, no
training): a tokenizer, a .npz, an ONNX file and, where TensorFlow is
installed, a TFLite file. Each case then breaks one thing. The damaged-file
tests load in a child process, so a crash inside an engine is seen as a
crash; the ones on real exported files are marked integration.
"""
import base64
import copy
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from sentilite.runtime.architecture import ModelConfig
from sentilite.runtime.embedded import key, read_tokenizer
from sentilite.runtime.model import load
from sentilite.runtime.tokenizer import OOV_TOKEN, PAD_TOKEN, Tokenizer, TokenizerConfig
from sentilite.shared.errors import ModelFileError, TokenizerFileError
from sentilite.shared.files import MAX_JSON_DEPTH, confined_path, decompress_limited, parse_json

VOCAB, MAXLEN = 40, 12
MODEL = ModelConfig(cell="gru", embedding_dim=4, units=4, window=8, ngram_buckets=7)
LABELS = ("negative", "positive")
TEXTS = ["w1 w2 w3", "w7", "", "w30 w31 w32 w33 w34 w35 w36 w37 w2 w3 w4 w5 w6 w9"]


# -- a tiny package ----------------------------------------------------------------------------
def _tokenizer_json() -> bytes:
    words = [PAD_TOKEN, OOV_TOKEN] + [f"w{i}" for i in range(VOCAB - 2)]
    return Tokenizer(TokenizerConfig(vocab_size=VOCAB, maxlen=MAXLEN), words).to_json().encode()


def _weights() -> dict:
    from sentilite.runtime.numpy_model import expected_shapes

    rng = np.random.default_rng(0)
    return {k: rng.normal(0, 0.4, s).astype(np.float32) for k, s in expected_shapes(MODEL, VOCAB).items()}


def _metadata(fmt: str, precision: str = "fp32", **override) -> dict:
    from sentilite.export.file_metadata import embedded_metadata

    meta = embedded_metadata(_tokenizer_json(), MODEL, precision, fmt, LABELS, MAXLEN, VOCAB, "tiny")
    meta.update({key(k): v for k, v in override.items()})
    return meta


def _context():
    from sentilite.export.registry import ExportContext

    rows = np.random.default_rng(1).integers(1, VOCAB, (16, MAXLEN)).astype(np.int32)
    return ExportContext(_weights(), MODEL, MAXLEN, VOCAB, "tiny", rows, _tokenizer_json(), LABELS)


def write_npz(path: Path, metadata: dict | None = None, arrays: dict | None = None) -> Path:
    """A .npz as export_numpy writes it, with the given metadata and arrays (default: the tiny model's)."""
    from sentilite.export.to_numpy import export_numpy

    return export_numpy(_weights() if arrays is None else arrays, path,
                        metadata=_metadata("numpy") if metadata is None else metadata)


def write_onnx(path: Path, metadata: dict | None = None) -> Path:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from sentilite.export.onnx import export_onnx

    return export_onnx(_context(), "fp32", path, metadata=_metadata("onnx") if metadata is None else metadata)


def tflite_bytes(precision: str = "fp32", metadata: dict | None = None) -> bytes:
    pytest.importorskip("tensorflow")
    pytest.importorskip("ai_edge_litert")
    from sentilite.export.tflite.convert import add_metadata, convert_tflite

    ctx = _context()
    data = convert_tflite(MODEL, ctx.weights, precision, MAXLEN, VOCAB, ctx.calibration_ids)
    return add_metadata(data, _metadata("tflite", precision) if metadata is None else metadata)


def write_manifest(folder: Path, files: list[tuple[str, str, str]], **override) -> dict:
    """manifest.json for (file, format, precision) entries already in ``folder``."""
    artifacts = []
    for name, fmt, precision in files:
        data = (folder / name).read_bytes()
        artifacts.append({"file": name, "format": fmt, "precision": precision, "bytes": len(data),
                          "sha256": hashlib.sha256(data).hexdigest()})
    manifest = {"format_version": 1, "cell": MODEL.cell, "labels": list(LABELS),
                "tokenizer": {"file": "tokenizer.json", "sha256": hashlib.sha256(_tokenizer_json()).hexdigest()},
                "artifacts": artifacts, **override}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return manifest


@pytest.fixture
def package(tmp_path) -> Path:
    """A package folder holding tokenizer.json and model.fp32.npz."""
    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "tokenizer.json").write_bytes(_tokenizer_json())
    write_npz(folder / "model.fp32.npz")
    write_manifest(folder, [("model.fp32.npz", "numpy", "fp32")])
    return folder


def test_the_tiny_package_loads_and_predicts(package):
    model = load(package)
    assert model.info["backend"] == "numpy" and len(model.predict(TEXTS)) == len(TEXTS)


# -- zlib bombs ---------------------------------------------------------------------------------
def zlib_zeros(groups: int) -> bytes:
    """A valid zlib stream of 259 + 2,064 * groups zero bytes, written directly (no compressing them).

    One fixed-Huffman block: a literal 0, then copies of 258 bytes at
    distance 1, 13 bits each, so 8 of them fill 13 bytes that simply repeat.
    """
    bits = []

    def put(value, count, msb_first=True):
        bits.extend((value >> i) & 1 for i in (reversed(range(count)) if msb_first else range(count)))

    def pack():
        out = bytearray((len(bits) + 7) // 8)
        for i, bit in enumerate(bits):
            out[i // 8] |= bit << (i % 8)
        bits.clear()
        return bytes(out)

    def copy_258():
        put(0b11000101, 8)  # length symbol 285 (258 bytes)
        put(0, 5)  # distance code 0 (1 byte back)

    put(1, 1, False)  # last block
    put(1, 2, False)  # fixed Huffman codes
    put(0x30, 8)  # the literal 0
    copy_258()  # 24 bits: the repeating part starts on a byte boundary
    head = pack()
    for _ in range(8):
        copy_258()
    group = pack()
    put(0, 7)  # end of block
    tail = pack()
    n = 1 + 258 * (1 + 8 * groups)
    adler = ((n % 65521) << 16) | 1
    return b"\x78\x01" + head + group * groups + tail + adler.to_bytes(4, "big")


def test_the_bomb_helper_is_a_real_zlib_stream():
    assert zlib.decompress(zlib_zeros(3)) == bytes(259 + 2064 * 3)


def _bounded(fn, seconds=1.0, megabytes=64):
    """Run fn; return its exception. It must take under ``seconds`` and allocate under ``megabytes``."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        fn()
    except Exception as exc:  # returned for the caller to check
        error = exc
    else:
        error = None
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.2f} s"
    assert peak < megabytes << 20, f"allocated {peak / 2 ** 20:.0f} MB"
    return error


GIB_OF_ZEROS = zlib_zeros((1 << 30) // 2064)  # 6.8 MB that expand to 1 GiB


def test_zlib_bomb_in_the_embedded_tokenizer_is_refused_fast_and_small():
    meta = _metadata("numpy")
    meta[key("tokenizer.zlib_base64")] = base64.b64encode(GIB_OF_ZEROS).decode()
    error = _bounded(lambda: read_tokenizer(meta, "bomb.npz"), seconds=1.0, megabytes=64)
    assert isinstance(error, ModelFileError) and "expands beyond the 16,777,216-byte limit" in str(error)


def test_zlib_bomb_inside_a_model_file_is_refused_at_load(tmp_path):
    meta = _metadata("numpy")
    meta[key("tokenizer.zlib_base64")] = base64.b64encode(GIB_OF_ZEROS).decode()
    path = write_npz(tmp_path / "bomb.npz", meta)
    error = _bounded(lambda: load(path), seconds=2.0, megabytes=200)  # the 9 MB metadata is read twice
    assert isinstance(error, ModelFileError) and str(error).startswith(f"{path}: embedded tokenizer")


def test_decompress_limited_refuses_truncated_and_corrupt_streams():
    whole = zlib.compress(b"x" * 1000)
    assert decompress_limited(whole, "t", ModelFileError, 1000) == b"x" * 1000
    with pytest.raises(ModelFileError, match="expands beyond the 999-byte limit"):
        decompress_limited(whole, "t", ModelFileError, 999)
    with pytest.raises(ModelFileError, match="t: compressed data is truncated"):
        decompress_limited(whole[:-6], "t", ModelFileError, 10_000)
    with pytest.raises(ModelFileError, match="t: corrupt compressed data"):
        decompress_limited(b"\x78\x9c" + b"\xff" * 20, "t", ModelFileError, 10_000)


# -- JSON: deep, huge, odd -----------------------------------------------------------------------
DEEP = "[" * 100_000 + "]" * 100_000
NESTED_BUT_PARSEABLE = "[" * 900 + "]" * 900  # json parses it; repr() of it can still overflow the stack


@pytest.mark.parametrize("text, message", [
    (DEEP, "JSON nested too deeply"),
    (NESTED_BUT_PARSEABLE, f"JSON nested more than {MAX_JSON_DEPTH} levels deep"),
    ('{"a": ' * 50_000 + "1" + "}" * 50_000, "JSON nested too deeply"),
    ("1" * 5000, "not valid JSON .Exceeds the limit"),  # Python's int digit limit: a ValueError
    ('{"a": 1', "not valid JSON"),
    (b"\xff\xfe{}", "not valid JSON"),
    (" " * 101, "101 bytes of JSON is over the 100-byte limit"),
])
def test_parse_json_turns_every_failure_into_the_callers_error(text, message):
    with pytest.raises(TokenizerFileError, match=f"^src: {message}"):
        parse_json(text, "src", TokenizerFileError, max_bytes=100 if text == " " * 101 else 1 << 20)


def test_deep_json_in_the_manifest(package):
    raw = (package / "manifest.json").read_text()
    for labels in (DEEP, NESTED_BUT_PARSEABLE):
        (package / "manifest.json").write_text(raw.replace('["negative", "positive"]', labels))
        with pytest.raises(ModelFileError, match="manifest.json: JSON nested"):
            load(package)


def test_huge_manifest_is_refused_before_it_is_read(package):
    with open(package / "manifest.json", "wb") as handle:
        handle.truncate(17 << 20)  # sparse: 17 MB of zeros costs no disk
    error = _bounded(lambda: load(package), seconds=1.0, megabytes=8)
    assert isinstance(error, ModelFileError) and "over the 16,777,216-byte limit" in str(error)


def test_deep_json_in_the_package_tokenizer(package):
    deep = DEEP.encode()
    (package / "tokenizer.json").write_bytes(deep)
    write_manifest(package, [("model.fp32.npz", "numpy", "fp32")],
                   tokenizer={"file": "tokenizer.json", "sha256": hashlib.sha256(deep).hexdigest()})
    with pytest.raises(ModelFileError, match="tokenizer.json: JSON nested too deeply"):
        load(package)


@pytest.mark.parametrize("field", ["labels", "input", "model"])
def test_deep_json_in_a_metadata_field(tmp_path, field):
    path = write_npz(tmp_path / "m.npz", _metadata("numpy", **{field: NESTED_BUT_PARSEABLE}))
    with pytest.raises(ModelFileError, match=f"metadata sentilite.{field}: JSON nested more than"):
        load(path)


def test_deep_json_in_the_embedded_tokenizer(tmp_path):
    deep = DEEP.encode()
    meta = _metadata("numpy")
    meta[key("tokenizer.zlib_base64")] = base64.b64encode(zlib.compress(deep)).decode()
    meta[key("tokenizer.sha256")] = hashlib.sha256(deep).hexdigest()
    with pytest.raises(ModelFileError, match="embedded tokenizer.: JSON nested too deeply"):
        load(write_npz(tmp_path / "m.npz", meta))


def test_deep_json_as_the_whole_npz_metadata(tmp_path):
    arrays = dict(_weights())
    path = tmp_path / "m.npz"
    buffer = io.BytesIO()
    np.savez(buffer, **arrays, __metadata__=np.frombuffer(DEEP.encode(), np.uint8))
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ModelFileError, match="__metadata__: JSON nested too deeply"):
        load(path)


def test_deep_json_in_onnx_metadata(tmp_path):
    path = write_onnx(tmp_path / "m.onnx", _metadata("onnx", labels=DEEP))
    with pytest.raises(ModelFileError, match="metadata sentilite.labels: JSON nested too deeply"):
        load(path)


# -- .npz arrays -------------------------------------------------------------------------------
def _npz_bytes(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _npy_header_only(shape, descr="<f4") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def _members(**replace) -> dict[str, bytes]:
    members = {f"{k}.npy": _npy(v) for k, v in _weights().items()}
    members["__metadata__.npy"] = _npy(np.frombuffer(json.dumps(_metadata("numpy")).encode(), np.uint8))
    for name, data in replace.items():
        if data is None:
            members.pop(f"{name}.npy")
        else:
            members[f"{name}.npy"] = data
    return members


def _load_npz(tmp_path, content: bytes):
    path = tmp_path / "m.npz"
    path.write_bytes(content)
    return _bounded(lambda: load(path), seconds=1.0, megabytes=64)


@pytest.mark.parametrize("case, replace, message", [
    ("wrong shape", {"kernel": _npy(np.zeros((4, 13), np.float32))}, "array 'kernel': shape (4, 13), expected (4, 12)"),
    ("wrong dtype", {"kernel": _npy(np.zeros((4, 12), np.float64))}, "array 'kernel': dtype float64, expected float32"),
    ("Fortran order", {"kernel": _npy(np.asfortranarray(np.zeros((4, 12), np.float32)))}, "Fortran order"),
    ("pickled objects", {"kernel": _npy(np.array([{"a": 1}], dtype=object))}, "array 'kernel': dtype object"),
    ("short data", {"kernel": _npy_header_only((4, 12)) + b"\0" * 10}, "array 'kernel': stored size"),
    ("extra data", {"kernel": _npy(np.zeros((4, 12), np.float32)) + b"\0" * 8}, "has bytes after its array"),
    ("missing array", {"kernel": None}, "array 'kernel' is missing"),
    ("extra array", {"spare": _npy(np.zeros(3, np.float32))}, "unexpected arrays ['spare']"),
    ("no metadata", {"__metadata__": None}, "carries no __metadata__ entry"),
    ("metadata shape overflows int64", {"__metadata__": _npy_header_only((2 ** 62, 2 ** 62), "|u1")},
     "bytes is over the 33,554,432-byte limit"),
    ("metadata of negative shape", {"__metadata__": _npy_header_only((-1,), "|u1") + b"{}"},
     "is not a shape of a sentilite array"),
])
def test_npz_arrays_are_checked_against_the_declared_config(tmp_path, case, replace, message):
    error = _load_npz(tmp_path, _npz_bytes(_members(**replace)))
    assert isinstance(error, ModelFileError) and message in str(error), f"{case}: {error!r}"


def test_npz_config_that_implies_terabytes_is_refused_before_allocation(tmp_path):
    huge = ModelConfig(cell="gru", embedding_dim=100_000, units=4)
    meta = _metadata("numpy", model=json.dumps(huge.to_dict()),
                     input=json.dumps({"maxlen": MAXLEN, "vocab_size": 10_000_000, "variable_length": True}))
    members = _members(embedding=_npy_header_only((10_000_000, 100_000)))
    members["__metadata__.npy"] = _npy(np.frombuffer(json.dumps(meta).encode(), np.uint8))
    error = _load_npz(tmp_path, _npz_bytes(members))
    assert isinstance(error, ModelFileError) and "bytes of weights, over the 536,870,912-byte limit" in str(error)


@pytest.mark.parametrize("table, value, message", [
    ("ngram_fingerprints", 300.0, "n-gram fingerprints must be whole numbers in 0..255"),
    ("ngram_fingerprints", np.inf, "n-gram fingerprints must be whole numbers in 0..255"),
    ("ngram_displacements", -1.0, "n-gram displacements must be whole numbers in 0..32767"),
    ("ngram_displacements", 2.5, "n-gram displacements must be whole numbers in 0..32767"),
])
def test_npz_dictionary_tables_are_checked_before_any_lookup(tmp_path, table, value, message):
    """A dictionary's slots and fingerprints index arrays: a bad one is refused at load, not at predict."""
    from sentilite.runtime.numpy_model import expected_shapes

    model = ModelConfig(cell="gru", embedding_dim=4, units=4, window=8, ngram_buckets=7, ngram_lookup="dictionary")
    rng = np.random.default_rng(0)
    arrays = {k: rng.normal(0, 0.4, s).astype(np.float32) for k, s in expected_shapes(model, VOCAB).items()}
    arrays["ngram_displacements"][:] = 0
    arrays["ngram_fingerprints"][:] = 255
    meta = _metadata("numpy", model=json.dumps(model.to_dict()))
    good = load(write_npz(tmp_path / "good.npz", meta, arrays))
    assert len(good.predict(TEXTS)) == len(TEXTS)
    arrays[table][1] = value
    error = _load_npz(tmp_path, (write_npz(tmp_path / "bad.npz", meta, arrays)).read_bytes())
    assert isinstance(error, ModelFileError) and message in str(error), repr(error)


def test_npz_member_that_is_a_zlib_bomb_is_read_no_further_than_its_shape(tmp_path):
    """The header says (40, 4) floats; the deflated body expands to 1 GiB of zeros."""
    body = _npy_header_only((VOCAB, 4)) + bytes(640)
    members = _members()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            if name != "embedding.npy":
                archive.writestr(name, data)
        info = zipfile.ZipInfo("embedding.npy")
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, body + bytes(96 << 20))  # 96 MB of zeros past the array, ~100 KB deflated
    error = _load_npz(tmp_path, buffer.getvalue())
    assert isinstance(error, ModelFileError) and "has bytes after its array" in str(error)


def test_npz_with_many_zip_entries_is_refused_before_zipfile_lists_them(tmp_path):
    members = _members()
    members.update({f"x{i}.npy": b"" for i in range(5000)})
    error = _load_npz(tmp_path, _npz_bytes(members, zipfile.ZIP_STORED))
    assert isinstance(error, ModelFileError) and f"{len(members):,} zip entries" in str(error)


def test_npz_with_a_flipped_weight_byte_fails_its_crc(tmp_path):
    content = bytearray(_npz_bytes(_members(), zipfile.ZIP_STORED))
    data = _npy(_weights()["embedding"])
    at = content.find(data) + len(data) - 5  # inside the float data, past the .npy header
    content[at] ^= 0x40
    error = _load_npz(tmp_path, bytes(content))
    assert isinstance(error, ModelFileError) and "Bad CRC-32" in str(error)


# -- manifest file entries ----------------------------------------------------------------------
@pytest.mark.parametrize("name, message", [
    ("../model.fp32.npz", "must name a file inside the package folder"),
    ("/etc/passwd", "must name a file inside the package folder"),
    ("sub/model.fp32.npz", "must name a file inside the package folder"),
    ("..", "must name a file inside the package folder"),
    (".", "must name a file inside the package folder"),
    ("a\\..\\b", "must name a file inside the package folder"),
    ("", "is not a file name"),
    (None, "is not a file name"),
    (7, "is not a file name"),
    ("x\x00y", "is not a file name"),
    ("a" * 100_000, "is not a file name"),
])
def test_manifest_file_entries_are_confined_to_the_package(package, name, message):
    manifest = json.loads((package / "manifest.json").read_text())
    manifest["artifacts"][0]["file"] = name
    (package / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match=f"manifest.json: artifacts.0.: file entry .* {message}") as caught:
        load(package)
    assert len(str(caught.value)) < len(str(package)) + 200  # a hostile name is shortened


def test_a_tokenizer_entry_outside_the_package_is_refused(package):
    manifest = json.loads((package / "manifest.json").read_text())
    manifest["tokenizer"]["file"] = "../tokenizer.json"
    (package / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match="tokenizer: file entry '../tokenizer.json' must name a file inside"):
        load(package)


def test_links_fifos_and_folders_in_a_package_are_refused_without_reading_them(package, tmp_path):
    outside = tmp_path / "outside.npz"
    outside.write_bytes((package / "model.fp32.npz").read_bytes())
    (package / "model.fp32.npz").unlink()
    os.symlink(outside, package / "model.fp32.npz")
    with pytest.raises(ModelFileError, match="'model.fp32.npz' links outside the package folder"):
        load(package)
    (package / "model.fp32.npz").unlink()
    os.mkfifo(package / "model.fp32.npz")  # reading it would block forever
    error = _bounded(lambda: load(package), seconds=1.0)
    assert isinstance(error, ModelFileError) and "'model.fp32.npz' is not a regular file" in str(error)
    (package / "model.fp32.npz").unlink()
    os.symlink("/dev/zero", package / "model.fp32.npz")  # a read would never end
    with pytest.raises(ModelFileError, match="links outside the package folder"):
        load(package)
    (package / "model.fp32.npz").unlink()
    os.symlink(package / "model.fp32.npz", package / "loop")
    with pytest.raises(ModelFileError):  # a dangling link: not found, named
        confined_path(package, "loop", "m", ModelFileError)


def test_a_link_inside_the_package_is_fine(package):
    os.rename(package / "model.fp32.npz", package / "weights.npz")
    os.symlink("weights.npz", package / "model.fp32.npz")
    assert load(package).predict(["w1"]) in (["negative"], ["positive"])


@pytest.mark.parametrize("change, message", [
    (lambda a: a.pop("precision"), "unknown precision 'None'"),
    (lambda a: a.update(precision=["fp32"]), "unknown precision"),
    (lambda a: a.update(format="pickle"), "unknown format 'pickle'"),
    (lambda a: a.update(format=["onnx"]), r"unknown format \['onnx'\]"),
    (lambda a: a.update(format={"onnx": 1}), "unknown format"),
    (lambda a: a.update(bytes="12"), "needs its size in bytes and its sha256"),
    (lambda a: a.pop("sha256"), "needs its size in bytes and its sha256"),
])
def test_manifest_artifact_entries_are_checked_when_read(package, change, message):
    manifest = json.loads((package / "manifest.json").read_text())
    change(manifest["artifacts"][0])
    (package / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match=f"artifacts.0.: {message}"):
        load(package)


# -- labels and the input entry, at load time ------------------------------------------------------
BAD_LABELS = [(["only one"], "1 label"), (["same", "same"], "'same' appears twice"),
              (["", "positive"], "label 0 is empty"),
              (["x" * 101, "y"], "label 0 has 101 characters"), ([1, 2], "label 0 is not a string"),
              ("negative,positive", "not a list but str"), (None, "not a list but null"),
              ([f"c{i}" for i in range(51)], "51 labels"), (["a", "b", ["c"]], "label 2 is not a string")]
LABELS_RULE = "labels must be 2 to 50 distinct non-empty strings of at most 100 characters"


@pytest.mark.parametrize("labels, reason", BAD_LABELS)
def test_bad_labels_in_the_manifest_are_refused_at_load(package, labels, reason):
    write_manifest(package, [("model.fp32.npz", "numpy", "fp32")], labels=labels)
    with pytest.raises(ModelFileError, match=rf"manifest.json: labels: {LABELS_RULE} \({reason}\), got "):
        load(package)


@pytest.mark.parametrize("labels, reason", BAD_LABELS)
def test_bad_labels_in_a_single_file_are_refused_at_load(tmp_path, labels, reason):
    path = write_npz(tmp_path / "m.npz", _metadata("numpy", labels=json.dumps(labels)))
    with pytest.raises(ModelFileError, match=rf"metadata sentilite.labels: {LABELS_RULE} \({reason}\), got "):
        load(path)


def test_labels_that_are_not_the_files_are_refused_at_load(package, tmp_path):
    """Three labels are labels, but not those of this model of two."""
    write_manifest(package, [("model.fp32.npz", "numpy", "fp32")], labels=["a", "b", "c"])
    with pytest.raises(ModelFileError, match=r"model.fp32.npz: its labels \['negative', 'positive'\] differ from "
                                             r"the labels of .*manifest.json \['a', 'b', 'c'\]"):
        load(package)
    path = write_npz(tmp_path / "m.npz", _metadata("numpy", labels='["a", "b", "c"]'))
    with pytest.raises(ModelFileError, match=r"m.npz: metadata sentilite.labels \['a', 'b', 'c'\] differs from the "
                                             r"labels of its sentilite.model \['negative', 'positive'\]"):
        load(path)


@pytest.mark.parametrize("entry, message", [
    ({"maxlen": 0, "vocab_size": VOCAB}, "maxlen must be an integer in 1..100,000, got 0"),
    ({"maxlen": 10 ** 9, "vocab_size": VOCAB}, "maxlen must be an integer"),
    ({"maxlen": True, "vocab_size": VOCAB}, "maxlen must be an integer"),
    ({"maxlen": "12", "vocab_size": VOCAB}, "maxlen must be an integer"),
    ({"maxlen": MAXLEN}, "vocab_size must be an integer"),
    ({"maxlen": MAXLEN, "vocab_size": VOCAB, "variable_length": "yes"}, "variable_length must be true or false"),
    ([MAXLEN, VOCAB], "expected a JSON object"),
    ({"maxlen": MAXLEN + 1, "vocab_size": VOCAB}, "the model reads 13 ids per text but the tokenizer pads to 12"),
    ({"maxlen": MAXLEN, "vocab_size": VOCAB + 1}, r"weights do not form|has 41 ids but the tokenizer has 40|shape"),
])
def test_a_bad_input_entry_is_refused_at_load(tmp_path, entry, message):
    path = write_npz(tmp_path / "m.npz", _metadata("numpy", input=json.dumps(entry)))
    with pytest.raises(ModelFileError, match=message):
        load(path)


def test_missing_input_entry_is_refused(tmp_path):
    meta = _metadata("numpy")
    del meta[key("input")]
    with pytest.raises(ModelFileError, match="metadata lacks sentilite.input"):
        load(write_npz(tmp_path / "m.npz", meta))


def test_bad_labels_and_input_in_onnx_and_tflite_files_are_refused_at_load(tmp_path):
    path = write_onnx(tmp_path / "m.onnx", _metadata("onnx", labels='["a"]'))
    with pytest.raises(ModelFileError, match=rf"{LABELS_RULE} \(1 label\)"):
        load(path)
    path = write_onnx(tmp_path / "m2.onnx", _metadata("onnx", input='{"maxlen": -1, "vocab_size": 40}'))
    with pytest.raises(ModelFileError, match="maxlen must be an integer"):
        load(path)
    (tmp_path / "m.tflite").write_bytes(tflite_bytes(metadata=_metadata("tflite", labels='["a", "a"]')))
    with pytest.raises(ModelFileError, match=rf"{LABELS_RULE} \('a' appears twice\)"):
        load(tmp_path / "m.tflite")


def test_onnx_external_data_is_never_read(tmp_path):
    """An ONNX file whose weights live "outside" it: onnxruntime refuses it when loaded from bytes."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1 << 28], data_location=TensorProto.EXTERNAL)
    for k, v in (("location", "/dev/zero"), ("offset", "0"), ("length", str(1 << 30))):
        tensor.external_data.add(key=k, value=v)
    graph = helper.make_graph([helper.make_node("Identity", ["w"], ["y"])], "g", [],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [tensor])
    path = tmp_path / "m.onnx"
    path.write_bytes(helper.make_model(graph).SerializeToString())
    error = _bounded(lambda: load(path), seconds=2.0, megabytes=16)
    assert isinstance(error, ModelFileError) and "onnxruntime cannot load the file" in str(error)


# -- report on a package with a subset of precisions -------------------------------------------------
def test_report_works_without_an_fp32_file(tmp_path):
    pytest.importorskip("matplotlib")
    from sentilite.export.report import collect_rows, write_report

    folder = tmp_path / "gru"
    folder.mkdir()
    (folder / "model.keras").write_bytes(b"k" * 1000)
    ev = {"accuracy": 0.85, "agreement": 0.99, "max_abs_diff": 0.01, "n": 2000,
          "short_text": {"accuracy": [0.7, 0.75, 0.8]}}
    manifest = {"format_version": 1, "cell": "gru", "labels": list(LABELS),
                "source": {"file": "model.keras", "test_accuracy": 0.86, "test_reviews": 2000},
                "artifacts": [{"file": "model.int8.tflite", "format": "tflite", "precision": "int8", "bytes": 300_000,
                               "sha256": "0" * 64, "eval": ev},
                              {"file": "model.fp16.onnx", "format": "onnx", "precision": "fp16", "bytes": 600_000,
                               "sha256": "0" * 64, "eval": ev}]}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    report = write_report(tmp_path)
    rows = {r["file"]: r for r in collect_rows(tmp_path)}
    assert rows["gru/model.int8.tflite"]["size_vs_fp32"] is None and rows["gru/model.int8.tflite"]["size_ok"] is None
    text = report.read_text()
    assert "| gru | tflite | int8 | `gru/model.int8.tflite` | 300,000 | (no fp32 file) | 0.8500 |" in text


# -- tar extraction -------------------------------------------------------------------------------
def _tar(path: Path, members: dict[str, bytes], modes: dict[str, int] | None = None, pax: dict | None = None,
         member_pax: dict[str, dict] | None = None) -> Path:
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT, pax_headers=pax or {}) as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = (modes or {}).get(name, 0o644)
            info.pax_headers = (member_pax or {}).get(name, {})
            tar.addfile(info, io.BytesIO(content))
    return path


def _reviews(per_class: int = 2) -> dict[str, bytes]:
    return {f"aclImdb/{split}/{cls}/{i}_{rating}.txt": f"{split} {cls} {i}".encode()
            for split in ("train", "test") for cls, rating in (("pos", 8), ("neg", 3)) for i in range(per_class)}


def test_extraction_uses_the_data_filter(tmp_path):
    from sentilite.train.data import extract_archive

    if not hasattr(tarfile, "data_filter"):
        pytest.skip("this Python has no tarfile extraction filters")
    members = _reviews()
    odd = "aclImdb/train/pos/0_8.txt"
    archive = _tar(tmp_path / "a.tar.gz", members, modes={odd: 0o4777, "aclImdb/test/neg/1_3.txt": 0o000})
    calls = []
    real = tarfile.TarFile.extract

    def spy(self, member, path="", **kwargs):
        calls.append(kwargs.get("filter"))
        return real(self, member, path, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tarfile.TarFile, "extract", spy)
        root = extract_archive(archive, tmp_path / "out")
    assert calls and set(calls) == {"data"}
    mode = (root / "train/pos/0_8.txt").stat().st_mode
    assert not mode & 0o7000 and not mode & 0o022  # setuid and group/other write cleared by the filter
    assert (root / "test/neg/1_3.txt").read_text() == "test neg 1"  # an unreadable mode made readable


@pytest.mark.parametrize("cap, value, message", [
    ("MAX_EXTRACT_MEMBERS", 5, "more than 5 members"),
    ("MAX_EXTRACT_BYTES", 40, "more than 40 bytes of content"),
])
def test_extraction_and_reading_stop_at_the_caps(tmp_path, monkeypatch, cap, value, message):
    from sentilite.train import data as imdb_data
    from sentilite.train.errors import DatasetError

    archive = _tar(tmp_path / "a.tar.gz", _reviews())
    monkeypatch.setattr(imdb_data, cap, value)
    with pytest.raises(DatasetError, match=message):
        imdb_data.extract_archive(archive, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
    with pytest.raises(DatasetError, match=message):
        imdb_data.load_imdb(archive, progress=False, allow_incomplete=True)


@pytest.mark.parametrize("where", ["global", "member"])
def test_a_huge_pax_header_is_refused_before_it_is_read(tmp_path, where):
    from sentilite.train import data as imdb_data
    from sentilite.train.errors import DatasetError

    # 64 MB of header that tarfile would read into memory whole; gzip makes it 64 KB.
    huge = {"comment": "x" * (64 << 20)}
    members = _reviews()
    archive = _tar(tmp_path / "a.tar.gz", members, pax=huge if where == "global" else None,
                   member_pax={list(members)[3]: huge} if where == "member" else None)
    error = _bounded(lambda: imdb_data.extract_archive(archive, tmp_path / "out"), seconds=2.0, megabytes=16)
    assert isinstance(error, DatasetError) and "a tar header of 67,108," in str(error)
    error = _bounded(lambda: imdb_data.load_imdb(archive, progress=False), seconds=2.0, megabytes=16)
    assert isinstance(error, DatasetError) and "a tar header of 67,108," in str(error)


def test_a_huge_review_in_an_archive_is_refused(tmp_path, monkeypatch):
    from sentilite.train import data as imdb_data
    from sentilite.train.errors import DatasetError

    members = _reviews()
    members["aclImdb/train/pos/9_9.txt"] = b"great " * 200
    monkeypatch.setattr(imdb_data, "MAX_REVIEW_BYTES", 1000)
    with pytest.raises(DatasetError, match="9_9.txt is 1,200 bytes; an IMDB review is under 1,000"):
        imdb_data.load_imdb(_tar(tmp_path / "a.tar.gz", members), progress=False, allow_incomplete=True)


# -- an incomplete dataset folder ------------------------------------------------------------------
def test_an_incomplete_folder_is_refused_with_counts_or_marked_incomplete(tmp_path):
    from sentilite.train.data import REVIEWS_PER_CLASS, load_imdb
    from sentilite.train.errors import DatasetError

    for name, content in _reviews(per_class=3).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(content)
    (tmp_path / "aclImdb/test/pos/0_8.txt").unlink()
    with pytest.raises(DatasetError, match=f"expected {REVIEWS_PER_CLASS:,} reviews in each of train/test x neg/pos, "
                                           "found train/neg 3, train/pos 3, test/neg 3, test/pos 2"):
        load_imdb(tmp_path, progress=False)
    data = load_imdb(tmp_path, progress=False, allow_incomplete=True)
    assert not data.complete and len(data.train) == 6 and len(data.test) == 5
    assert data.describe().startswith("6 train and 5 test reviews (INCOMPLETE") and "25,000 train" not in data.describe()


# -- damaged files in a child process: a crash is seen as a crash ----------------------------------------
DAMAGE_CHILD = """
import json, os, sys, tempfile
import numpy as np
from sentilite.runtime import load, ModelFileError
from sentilite.runtime.flatbuffer import _buffer_bytes, _root
from sentilite.shared import seal as sealing

def resealed(data):  # a damaged file sealed again, as a crafted file would be: only the verifier stands in the way
    span = sealing._locate(data)
    if span is None:
        return data
    return sealing.seal(data[: span[0]] + sealing.SEAL_PLACEHOLDER.encode() + data[span[1]:])

def damaged_copies(data, mode, count, seed):
    rng = np.random.default_rng(seed)
    if mode == "flip-any":  # anywhere but the seal's own key: a file without it claims no seal
        where = np.arange(len(data))
        at = data.find(sealing.SEAL_KEY.encode())
        if at >= 0:
            where = np.concatenate([where[:at], where[at + len(sealing.SEAL_KEY):]])
    elif mode.startswith("flip"):  # flip-tables: every byte that is not a buffer's constant data
        r, root = _root(data)
        keep = np.ones(len(data), bool)
        for b in r.tables(root, 4):
            located = _buffer_bytes(r, b)
            if located:
                keep[located[0]: located[0] + located[1]] = False
        where = np.flatnonzero(keep)
    for i in range(count):
        if mode == "truncate":
            end = int(rng.integers(8, len(data)))
            yield i, end, data[:end]
        else:
            damaged = bytearray(data)
            plan = [(int(rng.choice(where)), int(rng.integers(1, 256))) for _ in range(int(rng.integers(1, 4)))]
            for at, mask in plan:
                damaged[at] ^= mask
            yield i, plan, resealed(bytes(damaged)) if mode.endswith("resealed") else bytes(damaged)

results = {}
for path, mode, count, seed in json.loads(sys.argv[1]):
    data = open(path, "rb").read()
    bad = os.path.join(tempfile.mkdtemp(), "bad" + os.path.splitext(path)[1])
    counts = results.setdefault(f"{os.path.basename(path)} {mode}", {})
    for i, plan, damaged in damaged_copies(data, mode, count, seed):
        with open(bad, "wb") as handle:
            handle.write(damaged)
        print("try", os.path.basename(path), mode, i, plan, flush=True)
        try:
            load(bad).predict(["w1 w2 w3", "", "a fine film", "awful"])
            outcome = "loads"  # a flip inside a weight or a name: a file that still works
        except ModelFileError:
            outcome = "ModelFileError"
        counts[outcome] = counts.get(outcome, 0) + 1
print("outcomes", json.dumps(results), flush=True)
"""


def damage_in_child(jobs: list[tuple[Path, str, int, int]], timeout: float = 300) -> dict:
    """Load damaged copies of files in one child: (path, "truncate" or "flip-tables", count, seed) each.

    Returns {"<file name> <mode>": {outcome: count}}; fails on a crash or any exception but ModelFileError.
    """
    spec = json.dumps([(str(path), mode, count, seed) for path, mode, count, seed in jobs])
    result = subprocess.run([sys.executable, "-c", DAMAGE_CHILD, spec], capture_output=True, text=True,
                            errors="replace", timeout=timeout, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    tries = [line for line in result.stdout.splitlines() if line.startswith("try")]
    assert result.returncode == 0, (f"the child died (rc {result.returncode}) at "
                                    f"{tries[-1] if tries else 'start'}: {result.stderr[-1500:]}")
    return json.loads(result.stdout.splitlines()[-1].split(" ", 1)[1])


def _tiny_files(tmp_path) -> list[Path]:
    files = [write_npz(tmp_path / "model.fp32.npz"), write_onnx(tmp_path / "model.fp32.onnx")]
    for precision in ("fp32", "int8"):
        (tmp_path / f"model.{precision}.tflite").write_bytes(tflite_bytes(precision))
        files.append(tmp_path / f"model.{precision}.tflite")
    return files


def test_damaged_tiny_files_give_our_error_in_a_child(tmp_path):
    files = _tiny_files(tmp_path)
    jobs = [(path, "truncate", 40, 1) for path in files]
    jobs += [(path, "flip-tables", 300, 2) for path in files if path.suffix == ".tflite"]
    outcomes = damage_in_child(jobs)
    for path in files:
        assert outcomes[f"{path.name} truncate"] == {"ModelFileError": 40}
    for name in ("model.fp32.tflite", "model.int8.tflite"):
        flips = outcomes[f"{name} flip-tables"]
        assert sum(flips.values()) == 300 and flips.get("ModelFileError", 0) >= 150, (name, flips)


@pytest.mark.integration
def test_real_tflite_files_with_flipped_table_bytes_give_our_error(exported):
    """600 seeded damaged copies of each TFLite file of a trained LSTM, in one child.

    Sealed as exported, every damaged copy is refused by its seal; sealed
    again after the damage (a crafted file), the verifier must refuse it or
    the file must still run, never crash.
    """
    names = ("model.int8.tflite", "model.fp32.tflite", "model.fp16.tflite", "model.dynamic-int8.tflite")
    outcomes = damage_in_child([(exported["lstm"][0] / name, mode, 300, 3) for name in names
                                for mode in ("flip-tables", "flip-tables-resealed")])
    for name in names:
        assert outcomes[f"{name} flip-tables"] == {"ModelFileError": 300}, (name, outcomes)
        assert outcomes[f"{name} flip-tables-resealed"].get("ModelFileError", 0) > 150, (name, outcomes)


@pytest.mark.integration
def test_real_onnx_files_with_flipped_bytes_are_refused_by_their_seal(exported):
    """A flipped byte in an ONNX initializer can make onnxruntime 1.32 terminate at run time; the seal stops it."""
    names = ("model.int8.onnx", "model.fp32.onnx", "model.dynamic-int8.onnx")
    outcomes = damage_in_child([(exported["gru"][0] / name, "flip-any", 200, 5) for name in names])
    assert outcomes == {f"{name} flip-any": {"ModelFileError": 200} for name in names}


@pytest.mark.integration
def test_real_files_truncated_in_the_middle_give_our_error(exported):
    names = ("model.int8.tflite", "model.fp32.tflite", "model.int8.onnx", "model.fp32.onnx",
             "model.dynamic-int8.onnx", "model.fp32.npz")
    outcomes = damage_in_child([(exported["gru"][0] / name, "truncate", 60, 4) for name in names])
    assert outcomes == {f"{name} truncate": {"ModelFileError": 60} for name in names}


# -- the verifier's own checks, one field at a time -------------------------------------------------
@pytest.fixture(scope="module")
def tiny_int8_tflite() -> bytes:
    return tflite_bytes("int8")


def _edit_tflite(data: bytes, edit) -> bytes:
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
    edit(model)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _first(model, name):
    from sentilite.export.tflite.loop_state import op_name

    for g in model.subgraphs:
        for op in g.operators:
            if op_name(model, op) == name:
                return g, op
    raise AssertionError(name)


def _set_scale(model, value):
    g, op = _first(model, "FULLY_CONNECTED")
    g.tensors[op.outputs[0]].quantization.scale = np.array([value], np.float32)


def _drop_options(model):
    _first(model, "SUM")[1].builtinOptions = None
    _first(model, "SUM")[1].builtinOptionsType = 0


def _swap_options(model):
    g, op = _first(model, "ADD")
    mul = _first(model, "MUL")[1]
    op.builtinOptionsType, op.builtinOptions = mul.builtinOptionsType, mul.builtinOptions


def _drop_input(model):
    g, op = _first(model, "STRIDED_SLICE")
    op.inputs = op.inputs[:1]


def _read_before_write(model):
    g = model.subgraphs[0]
    g.operators[0].inputs = [g.operators[-1].outputs[0]] + list(g.operators[0].inputs[1:])


def _write_a_constant(model):
    g, op = _first(model, "FULLY_CONNECTED")
    op.outputs = [op.inputs[1]]


def _unknown_operator(model):
    model.operatorCodes[0].builtinCode = model.operatorCodes[0].deprecatedBuiltinCode = 3  # CONV_2D


def _omitted_input(model):
    g, op = _first(model, "GATHER")
    op.inputs = [-1, op.inputs[1]]


def _zero_point(model):
    g, op = _first(model, "FULLY_CONNECTED")
    g.tensors[op.outputs[0]].quantization.zeroPoint = np.array([300], np.int64)


def _per_channel(model):
    g, op = _first(model, "FULLY_CONNECTED")
    q = g.tensors[op.inputs[1]].quantization
    q.quantizedDimension = 5


def _while_arity(model):
    g, op = _first(model, "WHILE")
    body = model.subgraphs[op.builtinOptions.bodySubgraphIndex]
    body.outputs = body.outputs[:-1]


def _huge_tensor(model):
    g = model.subgraphs[0]
    g.tensors[g.operators[0].outputs[0]].shape = np.array([1 << 20, 1 << 20], np.int32)


def _graph_output_never_computed(model):
    g = model.subgraphs[0]
    g.tensors.append(copy.deepcopy(g.tensors[g.outputs[0]]))  # a tensor no operator writes
    g.outputs = [len(g.tensors) - 1]


VERIFIER_CASES = {
    "negative scale": (lambda m: _set_scale(m, -0.0004), "has quantization scale -0.000"),
    "huge scale": (lambda m: _set_scale(m, 1.3e13), "has quantization scale"),
    "NaN scale": (lambda m: _set_scale(m, float("nan")), "has quantization scale nan"),
    "zero point out of range": (_zero_point, "zero point outside -128..127"),
    "channel axis out of range": (_per_channel, "per-channel scales along axis 5"),
    "required options missing": (_drop_options, r"\(SUM\) has options of type 0; sentilite files give it type 27"),
    "another op's options": (_swap_options, r"\(ADD\) has options of type 21"),
    "an input dropped": (_drop_input, r"\(STRIDED_SLICE\) has 1 inputs and 1 outputs"),
    "read before written": (_read_before_write, "before anything computes it"),
    "writes a constant": (_write_a_constant, "an input, a constant or another operator's result"),
    "unknown operator": (_unknown_operator, "builtin operator 3, which sentilite files never use"),
    "omitted required input": (_omitted_input, r"\(GATHER\) reads tensor -1"),
    "WHILE body of another arity": (_while_arity, "a WHILE of .* loop variables runs subgraph"),
    "tensors of terabytes": (_huge_tensor, "tensors need more than"),
    "output never computed": (_graph_output_never_computed, "is never computed"),
}


@pytest.mark.parametrize("case", list(VERIFIER_CASES))
def test_the_tflite_verifier_refuses_what_the_interpreter_would_trust(tiny_int8_tflite, case):
    from sentilite.runtime.flatbuffer import verify_tflite_model

    edit, message = VERIFIER_CASES[case]
    verify_tflite_model(tiny_int8_tflite)  # the untouched file passes
    with pytest.raises(ValueError, match=message):
        verify_tflite_model(_edit_tflite(tiny_int8_tflite, edit))


def test_a_tflite_file_answering_with_another_tensor_is_refused_at_predict(tmp_path, tiny_int8_tflite):
    def point_output_elsewhere(model):
        g = model.subgraphs[0]
        g.outputs = [g.operators[0].outputs[0]]  # the first result: not one value per row

    path = tmp_path / "m.tflite"
    path.write_bytes(_edit_tflite(tiny_int8_tflite, point_output_elsewhere))
    with pytest.raises(ModelFileError, match=r"the file gives \d+ values for 4 rows"):
        load(path).predict(TEXTS)
