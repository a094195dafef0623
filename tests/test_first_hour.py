"""What a new user meets in their first hour with the runtime and the command: each rough edge, one test or more.

Unit tests on the tiny package of test_hostile_files (random weights, no
training, no IMDB); the bundled model's tests skip where this install has
none. Every subprocess has a timeout, so a test that would hang fails.
"""
import io
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sentilite import __version__
from sentilite.runtime import backends, model as runtime_model
from sentilite.runtime.commands import read_batches
from sentilite.runtime.model import (DEFAULT_ORDER, NO_KNOWN_WORDS, NO_TEXT, Prediction, SentimentModel,
                                     choose_artifact, eight_bit_choice, load, run_batches)
from sentilite.shared.errors import BackendUnavailableError, ConfigError, MissingExtraError, ModelFileError
from sentilite.shared.extras import install_hint, require

from test_hostile_files import (MAXLEN, _context, _metadata, _tokenizer_json, tflite_bytes, write_manifest,
                                write_npz, write_onnx)

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "sentilite.cli"]


def run_cli(*args, timeout=120, **kwargs):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, **kwargs)


@pytest.fixture
def npz_file(tmp_path) -> Path:
    return write_npz(tmp_path / "model.fp32.npz")


@pytest.fixture
def npz_model(npz_file):
    return load(npz_file)


def _package(folder: Path, files: dict[str, tuple[str, str]]) -> Path:
    """A package of the tiny model holding ``files``: name -> (format, precision); ONNX and TFLite built here."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.json").write_bytes(_tokenizer_json())
    for name, (fmt, precision) in files.items():
        if fmt == "numpy":
            write_npz(folder / name)
        elif fmt == "onnx":
            pytest.importorskip("onnxruntime")
            from sentilite.export.onnx import export_onnx

            export_onnx(_context(), precision, folder / name, metadata=_metadata("onnx", precision))
        else:
            (folder / name).write_bytes(tflite_bytes(precision))
    write_manifest(folder, [(name, fmt, precision) for name, (fmt, precision) in files.items()])
    return folder


# -- a bad --batch-size -------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_the_cli_refuses_a_batch_size_below_one(capsys, value):
    from sentilite.cli import build_parser

    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["predict", "--batch-size", value, "text"])
    assert exit_.value.code == 2
    assert "argument --batch-size:" in capsys.readouterr().err


def test_batch_size_zero_exits_at_once_on_onnx(tmp_path):
    """It aborted onnxruntime (exit 134) or spun forever on numpy and TFLite."""
    model = write_onnx(tmp_path / "model.fp32.onnx")
    for value in ("0", "-1"):
        result = run_cli("predict", "--model", str(model), "--batch-size", value, "w1 w2", timeout=60)
        assert result.returncode == 2
        assert f"argument --batch-size: must be at least 1, got {value}" in result.stderr


@pytest.mark.parametrize("value", [0, -1, True, 2.0, "8"])
def test_run_batches_and_the_model_refuse_a_batch_size_below_one(npz_model, npz_file, value):
    ids = npz_model.tokenizer.encode_batch(["w1", "w2 w3"])
    with pytest.raises(ConfigError, match=f"batch_size must be an integer of at least 1, got {value!r}"):
        run_batches(npz_model.backend, ids, value)
    with pytest.raises(ConfigError, match="batch_size"):
        load(npz_file, batch_size=value)
    with pytest.raises(ConfigError, match="batch_size"):
        SentimentModel(npz_model.backend, npz_model.tokenizer, batch_size=value)


def test_a_batch_size_changed_after_loading_is_refused_not_spun_on(npz_model):
    npz_model.batch_size = 0
    with pytest.raises(ConfigError, match="got 0"):
        list(npz_model.iter_predict(["w1", "w2"]))
    with pytest.raises(ConfigError, match="got 0"):
        npz_model.predict_proba(["w1", "w2"])


def test_numpy_integers_are_a_batch_size(npz_model):
    ids = npz_model.tokenizer.encode_batch(["w1", "w2 w3", "w4"])
    assert np.array_equal(run_batches(npz_model.backend, ids, np.int64(2)), run_batches(npz_model.backend, ids, 64))


# -- piped and typed input ----------------------------------------------------------------------------
def _read_line(stream, timeout: float) -> bytes:
    """One line of a child's stdout, or fail after ``timeout`` seconds (the child held it back)."""
    fd, data, deadline = stream.fileno(), b"", time.monotonic() + timeout
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise AssertionError(f"no answer within {timeout} s (got {data!r} so far)")
        chunk = os.read(fd, 1)
        if not chunk:
            raise AssertionError(f"the command ended early (got {data!r})")
        data += chunk
    return data


