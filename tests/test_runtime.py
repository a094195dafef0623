"""The runtime as an edge app uses it: real packages, real reviews, hostile input."""
import json
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from sentilite.runtime import ModelFileError
from sentilite.runtime.model import load

pytestmark = pytest.mark.integration
CELLS = ("rnn", "lstm", "gru")
FILES = [f"model.{p}.{ext}" for ext in ("tflite", "onnx") for p in ("fp32", "fp16", "dynamic-int8", "int8")] + [
    "model.fp32.npz"]


@pytest.fixture(scope="module")
def test_subset(imdb):
    from sentilite.train.data import subset

    return subset(imdb.test, 2000, seed=0)  # the reviews the export evaluated on


@pytest.mark.parametrize("cell", CELLS)
def test_every_file_reproduces_the_manifest_evaluation(exported, test_subset, cell):
    folder, manifest = exported[cell]
    for artifact in [a for a in manifest["artifacts"] if not a.get("client")]:
        for model in (load(folder / artifact["file"]),
                      load(folder, format=artifact["format"], precision=artifact["precision"])):
            labels = model.predict(test_subset.texts)
            accuracy = np.mean([lab == ("positive" if y else "negative") for lab, y in zip(labels, test_subset.labels)])
            assert accuracy == pytest.approx(artifact["eval"]["accuracy"], abs=1e-9), artifact["file"]


def test_backends_can_be_named(exported, test_subset):
    folder, manifest = exported["gru"]
    texts = test_subset.texts[:50]
    onnx = load(folder, format="onnx", precision="fp32", backend="onnxruntime").predict_proba(texts)
    litert = load(folder, format="tflite", precision="fp32", backend="litert").predict_proba(texts)
    numpy_ = load(folder, backend="numpy").predict_proba(texts)
    assert np.abs(onnx - litert).max() < 1e-4 and np.abs(onnx - numpy_).max() < 1e-4
    with pytest.raises(Exception, match="cannot run onnx files|no file with"):
        load(folder / "model.fp32.onnx", backend="litert")


