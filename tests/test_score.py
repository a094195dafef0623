"""`sentilite score`: formats, ids, bad rows, resume after a real kill, all cores, Spark, bounded memory."""
import csv
import fcntl
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sentilite.score import JobChangedError, ScoreInputError, ScoreOutputError, score
from sentilite.score.inputs import read_chunks, resolve_inputs
from sentilite.score.records import (NO_TEXT, check_text, rows_from_json_lines, rows_from_lines, text_id)

ROOT = Path(__file__).resolve().parents[1]
FLOAT_FILE = {"format": "onnx", "precision": "fp32"}


# -- fixtures --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_folder(request):
    """The briefly trained gru package; $SENTILITE_SCORE_TEST_MODEL names another package to iterate faster."""
    override = os.environ.get("SENTILITE_SCORE_TEST_MODEL")
    if override:
        return Path(override)
    return request.getfixturevalue("exported")["gru"][0]


@pytest.fixture(scope="module")
def float_model(model_folder):
    from sentilite.runtime import load

    return load(model_folder, **FLOAT_FILE)


@pytest.fixture(scope="module")
def reviews(imdb):
    """3,125 real test reviews, both classes (every 8th of the 25,000), each on one line."""
    return [" ".join(text.splitlines()) for text in imdb.test.texts[::8]]


@pytest.fixture(scope="module")
def spark():
    """One local[2] session for every Spark test (a JVM start costs ~20 s here)."""
    pytest.importorskip("pyspark", reason="pyspark is not installed: pip install 'sentilite[spark]'")
    pytest.importorskip("pandas", reason="pandas is not installed: pip install 'sentilite[spark]'")
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        pytest.skip("no Java runtime (java on PATH or JAVA_HOME): PySpark needs Java 17 or newer")
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (SparkSession.builder.master("local[2]").appName("sentilite-tests")
               .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "2")
               # Small splits, so one file is read by several tasks and line numbers must cross them.
               .config("spark.sql.files.maxPartitionBytes", str(512 << 10))
               .config("spark.sql.files.openCostInBytes", str(64 << 10))
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


BAD_JSON_LINES = [
    '{"id": "bad-number", "text": 42}',
    '{"id": "bad-missing"}',
    '{"id": "bad-empty", "text": "   "}',
    '{"id": "bad-list", "text": ["a", "b"]}',
    '{"id": "bad-broken", "text": "unterminated',
    '["not", "an", "object"]',
    "",
]