def test_each_piped_line_is_answered_before_the_next_is_written(npz_file):
    """`(echo a; sleep 6; echo b) | sentilite predict` printed both at the end; `tail -f` never printed."""
    proc = subprocess.Popen([*CLI, "predict", "--model", str(npz_file)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        answers = []
        for text in (b"w1 w2 w3", b"", b"w7 w8"):
            proc.stdin.write(text + b"\n")
            proc.stdin.flush()
            answers.append(json.loads(_read_line(proc.stdout, timeout=60)))
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
        assert proc.stdout.read() == b""
    finally:
        proc.kill()
    model = load(npz_file)
    expected = [{"label": p.label, "score": round(p.score, 6),
                 "probabilities": dict(zip(model.labels, (round(x, 6) for x in p.probabilities)))}
                for p in model.iter_predictions(["w1 w2 w3", "", "w7 w8"])]
    expected[1]["warning"] = NO_TEXT
    assert answers == expected


def test_typed_lines_are_answered_as_typed_and_one_ctrl_d_ends(npz_file):
    """Typed at a terminal, a line got no answer until Ctrl-D was pressed twice."""
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    proc = subprocess.Popen([*CLI, "predict", "--model", str(npz_file)], stdin=slave, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    os.close(slave)
    try:
        for text in (b"w1 w2", b"w3"):
            os.write(master, text + b"\n")
            assert json.loads(_read_line(proc.stdout, timeout=60))["label"] in ("negative", "positive")
        os.write(master, b"\x04")  # Ctrl-D at the start of a line: the end of the input
        assert proc.wait(timeout=60) == 0
        assert b"reading texts from the terminal, one a line; Ctrl-D ends" in proc.stderr.read()
    finally:
        proc.kill()
        os.close(master)


def test_lines_already_waiting_go_to_the_model_together():
    """A big file piped in keeps its batches: only a wait for the writer ends one early."""
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb", buffering=0) as reader, os.fdopen(write_fd, "wb", buffering=0) as writer:
        writer.write(b"".join(b"w%d\n" % i for i in range(3)))
        batches = read_batches(reader, keep_chars=100, max_lines=64)
        assert next(batches) == ["w0", "w1", "w2"]  # the writer has not finished: answered now
        writer.write(b"".join(b"w%d\n" % i for i in range(150)) + b"end without newline")
        writer.close()
        assert [len(b) for b in batches] == [64, 64, 23]


def test_a_non_blocking_stdin_is_waited_on_not_refused():
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    with os.fdopen(read_fd, "rb", buffering=0) as reader:
        batches = read_batches(reader, keep_chars=100)
        os.write(write_fd, b"w1\n")
        assert next(batches) == ["w1"]
        os.write(write_fd, b"w2\nw3")
        os.close(write_fd)
        assert list(batches) == [["w2", "w3"]]


def test_a_regular_file_is_read_in_full_batches(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_bytes(b"".join(b"w%d\r\n" % i for i in range(130)))
    with open(path, "rb") as stream:
        batches = list(read_batches(stream, keep_chars=100, max_lines=64))
    assert [len(b) for b in batches] == [64, 64, 2] and batches[0][:2] == ["w0", "w1"]


def test_an_endless_line_costs_bounded_memory():
    keep = 1000
    stream = io.BytesIO(b"w1 " * 1_000_000 + b"w2\n\xff\xfe broken\n")
    batches = list(read_batches(stream, keep_chars=keep, max_lines=64, chunk_size=1 << 12))
    lines = [line for batch in batches for line in batch]
    assert len(lines) == 2 and len(lines[0]) <= 8 * keep and lines[0].endswith("w1 w2")
    assert lines[1] == "\ufffd\ufffd broken"
    start = list(read_batches(io.BytesIO(b"w1 " * 100_000 + b"\n"), keep_chars=keep, keep_end=False))
    assert start[0][0].startswith("w1 w1") and len(start[0][0]) <= 8 * keep


def test_a_closed_stdin_is_a_clear_error(npz_file):
    """`sentilite predict --model X <&-` gave an AttributeError traceback."""
    result = subprocess.run(["sh", "-c", 'exec "$@" <&-', "sh", *CLI, "predict", "--model", str(npz_file)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "sentilite predict: error: standard input is closed and no texts were given" in result.stderr
    assert "Traceback" not in result.stderr


# -- input with nothing to read ----------------------------------------------------------------------------
NOTHING_TO_READ = ["", "   \t", "\U0001F60D\U0001F60D\U0001F60D", "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8", "!!! ???"]


def test_texts_with_nothing_to_read_are_flagged(npz_model):
    texts = NOTHING_TO_READ + ["w1 w2", "zzqx w3", "w5 " + "zzqx " * MAXLEN]
    predictions = npz_model.predictions(texts)
    assert [p.warning for p in predictions] == [NO_TEXT, NO_TEXT, NO_KNOWN_WORDS, NO_KNOWN_WORDS, NO_KNOWN_WORDS,
                                                None, None, NO_KNOWN_WORDS]  # the last: w5 is cut off, not read
    assert [p.known_words for p in predictions] == [0, 0, 0, 0, 0, 2, 1, 0]
    # the answers themselves are iter_predict's, streaming or not
    assert [(p.label, p.score) for p in predictions] == list(npz_model.iter_predict(texts))
    assert list(npz_model.iter_predictions(iter(texts))) == predictions
    assert all(isinstance(p, Prediction) for p in predictions)
    with pytest.raises(TypeError, match="single text"):
        npz_model.predictions("w1")


def test_predict_says_no_text_as_score_does(npz_file):
    from sentilite.score.records import NO_TEXT as SCORE_NO_TEXT

    assert NO_TEXT == SCORE_NO_TEXT
    result = run_cli("predict", "--model", str(npz_file), "", "\U0001F60D", "w1 w2")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r.get("warning") for r in rows] == ["no text", "no known words", None]
    assert all(set(r) - {"warning"} == {"label", "score", "probabilities"} for r in rows)


# -- the MediaPipe file -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mediapipe_bytes() -> bytes:
    """A file laid out as model.mediapipe.tflite is: a TFLite graph with MediaPipe's metadata and zip, none of ours."""
    pytest.importorskip("tensorflow")
    pytest.importorskip("ai_edge_litert")
    from sentilite.export.mediapipe.metadata import LABEL_FILE, VOCAB_FILE, attach_metadata, metadata_flatbuffer
    from sentilite.export.tflite.convert import convert_tflite

    ctx = _context()
    graph = convert_tflite(ctx.model, ctx.weights, "int8", MAXLEN, 40, ctx.calibration_ids)
    metadata = metadata_flatbuffer(name="sentilite tiny", description="a test file", version="0.0", input_name="ids",
                                   output_name="probabilities", delimiter=r"[^\w]+", labels_description="labels")
    return attach_metadata(graph, metadata, {VOCAB_FILE: b"<PAD> 0\n<UNKNOWN> 1\nw1 2\n",
                                             LABEL_FILE: b"negative\npositive\n"})


def test_the_mediapipe_file_is_named_with_what_to_use_instead(tmp_path, mediapipe_bytes):
    """Both used to say `not a valid TFLite file (operator code 9 ...)`."""
    from sentilite.runtime.info import describe

    alone = tmp_path / "model.mediapipe.tflite"
    alone.write_bytes(mediapipe_bytes)
    with pytest.raises(ModelFileError) as error:
        load(alone)
    message = str(error.value)
    assert message.startswith(f"{alone}: a MediaPipe TextClassifier file") and "TFLITE_METADATA" in message
    assert "reads MediaPipe's own token ids" in message and "model.int8.tflite" in message
    info = describe(str(alone))
    assert info["kind"] == "mediapipe" and info["labels"] == ["negative", "positive"]
    assert info["vocabulary_lines"] == 3 and info["name"] == "sentilite tiny" and info["bytes"] == len(mediapipe_bytes)

    folder = _package(tmp_path / "pkg", {"model.int8.tflite": ("tflite", "int8")})
    (folder / "model.mediapipe.tflite").write_bytes(mediapipe_bytes)
    with pytest.raises(ModelFileError, match="use the package folder") as error:
        load(folder / "model.mediapipe.tflite")
    assert str(folder / "model.int8.tflite") in str(error.value)
    predict = run_cli("predict", "--model", str(folder / "model.mediapipe.tflite"), "w1")
    assert predict.returncode == 2 and "MediaPipe TextClassifier file" in predict.stderr
    assert "operator code" not in predict.stderr and "Traceback" not in predict.stderr
    shown = run_cli("info", str(folder / "model.mediapipe.tflite"))
    assert shown.returncode == 0, shown.stderr
    assert "MediaPipe TextClassifier file" in shown.stdout and "labels: negative, positive" in shown.stdout
    assert f"use the package folder {folder}" in shown.stdout


# -- the chosen file ----------------------------------------------------------------------------------------
ALL_FILES = [(f"model.{p}.{ext}", fmt, p) for ext, fmt in (("onnx", "onnx"), ("tflite", "tflite"))
             for p in ("fp32", "fp16", "dynamic-int8", "int8")] + [("model.fp32.npz", "numpy", "fp32")]
BUNDLED_FILES = [("model.int8.tflite", "tflite", "int8"), ("model.dynamic-int8.onnx", "onnx", "dynamic-int8")]


def _manifest(files):
    return {"artifacts": [{"file": f, "format": fmt, "precision": p} for f, fmt, p in files]
            + [{"file": "model.mediapipe.tflite", "format": "tflite", "precision": "int8", "client": "mediapipe"}]}


@pytest.fixture
def engines(monkeypatch):
    """engines(*formats): only these formats' engines (and numpy's) are installed, for the choice of file."""
    def install(*formats):
        monkeypatch.setattr(runtime_model, "available_backends",
                            lambda fmt: list(backends.FORMAT_BACKENDS.get(fmt, ()))[:1]
                            if fmt in formats or fmt == "numpy" else [])
    return install


def _chosen(files, format=None, precision=None, backend=None):
    return choose_artifact(_manifest(files), Path("pkg"), format, precision, backend)["file"]


def test_the_default_file_is_the_fastest_this_machine_runs(engines):
    engines("onnx", "tflite")
    assert _chosen(ALL_FILES) == "model.fp32.onnx"
    assert _chosen(BUNDLED_FILES) == "model.dynamic-int8.onnx"
    assert _chosen([f for f in ALL_FILES if f[2] != "fp32" or f[1] == "numpy"]) == "model.dynamic-int8.onnx"
    assert _chosen([f for f in ALL_FILES if f[1] != "onnx" or f[2] == "int8"]) == "model.fp32.tflite"
    engines("tflite")
    assert _chosen(ALL_FILES) == "model.fp32.tflite" and _chosen(BUNDLED_FILES) == "model.int8.tflite"
    engines()
    assert _chosen(ALL_FILES) == "model.fp32.npz"
    assert [fmt for fmt, _ in DEFAULT_ORDER].index("numpy") == len(DEFAULT_ORDER) - 1
    assert DEFAULT_ORDER.index(("onnx", "int8")) > DEFAULT_ORDER.index(("tflite", "int8"))


def test_an_int8_request_prefers_the_fast_8bit_file_and_explicit_choices_stay(engines):
    engines("onnx", "tflite")
    assert _chosen(ALL_FILES, precision="int8") == "model.int8.tflite"
    assert eight_bit_choice(_manifest(ALL_FILES)) == ("tflite", "int8")
    # what load() is told stays exactly so
    assert _chosen(ALL_FILES, format="onnx", precision="int8") == "model.int8.onnx"
    assert _chosen(ALL_FILES, precision="int8", backend="onnxruntime") == "model.int8.onnx"
    assert _chosen(ALL_FILES, format="tflite") == "model.fp32.tflite"
    assert _chosen(ALL_FILES, backend="numpy") == "model.fp32.npz"
    engines("onnx")
    assert _chosen(ALL_FILES, precision="int8") == "model.int8.onnx"  # load(precision="int8") is exact
    assert eight_bit_choice(_manifest(ALL_FILES)) == ("onnx", "dynamic-int8")  # what the command takes
    assert eight_bit_choice(_manifest([f for f in ALL_FILES if f[2] != "dynamic-int8"])) is None


def test_predict_says_which_file_and_backend_answer(tmp_path):
    folder = _package(tmp_path / "pkg", {"model.fp32.npz": ("numpy", "fp32"), "model.fp32.onnx": ("onnx", "fp32"),
                                         "model.dynamic-int8.onnx": ("onnx", "dynamic-int8"),
                                         "model.int8.onnx": ("onnx", "int8")})
    result = run_cli("predict", "--model", str(folder), "w1 w2")
    assert result.returncode == 0, result.stderr
    assert f"[sentilite.runtime] answering with {folder / 'model.fp32.onnx'} (onnx fp32, onnxruntime backend)" \
        in result.stderr.splitlines()
    assert len(result.stdout.splitlines()) == 1
    quiet = run_cli("predict", "--model", str(folder), "--quiet", "w1 w2")
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout == result.stdout
    # no TFLite file here: --precision int8 takes the dynamic-int8 ONNX file, and says why
    int8 = run_cli("predict", "--model", str(folder), "--precision", "int8", "w1 w2")
    assert int8.returncode == 0, int8.stderr
    assert f"answering with {folder / 'model.dynamic-int8.onnx'} (onnx dynamic-int8" in int8.stderr
    assert "--format onnx --precision int8 takes the static int8 file" in int8.stderr
    static = run_cli("predict", "--model", str(folder), "--precision", "int8", "--format", "onnx", "w1 w2")
    assert static.returncode == 0 and f"answering with {folder / 'model.int8.onnx'}" in static.stderr


def test_predict_int8_takes_the_tflite_file_where_litert_runs_it(tmp_path):
    pytest.importorskip("ai_edge_litert")
    folder = _package(tmp_path / "pkg", {"model.int8.onnx": ("onnx", "int8"), "model.int8.tflite": ("tflite", "int8")})
    result = run_cli("predict", "--model", str(folder), "--precision", "int8", "w1 w2")
    assert result.returncode == 0, result.stderr
    assert f"answering with {folder / 'model.int8.tflite'} (tflite int8, litert backend)" in result.stderr


# -- smaller ones -----------------------------------------------------------------------------------------
def test_version_and_python_dash_m(npz_file, tmp_path):
    for command in (CLI, [sys.executable, "-m", "sentilite"]):
        version = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert version.returncode == 0 and version.stdout.strip() == f"sentilite {__version__}", version.stderr
    predict = subprocess.run([sys.executable, "-m", "sentilite", "predict", "--quiet", "--model", str(npz_file), "w1"],
                             capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert predict.returncode == 0 and json.loads(predict.stdout)["label"] in ("negative", "positive")


def test_evaluate_checks_the_model_before_loading_imdb(tmp_path):
    result = run_cli("evaluate", str(tmp_path / "missing"), "--data", str(tmp_path / "no-imdb"))
    assert result.returncode == 2
    assert f"sentilite evaluate: error: {tmp_path / 'missing'}: no such model file or package folder" in result.stderr
    assert "IMDB" not in result.stderr


def test_a_tflite_run_prints_no_xnnpack_line(tmp_path):
    pytest.importorskip("ai_edge_litert")
    path = tmp_path / "model.fp32.tflite"
    path.write_bytes(tflite_bytes("fp32"))
    code = ("import sys; from sentilite.runtime import load; m = load(sys.argv[1]); print(m.predict(['w1', 'w2 w3']));"
            "sys.stderr.write('after\\n')")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "after\n"


def test_the_xnnpack_note_is_absorbed_once_an_engine_and_nothing_else_is(capfd):
    made = []

    class Engine:
        def __init__(self, model_content, num_threads):
            assert model_content == backends.WARM_UP_MODEL  # our own model, never a user's file
            made.append(num_threads)

        def allocate_tensors(self):
            os.write(2, b"ERROR: a real problem\n" + backends.XNNPACK_NOTE + b"WARNING: and another\n")

    backends.absorb_xnnpack_note(Engine)
    backends.absorb_xnnpack_note(Engine)
    assert made == [1]
    assert capfd.readouterr().err == "ERROR: a real problem\nWARNING: and another\n"


def test_the_warm_up_model_is_a_valid_tflite_file_litert_runs():
    from sentilite.runtime.flatbuffer import read_tflite_operator_codes, verify_tflite_model

    verify_tflite_model(backends.WARM_UP_MODEL)
    assert read_tflite_operator_codes(backends.WARM_UP_MODEL) == [(0, 1)]  # one ADD
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    interpreter = litert.Interpreter(model_content=backends.WARM_UP_MODEL, num_threads=1)
    interpreter.allocate_tensors()
    (entry,), (exit_,) = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.set_tensor(entry["index"], np.array([2.5], np.float32))
    interpreter.invoke()
    assert interpreter.get_tensor(exit_["index"]).tolist() == [3.5]


def test_a_missing_tflite_runtime_names_the_installed_litert_backend(monkeypatch):
    pytest.importorskip("ai_edge_litert")
    for module in ("tflite_runtime", "tflite_runtime.interpreter"):
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(BackendUnavailableError) as error:
        backends.create_backend("tflite", b"", "m.tflite", backend="tflite")
    assert str(error.value) == (
        "m.tflite: the tflite backend needs tflite-runtime, which is not installed here; the litert backend is, and "
        "runs the same files: use it (--backend litert, or backend='litert' in load())")
    assert "tflite-legacy" not in str(error.value)


def test_a_folder_of_model_files_without_a_manifest_names_them(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    with pytest.raises(ModelFileError) as error:
        load(folder)
    assert str(error.value) == f"{folder}: not a sentilite package (no manifest.json)"
    write_npz(folder / "model.fp32.npz")
    (folder / "model.mediapipe.tflite").write_bytes(b"x")
    (folder / "notes.txt").write_text("x")
    with pytest.raises(ModelFileError) as error:
        load(folder)
    assert str(error.value) == (f"{folder}: not a sentilite package (no manifest.json); it holds model.fp32.npz, "
                                f"model.mediapipe.tflite: load a file itself, e.g. {folder / 'model.fp32.npz'}")
    assert load(folder / "model.fp32.npz").info["format"] == "numpy"


def test_predict_help_shows_defaults_and_the_output():
    result = run_cli("predict", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for expected in ("(default: 64)", '{"label": "positive", "score": 0.93, "probabilities": {"negative": 0.07, '
                     '"positive": 0.93}}', "label the model's label",
                     "score the probability of that label, 0.5 to 1", 'warning only where the answer read nothing',
                     '"no text"', '"no known words"', "goes to standard error", "--quiet", "model.int8.tflite"):
        assert expected in text, expected


def _command_help(help_text: str) -> dict[str, str]:
    """{command: its help line} of the top-level --help, wrapped lines joined."""
    commands, current = {}, None
    for line in help_text.splitlines():
        if line.startswith("    ") and not line.startswith("     "):  # a command, its help beside or below it
            current, _, rest = line.strip().partition(" ")
            commands[current] = rest.strip()
        elif current and line.startswith("     ") and line.strip():
            commands[current] = f"{commands[current]} {line.strip()}".strip()
        elif not line.strip() or not line.startswith(" "):
            current = None
    return commands


def test_top_level_help_marks_the_commands_that_need_an_extra():
    from sentilite.cli import COMMAND_EXTRAS

    result = run_cli("--help")
    assert result.returncode == 0
    commands = _command_help(result.stdout)
    assert {"train", "predict", "info", "score", "bench-score"} <= set(commands)
    for command, help_line in commands.items():
        extra = COMMAND_EXTRAS.get(command)
        if extra:
            assert help_line.endswith(f"(needs [{extra}])"), command
        else:
            assert "(needs [" not in help_line, command
    for command in ("predict", "info", "evaluate", "results"):
        assert command not in COMMAND_EXTRAS
    assert "pip install '.[X]' in the sentilite repository" in " ".join(result.stdout.split())


# Which modules each extra brings, as the commands ask for them.
EXTRA_MODULES = {"train": ("tensorflow", "keras", "sklearn", "matplotlib", "onnx"), "score": ("pyarrow", "tqdm")}


def test_each_marked_command_asks_for_its_extra(monkeypatch, capsys, tmp_path):
    from sentilite.cli import COMMAND_EXTRAS, main

    arguments = {"train": ["--cell", "gru", "--out", "m"], "sweep": ["--cell", "gru", "--out", "m"],
                 "levers": ["--cell", "gru"], "baseline": ["--out", "m"], "export": [str(tmp_path)],
                 "report": [str(tmp_path)], "bench": [str(tmp_path)],
                 "score": [str(tmp_path), "--model", "m", "--out", "o"], "bench-score": ["--model", "m"]}
    assert set(arguments) == set(COMMAND_EXTRAS)
    for module in {m for modules in EXTRA_MODULES.values() for m in modules}:
        monkeypatch.setitem(sys.modules, module, None)
    for command, extra in COMMAND_EXTRAS.items():
        assert main([command, *arguments[command]]) == 2, command
        assert capsys.readouterr().err.rstrip().endswith(install_hint(extra)), command


def test_install_hints_give_the_command_that_works_from_a_clone():
    assert install_hint("train") == "pip install '.[train]' in the sentilite repository"
    assert install_hint() == "pip install . in the sentilite repository"
    assert backends.BACKENDS["onnxruntime"].install_hint == "pip install '.[onnx]' in the sentilite repository"
    with pytest.raises(MissingExtraError) as error:
        require("train", "train", "no_such_module_for_sentilite")
    assert str(error.value) == ("`sentilite train` needs no_such_module_for_sentilite, which is not installed here "
                                "(this looks like a runtime-only install): pip install '.[train]' in the sentilite "
                                "repository")
    assert "sentilite[" not in str(error.value)


# -- the bundled model --------------------------------------------------------------------------------------
@pytest.fixture
def bundled():
    try:
        from sentilite.runtime import bundled
    except ImportError:
        pytest.skip("sentilite.runtime.bundled is not in this tree yet")
    try:
        bundled.path()
    except ModelFileError as exc:
        pytest.skip(f"no bundled model in this install: {exc}")
    return bundled


def test_load_with_no_path_or_the_name_loads_the_bundled_model(bundled):
    default = load()
    named = load(bundled.DEFAULT_MODEL)
    assert default.info["bundled"] == named.info["bundled"] == bundled.DEFAULT_MODEL
    assert Path(default.info["file"]).parent == bundled.path() and default.info["file"] == named.info["file"]
    assert default.predict(["A wonderful film.", "Dull and awful."]) == ["positive", "negative"]


def test_a_folder_named_like_a_bundled_model_wins(bundled, tmp_path, monkeypatch):
    _package(tmp_path / bundled.DEFAULT_MODEL, {"model.fp32.npz": ("numpy", "fp32")})
    monkeypatch.chdir(tmp_path)
    model = load(bundled.DEFAULT_MODEL)
    assert model.info["format"] == "numpy" and "bundled" not in model.info


def test_predict_and_info_with_no_model_use_the_bundled_one(bundled, tmp_path):
    result = run_cli("predict", "A wonderful film.", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["label"] == "positive"
    assert f"answering with the bundled model {bundled.DEFAULT_MODEL}: " in result.stderr
    info = run_cli("info", cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    assert f"(bundled model {bundled.DEFAULT_MODEL}): package, cell gru" in info.stdout
    from sentilite.runtime.info import describe

    assert describe()["bundled"] == bundled.DEFAULT_MODEL and describe(bundled.DEFAULT_MODEL)["kind"] == "package"


def test_an_unknown_path_names_the_bundled_models(bundled, tmp_path):
    with pytest.raises(ModelFileError) as error:
        load(tmp_path / "nothing.onnx")
    assert str(error.value) == (f"{tmp_path / 'nothing.onnx'}: no such model file or package folder "
                                f"(bundled models: {', '.join(bundled.NAMES)})")