def test_predict_proba_shape_order_and_labels(exported):
    model = load(exported["lstm"][0])
    texts = ["A wonderful, moving film. Brilliant acting.", "Dull, boring and awful. A waste of time.", "", "ok"]
    proba = model.predict_proba(texts)
    assert proba.shape == (4, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert np.array_equal(model.predict_proba(texts[::-1]), proba[::-1])
    assert model.predict(texts[:2]) == ["positive" if p >= 0.5 else "negative" for p in proba[:2, 1]]
    big = model.predict_proba(texts * 100)  # several batches
    assert np.array_equal(big[:4], proba) and np.array_equal(big[-4:], proba)


@pytest.mark.parametrize("file", ["model.int8.tflite", "model.fp32.onnx", "model.fp32.npz"])
def test_one_model_is_safe_from_16_threads(exported, test_subset, file):
    model = load(exported["gru"][0] / file, batch_size=16)
    chunks = [test_subset.texts[i * 20:(i + 1) * 20] for i in range(16)]
    serial = [model.predict_proba(c) for c in chunks]
    results = [None] * 16
    errors = []

    def work(i):
        try:
            for _ in range(3):
                results[i] = model.predict_proba(chunks[i])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(np.array_equal(a, b) for a, b in zip(results, serial))


HOSTILE = [
    "",
    "   \n\t  ",
    "zzqx blorf wibblewobble",
    "nul\x00byte and \x07 bell \x1b[31m escape",
    "\U0001F600\U0001F44D\U0001F525 loved it \u2764\ufe0f",
    "\u05d6\u05d4 \u05e1\u05e8\u05d8 \u05de\u05e6\u05d5\u05d9\u05df \u0641\u064a\u0644\u0645 \u0631\u0627\u0626\u0639",
    "great " * 1_000_000,  # 6 MB
    b"bytes \xff\xfe not utf-8 \xc3\x28 great",
]


@pytest.mark.parametrize("file", ["model.int8.tflite", "model.fp16.onnx", "model.fp32.npz"])
def test_hostile_texts_get_valid_predictions(exported, file):
    model = load(exported["rnn"][0] / file)
    proba = model.predict_proba(HOSTILE)
    assert proba.shape == (len(HOSTILE), 2) and np.all(np.isfinite(proba)) and np.all((proba >= 0) & (proba <= 1))
    with pytest.raises(TypeError, match="index 1, got int"):
        model.predict(["fine", 3])
    with pytest.raises(TypeError, match="single text"):
        model.predict("not a list")


def _run_isolated(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)


BLOCK_TF = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('tensorflow', 'keras', 'tf_keras', 'tensorflow_core'):
            raise ImportError('blocked for this test: ' + name)
sys.meta_path.insert(0, _Block())
"""


def test_runtime_never_imports_tensorflow(exported):
    folder = exported["gru"][0]
    code = BLOCK_TF + f"""
from sentilite.runtime import load
for f in {FILES!r}:
    m = load({str(folder)!r} + '/' + f)
    print(f, m.predict(['A wonderful film.', 'Dull.']))
import sentilite.cli
print('tf' if any(k.split('.')[0] in ('tensorflow', 'keras') for k in sys.modules) else 'no-tf')
"""
    result = _run_isolated(code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("no-tf")
    assert result.stdout.count("['") == len(FILES)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file or package folder"):
        load(tmp_path / "absent.onnx")
    with pytest.raises(ModelFileError, match="not a sentilite package"):
        load(tmp_path)


@pytest.fixture
def package_copy(exported, tmp_path):
    import shutil

    folder = tmp_path / "pkg"
    shutil.copytree(exported["gru"][0], folder)
    return folder


def _edit_manifest(folder, change):
    manifest = json.loads((folder / "manifest.json").read_text())
    change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_manifest_problems_are_named(package_copy):
    folder = package_copy
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="manifest.json: not valid JSON"):
        load(folder)


def test_unknown_manifest_version(package_copy):
    _edit_manifest(package_copy, lambda m: m.update(format_version=7))
    with pytest.raises(ModelFileError, match="unknown manifest format_version 7"):
        load(package_copy)


def test_replaced_model_file_fails_its_sha256(package_copy):
    (package_copy / "model.fp32.onnx").write_bytes((package_copy / "model.fp16.onnx").read_bytes())
    with pytest.raises(ModelFileError, match="model.fp32.onnx: size or sha256 does not match"):
        load(package_copy, format="onnx", precision="fp32")


def test_edited_tokenizer_fails_its_sha256(package_copy):
    tok = json.loads((package_copy / "tokenizer.json").read_text())
    tok["config"]["lowercase"] = False
    (package_copy / "tokenizer.json").write_text(json.dumps(tok))
    with pytest.raises(ModelFileError, match="tokenizer.json: sha256 does not match"):
        load(package_copy)


def test_tokenizer_that_disagrees_with_the_model(package_copy):
    """A consistent package whose tokenizer pads to another length than the model reads."""
    from sentilite.runtime import Tokenizer
    from sentilite.shared.files import sha256_bytes

    tok = Tokenizer.from_file(package_copy / "tokenizer.json")
    import dataclasses

    other = Tokenizer(dataclasses.replace(tok.config, maxlen=tok.config.maxlen + 7), tok.vocabulary)
    other.save(package_copy / "tokenizer.json")
    sha = sha256_bytes((package_copy / "tokenizer.json").read_bytes())
    _edit_manifest(package_copy, lambda m: m["tokenizer"].update(sha256=sha))
    with pytest.raises(ModelFileError, match="embedded tokenizer differs"):
        load(package_copy, format="tflite", precision="fp32")
    with pytest.raises(ModelFileError, match="embedded tokenizer differs"):
        load(package_copy, format="numpy")
    # the same file alone with a tokenizer of another length: the declared input says so at load time
    from sentilite.runtime.model import _check_consistent
    from sentilite.runtime.backends import create_backend

    backend = create_backend("numpy", (package_copy / "model.fp32.npz").read_bytes(), "model.fp32.npz")
    with pytest.raises(ModelFileError, match="reads 200 ids per text but the tokenizer pads to 207"):
        _check_consistent(backend, other, "model.fp32.npz")


def test_cli_predict_arguments_and_stdin(exported):
    folder = exported["lstm"][0]
    cli = [sys.executable, "-m", "sentilite.cli", "predict", "--model", str(folder)]
    out = subprocess.run(cli + ["A wonderful film.", "Dull."], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 2 and all(r["label"] in ("positive", "negative") and 0.5 <= r["score"] <= 1 for r in rows)
    lines = b"A wonderful film.\nDull.\n\xff\xfe broken bytes\n\n" * 50
    out = subprocess.run(cli + ["--precision", "int8", "--format", "tflite"], input=lines, capture_output=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.decode().splitlines()) == 200


def test_cli_info_and_clean_errors(exported, tmp_path):
    folder = exported["gru"][0]
    out = subprocess.run([sys.executable, "-m", "sentilite.cli", "info", str(folder)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "cell gru" in out.stdout and "model.int8.tflite" in out.stdout and "length 200" in out.stdout
    one = subprocess.run([sys.executable, "-m", "sentilite.cli", "info", str(folder / "model.int8.tflite")],
                         capture_output=True, text=True, timeout=120)
    assert one.returncode == 0 and "int8" in one.stdout
    bad = subprocess.run([sys.executable, "-m", "sentilite.cli", "predict", "--model",
                          str(tmp_path / "none.onnx"), "x"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "no such model file" in bad.stderr and "Traceback" not in bad.stderr


def test_a_file_left_out_at_export_is_named_with_its_reason_and_hostile_entries_are_ignored():
    from sentilite.runtime.model import _left_out_note

    manifest = {"skipped": [
        {"file": "model.int8.tflite", "format": "tflite", "precision": "int8", "reason": "agreement 98.9% < 99%",
         "failed_check": True},
        {"file": "model.mediapipe.tflite", "format": "tflite", "client": "mediapipe", "reason": "cjk"},
        {"file": 3, "reason": "not a name"}, "not an entry", {"file": "x", "reason": "r" * 1000, "format": "onnx"}]}
    assert _left_out_note(manifest, "tflite", "int8") == (
        "; model.int8.tflite was left out at export: agreement 98.9% < 99%")
    assert _left_out_note(manifest, "tflite", "fp16") == ""
    assert _left_out_note(manifest, "onnx", None) == "; x was left out at export: " + "r" * 300
    assert _left_out_note({"skipped": "hostile"}, None, None) == _left_out_note({}, None, None) == ""