def write_jsonl(path: Path, texts, bad: bool = True) -> Path:
    """Reviews with ids r0, r1, ...; with ``bad``, a bad line (ids bad<i>-...) after every 500th review."""
    with open(path, "w", encoding="utf-8") as handle:
        for i, text in enumerate(texts):
            handle.write(json.dumps({"id": f"r{i}", "text": text, "stars": i % 10}) + "\n")
            if bad and i % 500 == 0:
                handle.write(BAD_JSON_LINES[(i // 500) % len(BAD_JSON_LINES)].replace('"bad-', f'"bad{i}-') + "\n")
    return path


def read_output(out: Path):
    import pyarrow.dataset as ds

    table = ds.dataset(str(out), format="parquet").to_table()
    rows = table.to_pylist()
    for row in rows:
        row["source"] = str(row["source"])
    return rows


def by_id(rows):
    out = {}
    for row in rows:
        key = (row["source"], row["id"]) if row["id"] is not None else (row["source"], row["error"])
        assert key not in out, f"row {key} written twice"
        out[key] = row
    return out


def assert_same_rows(a, b, tolerance=1e-6):
    a, b = by_id(a), by_id(b)
    assert a.keys() == b.keys()
    worst = 0.0
    for key, row in a.items():
        other = b[key]
        assert (row["label"], row["error"]) == (other["label"], other["error"]), key
        if row["p_positive"] is None:
            assert other["p_positive"] is None, key
        else:
            worst = max(worst, abs(row["p_positive"] - other["p_positive"]))
    assert worst <= tolerance, worst
    return worst


def run_cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "sentilite.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=600, **kwargs)


# -- unit: rows, ids, inputs -------------------------------------------------------------------
def test_text_checks_name_the_problem_the_same_way_for_every_engine():
    assert check_text("A fine film.") == ("A fine film.", None)
    assert check_text("caf\xc3\xa9".encode("latin-1")) == ("café", None)
    for missing in (None, "", "  \t", float("nan")):
        assert check_text(missing) == (None, NO_TEXT)
    assert check_text(42) == (None, "not text: number")
    assert check_text(np.int64(42)) == (None, "not text: number")
    assert check_text(True) == (None, "not text: boolean")
    assert check_text({"a": 1}) == (None, "not text: object")
    assert check_text([1, 2]) == (None, "not text: array")
    assert [text_id(v) for v in ("a7", 7, 7.5, None, "", True)] == ["a7", "7", "7.5", None, None, "true"]


def test_json_lines_bad_rows_are_rows_with_errors_and_blank_lines_are_not_rows():
    lines = ['{"id": 1, "text": "good"}', "", '{"id": "x", "text": null}', "{broken", "[1]", '{"text": 5}', "  "]
    rows = rows_from_json_lines(lines, range(10, 17), "text", "id")
    assert rows.ids == ["1", "x", None, None, None]
    assert rows.texts == ["good", None, None, None, None]
    assert rows.errors == [None, NO_TEXT, "line 13: not valid JSON (Expecting property name enclosed in double "
                           "quotes, column 2)", "line 14: not a JSON object", "not text: number"]
    without_ids = rows_from_json_lines(lines, range(10, 17), "text", None)
    assert without_ids.ids == [10, 12, 13, 14, 15]
    plain = rows_from_lines(["one", "", "three"], range(1, 4))
    assert plain.ids == [1, 2, 3] and plain.errors == [None, NO_TEXT, None]


def test_inputs_from_a_folder_a_glob_and_a_file(tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "in" / "b.jsonl").write_text('{"text": "x"}\n')
    (tmp_path / "in" / "sub" / "a.jsonl.gz").write_bytes(gzip.compress(b'{"text": "y"}\n'))
    for skipped in ("_SUCCESS", ".a.jsonl.crc", "_sentilite_job.json"):
        (tmp_path / "in" / skipped).write_text("not input")
    found = resolve_inputs(str(tmp_path / "in"))
    assert found.format == "jsonl"
    assert [p.relative_to(tmp_path / "in").as_posix() for p in found.files] == ["b.jsonl", "sub/a.jsonl.gz"]
    assert resolve_inputs(str(tmp_path / "in" / "**" / "*.gz")).files == (tmp_path / "in" / "sub" / "a.jsonl.gz",)
    (tmp_path / "in" / "c.csv").write_text("text\nz\n")
    with pytest.raises(ScoreInputError, match="mixes formats"):
        resolve_inputs(str(tmp_path / "in"))
    (tmp_path / "notes.dat").write_text("a\n")
    with pytest.raises(ScoreInputError, match="pass --input-format"):
        resolve_inputs(str(tmp_path / "notes.dat"))
    assert resolve_inputs(str(tmp_path / "notes.dat"), "text").format == "text"
    with pytest.raises(ScoreInputError, match="no such input"):
        resolve_inputs(str(tmp_path / "missing.jsonl"))


def test_chunks_are_fixed_runs_of_rows_in_every_format(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    text = tmp_path / "t.txt"
    text.write_bytes(b"one\r\ntwo\rthree\n\nfive")  # every newline style, a blank line, no final newline
    chunks = list(read_chunks(text, "text", 2, "text", None))
    assert [(c.first, c.count, c.payload) for c in chunks] == [
        (1, 2, ["one", "two"]), (3, 2, ["three", ""]), (5, 1, ["five"])]
    table = tmp_path / "t.csv"
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerows([["key", "text"], ["a", 'two\nlines, "quoted"'], ["b", ""], ["c"], ["d", "fine"]])
    chunks = list(read_chunks(table, "csv", 3, "text", "key"))
    assert [(c.first, c.count) for c in chunks] == [(1, 3), (4, 1)]
    assert chunks[0].payload == (['two\nlines, "quoted"', "", None], ["a", "b", "c"])
    parquet = tmp_path / "t.parquet"
    pq.write_table(pa.table({"text": [f"t{i}" for i in range(7)], "n": list(range(7))}), parquet, row_group_size=3)
    chunks = list(read_chunks(parquet, "parquet", 4, "text", "n"))
    assert [(c.first, c.count, c.payload[1]) for c in chunks] == [(1, 4, [0, 1, 2, 3]), (5, 3, [4, 5, 6])]


# -- integration: one machine --------------------------------------------------------------------
@pytest.mark.integration
def test_every_input_format_gives_ids_labels_and_errors(float_model, model_folder, reviews, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = reviews[:40]
    expected = float_model.predict_proba(texts)[:, 1]
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "reviews.txt").write_text("\n".join(texts[:20]) + "\n\n" + "\n".join(texts[20:]) + "\n")
    with open(inputs / "reviews.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["review_id", "body"])
        writer.writerows([[f"c{i}", t] for i, t in enumerate(texts)] + [["c-empty", ""]])
    pq.write_table(pa.table({"body": texts + [None], "n": list(range(100, 141))}), inputs / "reviews.parquet")
    write_jsonl(inputs / "reviews.jsonl", texts, bad=False)
    with open(inputs / "reviews.jsonl", "a") as handle:
        handle.write("\n".join(BAD_JSON_LINES) + "\n")
    cases = {
        "text": (["reviews.txt"], {}, list(range(1, 21)) + list(range(22, 42)), [21]),
        "csv": (["reviews.csv"], {"text_column": "body", "id_column": "review_id"},
                [f"c{i}" for i in range(40)], ["c-empty"]),
        "parquet": (["reviews.parquet"], {"text_column": "body", "id_column": "n"}, list(range(100, 140)), [140]),
        "jsonl": (["reviews.jsonl"], {"id_column": "id"}, [f"r{i}" for i in range(40)],
                  ["bad-number", "bad-missing", "bad-empty", "bad-list", None, None]),
    }
    for fmt, (names, options, good_ids, bad_ids) in cases.items():
        out = tmp_path / f"out-{fmt}"
        summary = score(str(inputs / names[0]), model=str(model_folder), out=str(out), workers=1, quiet=True,
                        **FLOAT_FILE, **options)
        rows = read_output(out)
        assert summary["rows"] == len(rows) == 40 + len(bad_ids), fmt
        assert summary["errors"] == len(bad_ids) and summary["scored"] == 40, fmt
        good = [r for r in rows if r["error"] is None]
        assert [r["id"] for r in good] == good_ids, fmt
        assert np.abs(np.array([r["p_positive"] for r in good]) - expected).max() < 1e-6, fmt
        assert [r["label"] for r in good] == ["positive" if p >= 0.5 else "negative" for p in expected], fmt
        assert summary["positive"] == int((expected >= 0.5).sum()), fmt
        bad = [r for r in rows if r["error"] is not None]
        assert [r["id"] for r in bad] == bad_ids, fmt
        assert all(r["label"] is None and r["p_positive"] is None for r in bad), fmt
        assert {r["source"] for r in rows} == {str(inputs / names[0])}, fmt
    jsonl_errors = [r["error"] for r in read_output(tmp_path / "out-jsonl") if r["error"]]
    assert jsonl_errors == ["not text: number", NO_TEXT, NO_TEXT, "not text: array",
                            "line 45: not valid JSON (Unterminated string starting at, column 30)",
                            "line 46: not a JSON object"]


@pytest.mark.integration
def test_cli_jsonl_output_progress_bar_and_model_sha256(float_model, model_folder, reviews, tmp_path):
    from sentilite.score.outputs import model_sha256_of
    from sentilite.shared.files import sha256_file

    source = write_jsonl(tmp_path / "in.jsonl", reviews[:300], bad=False)
    sha = sha256_file(Path(float_model.info["file"]))
    shown = run_cli("score", source, "--model", model_folder, "--out", tmp_path / "out", "--format", "onnx",
                    "--precision", "fp32", "--output-format", "jsonl", "--workers", "2", "--part-rows", "100",
                    "--id-column", "id")
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert "scoring:" in shown.stderr and "rows/s" in shown.stderr and "300/300" in shown.stderr.replace(".00", "")
    summary = json.loads(shown.stdout)
    assert summary["rows"] == 300 and summary["parts"] == 3 and summary["model"]["sha256"] == sha
    job = json.loads((tmp_path / "out" / "_sentilite_job.json").read_text())
    assert job["model"]["sha256"] == sha
    lines = [json.loads(line) for part in sorted((tmp_path / "out").glob("part-*.jsonl"))
             for line in part.read_text().splitlines()]
    assert [r["id"] for r in lines] == [f"r{i}" for i in range(300)]
    expected = float_model.predict_proba(reviews[:300])[:, 1]
    assert np.abs(np.array([r["p_positive"] for r in lines]) - expected).max() < 1e-6
    quiet = run_cli("score", source, "--model", model_folder, "--out", tmp_path / "out2", "--quiet",
                    "--format", "onnx", "--precision", "fp32")
    assert quiet.returncode == 0 and "scoring" not in quiet.stderr and "rows/s" not in quiet.stderr
    assert model_sha256_of(next((tmp_path / "out2").glob("part-*.parquet"))) == sha


def _children(pid: int) -> set[int]:
    kids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        kids.add(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return kids


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.integration
@pytest.mark.parametrize("kill_signal", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_run_restarted_writes_every_row_exactly_once(model_folder, reviews, tmp_path, kill_signal):
    source = write_jsonl(tmp_path / "in.jsonl", (reviews * 6)[:16000])
    out = tmp_path / "out"
    # The numpy file is the slowest float file: the run is still going when the test kills it.
    command = [sys.executable, "-m", "sentilite.cli", "score", str(source), "--model", str(model_folder), "--out",
               str(out), "--id-column", "id", "--workers", "2", "--part-rows", "200", "--format", "numpy", "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(list(out.glob("part-*.parquet"))) < 3:
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no part written in 120 s"
        time.sleep(0.01)
    workers = _children(process.pid)
    process.send_signal(kill_signal)
    process.wait(timeout=30)
    assert process.returncode == (-9 if kill_signal == signal.SIGKILL else 128 + signal.SIGTERM)
    before = {p.name for p in out.glob("part-*.parquet")}
    assert workers and len(before) < 81, "the run finished before it was killed"
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers):  # workers die with their main process, even on SIGKILL
        assert time.monotonic() < deadline, "worker processes outlived their killed main process"
        time.sleep(0.1)
    if kill_signal == signal.SIGTERM:
        assert not list(out.glob(".*.partial")), "SIGTERM left half-written parts"
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads(resumed.stdout)
    assert summary["parts_resumed"] >= len(before) - 2 and summary["parts_written"] >= 1
    # 16,000 reviews and 32 bad lines (16,032 lines: 81 parts): 4 of them blank (no row), 8 broken or
    # not objects (no id).
    assert summary["parts"] == 81 and summary["rows"] == 16000 + 28
    rows = read_output(out)
    ids = [r["id"] for r in rows if r["id"] is not None]
    assert len(rows) == 16028 and len(ids) == len(set(ids)) == 16020
    assert {r["id"] for r in rows if r["error"] is None} == {f"r{i}" for i in range(16000)}
    assert summary["errors"] == sum(r["error"] is not None for r in rows) == 28
    reference = tmp_path / "reference"
    score(str(source), model=str(model_folder), out=str(reference), id_column="id", workers=1, part_rows=200,
          format="numpy", quiet=True)
    assert_same_rows(read_output(reference), rows, tolerance=0.0)  # the same parts, bit for bit
    again = json.loads(subprocess.run(command, capture_output=True, text=True, timeout=300).stdout)
    assert again["already_complete"] is True and again["rows"] == summary["rows"]


@pytest.mark.integration
def test_a_restart_with_changed_input_model_or_settings_is_refused(model_folder, reviews, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", reviews[:50], bad=False)
    out = tmp_path / "out"
    common = dict(model=str(model_folder), out=str(out), id_column="id", workers=1, quiet=True)
    score(str(source), **common, **FLOAT_FILE)
    with pytest.raises(JobChangedError, match="model sha256"):
        score(str(source), **{**common, "id_column": "id"}, format="onnx", precision="int8")
    with pytest.raises(JobChangedError, match="setting part_rows: 10000 then, 20 now"):
        score(str(source), **common, part_rows=20, **FLOAT_FILE)
    with open(source, "a") as handle:
        handle.write(json.dumps({"id": "new", "text": "one more review"}) + "\n")
    with pytest.raises(JobChangedError, match=r"input .*in\.jsonl: changed"):
        score(str(source), **common, **FLOAT_FILE)
    result = run_cli("score", source, "--model", model_folder, "--out", out, "--id-column", "id", "--quiet")
    assert result.returncode == 2 and "delete" in result.stderr and "Traceback" not in result.stderr
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "precious.csv").write_text("keep me")
    with pytest.raises(ScoreOutputError, match="not empty"):
        score(str(source), **{**common, "out": str(foreign)}, **FLOAT_FILE)
    busy = tmp_path / "busy"
    busy.mkdir()
    with open(busy / ".sentilite-score.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(ScoreOutputError, match="another `sentilite score`"):
            score(str(source), **{**common, "out": str(busy)}, **FLOAT_FILE)
    with pytest.raises(ScoreInputError, match="no column 'body'"):
        (tmp_path / "t.csv").write_text("text\nfine\n")
        score(str(tmp_path / "t.csv"), **{**common, "out": str(tmp_path / "o3"), "id_column": None},
              text_column="body")


@pytest.mark.integration
def test_memory_stays_flat_as_the_input_grows(model_folder, reviews, tmp_path):
    """200,000 rows peak barely higher than 20,000, in the main process and in each worker.

    Short texts keep it quick; parts of 2,000 rows let both runs reach their
    steady state. A reader or worker that kept rows would grow by tens of MB.
    """
    snippets = [text[:120] for text in reviews]
    peaks = {}
    for rows in (20_000, 200_000):
        source = tmp_path / f"in-{rows}.txt"
        with open(source, "w") as handle:
            for i in range(rows):
                handle.write(snippets[i % len(snippets)] + "\n")
        result = run_cli("score", source, "--model", model_folder, "--out", tmp_path / f"out-{rows}", "--workers", "2",
                         "--part-rows", "2000", "--quiet", "--format", "onnx", "--precision", "fp32")
        assert result.returncode == 0, result.stderr[-3000:]
        summary = json.loads(result.stdout)
        assert summary["rows"] == rows and summary["parts"] == rows // 2000
        peaks[rows] = summary["peak_rss_mb"]
    print("peak RSS MB:", peaks)
    assert peaks[200_000]["main"] < peaks[20_000]["main"] + 15
    assert max(peaks[200_000]["workers"]) < max(peaks[20_000]["workers"]) + 20


# -- integration: Spark ------------------------------------------------------------------------
@pytest.mark.integration
@pytest.mark.spark
def test_one_process_all_cores_and_spark_agree_on_real_reviews(spark, model_folder, reviews, tmp_path):
    source = write_jsonl(tmp_path / "reviews.jsonl", reviews[:3000])
    common = dict(model=str(model_folder), id_column="id", quiet=True, **FLOAT_FILE)
    one = score(str(source), out=str(tmp_path / "one"), workers=1, **common)
    many = score(str(source), out=str(tmp_path / "many"), workers=2, part_rows=400, **common)
    on_spark = score(str(source), out=str(tmp_path / "spark"), engine="spark", spark=spark, **common)
    assert one["rows"] == many["rows"] == on_spark["rows"] == 3000 + 6
    assert one["errors"] == many["errors"] == on_spark["errors"] == 6
    assert one["positive"] == many["positive"] == on_spark["positive"]
    one_rows = read_output(tmp_path / "one")
    # Other part sizes group rows into other batches: the engine may round the last bit differently.
    assert_same_rows(one_rows, read_output(tmp_path / "many"), tolerance=1e-6)
    worst = assert_same_rows(one_rows, read_output(tmp_path / "spark"), tolerance=1e-6)
    print(f"spark vs one process: max |dP| = {worst:.2e}")
    from sentilite.score.outputs import model_sha256_of

    part = next((tmp_path / "spark").glob("part-*.parquet"))
    assert model_sha256_of(part) == one["model"]["sha256"]
    again = score(str(source), out=str(tmp_path / "spark"), engine="spark", spark=spark, **common)
    assert again["already_complete"] is True
    with pytest.raises(JobChangedError, match="model sha256"):
        score(str(source), out=str(tmp_path / "spark"), engine="spark", spark=spark,
              **{**common, "precision": "int8"})


@pytest.mark.integration
@pytest.mark.spark
def test_spark_gives_the_same_line_numbers_record_numbers_and_bad_rows(spark, model_folder, reviews, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = reviews[:900]
    text_file = tmp_path / "t" / "reviews.txt"  # ~1.2 MB: three splits of 512 KiB
    text_file.parent.mkdir()
    text_file.write_text("\n".join(t if i % 97 else "" for i, t in enumerate(texts)) + "\n")
    csv_file = tmp_path / "c" / "reviews.csv"
    csv_file.parent.mkdir()
    with open(csv_file, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["body", "key"])
        writer.writerows([[t[:200] + '\n"quoted" line', f"k{i}"] for i, t in enumerate(texts[:50])])
        writer.writerows([["", "k-empty"], ["", ""]])
    parquet_file = tmp_path / "p" / "reviews.parquet"
    parquet_file.parent.mkdir()
    pq.write_table(pa.table({"body": texts[:60] + [None], "n": pa.array(list(range(61)), pa.int32())}), parquet_file,
                   row_group_size=25)
    cases = [(text_file, {}), (csv_file, {"text_column": "body"}), (csv_file, {"text_column": "body",
                                                                               "id_column": "key"}),
             (parquet_file, {"text_column": "body"}), (parquet_file, {"text_column": "body", "id_column": "n"})]
    for i, (path, options) in enumerate(cases):
        common = dict(model=str(model_folder), quiet=True, **FLOAT_FILE, **options)
        local = score(str(path), out=str(tmp_path / f"local-{i}"), workers=1, **common)
        remote = score(str(path.parent), out=str(tmp_path / f"spark-{i}"), engine="spark", spark=spark, **common)
        assert local["rows"] == remote["rows"] and local["errors"] == remote["errors"] > 0, (path, options)
        assert_same_rows(read_output(tmp_path / f"local-{i}"), read_output(tmp_path / f"spark-{i}"))


@pytest.mark.integration
@pytest.mark.spark
def test_sentiment_udf_in_your_own_spark_code(spark, float_model, model_folder, reviews):
    from pyspark.sql import functions as F

    from sentilite.score.spark import sentiment_udf

    texts = reviews[:200]
    df = spark.createDataFrame([(i, t) for i, t in enumerate(texts)] + [(900, None), (901, "  ")], "n long, review string")
    sentiment = sentiment_udf(str(model_folder), **FLOAT_FILE)
    rows = (df.withColumn("s", sentiment(F.col("review"))).select("n", "s.label", "s.p_positive", "s.error")
            .orderBy("n").collect())
    expected = float_model.predict_proba(texts)[:, 1]
    got = np.array([r["p_positive"] for r in rows[:200]])
    assert np.abs(got - expected).max() < 1e-6
    assert [r["label"] for r in rows[:200]] == ["positive" if p >= 0.5 else "negative" for p in expected]
    assert [(r["label"], r["p_positive"], r["error"]) for r in rows[200:]] == [(None, None, NO_TEXT)] * 2


@pytest.mark.integration
def test_bench_score_reports_rows_per_second_and_memory(model_folder, reviews, tmp_path):
    from sentilite.score.throughput import ScoreBenchConfig, run_score_bench

    config = ScoreBenchConfig(rows=3000, runs=("one-process", "all-cores"), part_rows=500)
    report = run_score_bench(str(model_folder), tmp_path, config, progress=False, texts=reviews[:1000])
    assert json.loads((tmp_path / "bench_score.json").read_text()) == report
    one, every = report["runs"]["one-process"], report["runs"]["all-cores"]
    assert one["rows"] == every["rows"] == 3000 and one["rows_per_s"] > 0 and every["rows_per_cpu_s"] > 0
    assert every["workers"] == report["cores"] and every["peak_rss_mb"] > one["peak_rss_mb"] > 50
    assert every["vs_one_process"] == {"rows": 3000, "same_ids": True, "same_labels": True, "max_abs_diff": 0.0}
    assert "| all-cores |" in (tmp_path / "bench_score.md").read_text()


@pytest.mark.spark
@pytest.mark.slow
def test_spark_answers_a_column_per_label_for_three_labels(spark, tmp_path):
    """A tiny model of three labels (random weights, no IMDB data): the UDF's struct and `--engine spark`'s parts.

    The labels need the column-name rule (a space, a Han character), so Spark's schema must quote them.
    """
    from pyspark.sql import functions as F

    from sentilite.runtime import load
    from sentilite.score.spark import sentiment_udf
    from test_score_labels import read_parts, tiny_model_file, tiny_texts, write_input

    labels = ("bad", "So so", "好")
    model_file = tiny_model_file(tmp_path / "m3.npz", labels)
    texts = tiny_texts(300, seed=4)
    expected = load(model_file).predict_proba(texts).astype(np.float64)
    df = spark.createDataFrame([(i, t) for i, t in enumerate(texts)] + [(900, None)], "n long, review string")
    answered = df.withColumn("s", sentiment_udf(str(model_file))(F.col("review")))
    assert answered.schema["s"].dataType.simpleString() == (
        "struct<label:string,score:double,p_bad:double,p_so_so:double,p_好:double,error:string>")
    rows = answered.select("n", "s.*").orderBy("n").collect()
    got = np.array([[r["p_bad"], r["p_so_so"], r["p_好"]] for r in rows[:300]])
    assert np.abs(got - expected).max() < 1e-6
    assert [r["label"] for r in rows[:300]] == [labels[k] for k in expected.argmax(axis=1)]
    assert np.abs(np.array([r["score"] for r in rows[:300]]) - expected.max(axis=1)).max() < 1e-6
    assert rows[300].asDict() == {"n": 900, "label": None, "score": None, "p_bad": None, "p_so_so": None,
                                  "p_好": None, "error": NO_TEXT}
    copy = tmp_path / "same-bytes.npz"  # shipped to its own folder: the workers find it under its own name
    shutil.copy(model_file, copy)
    again = df.where("n < 3").withColumn("s", sentiment_udf(str(copy))(F.col("review")))
    assert [r["label"] for r in again.select("n", "s.label").orderBy("n").collect()] == [r["label"] for r in rows[:3]]
    binary = sentiment_udf(str(tiny_model_file(tmp_path / "m2.npz")))
    assert df.withColumn("s", binary(F.col("review"))).schema["s"].dataType.simpleString() == (
        "struct<label:string,p_positive:double,error:string>")

    source = write_input(tmp_path / "reviews.jsonl", texts)
    local = score(str(source), model=str(model_file), out=str(tmp_path / "local"), id_column="id", workers=1,
                  quiet=True)
    on_spark = score(str(source), model=str(model_file), out=str(tmp_path / "spark"), id_column="id",
                     engine="spark", spark=spark, quiet=True)
    assert on_spark["label_counts"] == local["label_counts"] and on_spark["errors"] == local["errors"] == 2
    names, spark_rows = read_parts(tmp_path / "spark")
    assert names == ["id", "source", "label", "score", "p_bad", "p_so_so", "p_好", "error"]
    local_rows = {r["id"] or r["error"]: r for r in read_parts(tmp_path / "local")[1]}
    assert {r["id"] or r["error"] for r in spark_rows} == local_rows.keys()
    for row in spark_rows:
        other = local_rows[row["id"] or row["error"]]
        assert (row["label"], row["error"], str(row["source"])) == (other["label"], other["error"], other["source"])
        for name in ("score", "p_bad", "p_so_so", "p_好"):
            assert (row[name] is None and other[name] is None) or abs(row[name] - other[name]) < 1e-6
