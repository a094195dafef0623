"""The shared-sets runner (train/datasets.py): its splits, its table, and the peers with N labels; no training."""
from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sentilite.train.datasets import (
    SHARED_SETS,
    SharedDataError,
    make_splits,
    render_doc,
    shared_set,
    split_airline,
    split_zh_shopping,
    spread,
    table_rows,
)
from sentilite.train.readers import read_labeled

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _tweets(path: Path, ids: list[int]) -> Path:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(["tweet_id", "airline_sentiment", "text"])
    for n, identifier in enumerate(ids):
        writer.writerow([identifier, ("negative", "neutral", "positive")[n % 3], f'tweet {n}, "quoted"\nsecond line'])
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def test_airline_test_rows_are_the_tweet_ids_divisible_by_5(tmp_path):
    ids = [570306133677760513 + k for k in range(12)]  # 18 digits, as the file's
    train, test, train_rows, test_rows = split_airline(_tweets(tmp_path / "Tweets.csv", ids), tmp_path / "out")
    read = read_labeled(test, text_column="text", label_column="airline_sentiment")
    expected = [n for n, i in enumerate(ids) if i % 5 == 0]
    assert (train_rows, test_rows) == (12 - len(expected), len(expected))
    assert list(read.texts) == [f'tweet {n}, "quoted"\nsecond line' for n in expected]  # quotes and newlines kept
    assert [int(r[0]) for r in list(csv.reader(open(train, newline="", encoding="utf-8")))[1:]] == [
        i for i in ids if i % 5]


def test_zh_shopping_test_rows_are_every_fifth_row_index(tmp_path):
    body = "cat,label,review\n" + "".join(f"书籍,{n % 2},{'' if n == 7 else chr(0xFEFF) * (n == 3) + '很好' * n}\n"
                                          for n in range(11))
    archive = tmp_path / "online_shopping_10_cats.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("online_shopping_10_cats.csv", body.encode("utf-8"))
    train, test, train_rows, test_rows = split_zh_shopping(archive, tmp_path / "out")
    assert (train_rows, test_rows) == (8, 3)
    rows = list(csv.reader(open(test, newline="", encoding="utf-8")))
    assert rows[0] == ["cat", "label", "review"] and [r[2] for r in rows[1:]] == ["", "很好" * 5, "很好" * 10]
    trained = read_labeled(train, text_column="review", label_column="label", skip_bad_rows=True)
    assert trained.skipped_counts == {"empty_text": 1} and len(trained) == 7  # row 7, the empty review


def test_a_subset_keeps_each_row_its_split(tmp_path):
    """--rows takes a spread of the file; a zh row's split is still decided by its index in the whole file."""
    assert spread(10, 4) == [0, 3, 6, 9] and spread(3, 10) == [0, 1, 2] and spread(5, None) == [0, 1, 2, 3, 4]
    archive = tmp_path / "z.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("z.csv", "cat,label,review\n" + "".join(f"c,{n % 2},r{n}\n" for n in range(100)))
    _, test, _, test_rows = split_zh_shopping(archive, tmp_path / "out", rows=10)
    reviews = [r[2] for r in list(csv.reader(open(test, newline="", encoding="utf-8")))[1:]]
    assert reviews == ["r0", "r55"] and test_rows == 2  # of the spread 0, 11, 22, ..., 99 only 0 and 55 are % 5 == 0


def test_a_changed_file_is_refused(tmp_path):
    (tmp_path / "airline").mkdir()
    _tweets(tmp_path / "airline" / "Tweets.csv", [10, 11, 12])
    with pytest.raises(SharedDataError, match=r"airline: 1 test rows, the README says 2,901"):
        make_splits(shared_set("airline"), tmp_path, tmp_path / "out")


@pytest.mark.skipif(not (SHARED / "README.md").is_file(), reason="the shared data is not here")
def test_the_shared_sets_split_on_a_few_hundred_rows(tmp_path):
    counts = {}
    for dataset in SHARED_SETS:
        files = make_splits(dataset, SHARED, tmp_path / dataset.name, rows=300)
        test = read_labeled(files.test, text_column=dataset.text_column, label_column=dataset.label_column,
                            skip_bad_rows=dataset.skip_bad_rows)
        counts[dataset.name] = (files.train_rows, files.test_rows, len(test.label_names))
        assert files.reports[0] == ("test", files.test)
        assert all(str(path).startswith(str(tmp_path)) for _, path in files.reports)  # never beside the data
    # given sets: 300 of each file; airline: its tweet ids decide; zh: one row index in five
    assert counts["sst2"] == (300, 300, 2) and counts["sst5"] == (300, 300, 5)
    assert counts["airline"][0] + counts["airline"][1] == 300 and counts["airline"][2] == 3
    assert counts["zh-shopping"] == (248, 52, 2)  # 52 of the spread's 300 row indices are divisible by 5
    assert sum(i % 5 == 0 for i in spread(62_774, 300)) == 52


def _metrics(accuracy: float, macro_f1: float) -> dict:
    return {"accuracy": accuracy, "macro_f1": macro_f1}


def _result(**override) -> dict:
    result = {
        "set": "airline", "title": "Twitter US Airline", "labels": ["negative", "neutral", "positive"],
        "rows": {"train": 11739, "test": 2901}, "train_seconds": 95.0, "subset_rows": None,
        "files": [{"file": "model.int8.tflite", "format": "tflite", "bytes": 712345,
                   "metrics": {"test": _metrics(0.8012, 0.7456)}},
                  {"file": "model.int8.onnx", "format": "onnx", "bytes": 734567,
                   "metrics": {"test": _metrics(0.8009, 0.7451)}}],
        "peers": {"tfidf": {"metrics": {"test": _metrics(0.7901, 0.7234)}},
                  "fasttext": {"metrics": {"test": _metrics(0.7712, 0.7001)}}},
        "ablation": {"ngrams_only": {"test_accuracy": 0.7811, "test_macro_f1": 0.7102},
                     "cell_only": {"test_accuracy": 0.7503}},
    }
    result.update(override)
    return result


def test_the_table_rows():
    lines = table_rows([_result()])
    assert lines[2] == ("| Twitter US Airline | 3 | test | 11,739 / 2,901 | 0.8012 / 0.7456 | 712,345 | "
                        "0.8009 / 0.7451 | 734,567 | 1.6 min | 0.7901 / 0.7234 | 0.7712 / 0.7001 | "
                        "n-grams 0.7811 / 0.7102, cell 0.7503 |")
    two_reports = _result(files=[{"file": "model.int8.tflite", "format": "tflite", "bytes": 5,
                                  "metrics": {"test": _metrics(0.9, 0.9), "dev": _metrics(0.8, 0.8)}}],
                          peers={}, ablation=None)
    lines = table_rows([two_reports])
    assert len(lines) == 4
    assert lines[3] == "|  |  | dev |  | 0.8000 / 0.8000 | 5 | - | - |  | - | - |  |"


def test_the_doc_says_what_is_missing_and_marks_a_quick_run():
    doc = render_doc([_result(subset_rows=300)], missing=["sst5", "sst2"], failed={"sst2": "sst2: export failed"})
    assert "| SST-5 | not run yet (`make datasets`) |" in doc
    assert "| SST-2 | failed: sst2: export failed |" in doc
    assert "quick run on at most 300 rows" in doc
    assert "airline: test = the tweets whose `tweet_id % 5 == 0`" in doc
    assert "No figures yet" in render_doc([], missing=["sst2", "sst5"])


def _seeded(seed: int, tflite: float, onnx: float, f1: float = 0.77) -> dict:
    return _result(seed=seed, files=[{"file": "model.int8.tflite", "format": "tflite", "bytes": 5,
                                      "metrics": {"test": _metrics(tflite, f1)}},
                                     {"file": "model.int8.onnx", "format": "onnx", "bytes": 5,
                                      "metrics": {"test": _metrics(onnx, f1)}}])


def test_the_spread_over_seeds_counts_the_seeds_at_each_target():
    from sentilite.train.datasets import SeedRun

    doc = render_doc([_seeded(1234, 0.8242, 0.8221)], seed_runs=[SeedRun((_seeded(1, 0.8260, 0.8250, 0.75),), {}),
                                                                  SeedRun((_seeded(2, 0.8230, 0.8260),), {})])
    assert "| set | target | file | seed 1234 | seed 1 | seed 2 | mean ± sd | seeds at target |" in doc
    # mean 0.82440, sd (n - 1) 0.00153; two of three under 0.825
    assert "| Twitter US Airline | test accuracy >= 0.825 | int8 TFLite | 0.8242 | 0.8260 | 0.8230 | 0.8244 ± 0.0015 | 1 of 3 |" in doc
    assert "| Twitter US Airline | test accuracy >= 0.825 | int8 ONNX | 0.8221 | 0.8250 | 0.8260 | 0.8244 ± 0.0020 | 2 of 3 |" in doc
    assert "| Twitter US Airline | test macro-F1 >= 0.76 | int8 TFLite | 0.7700 | 0.7500 | 0.7700 | 0.7633 ± 0.0115 | 2 of 3 |" in doc
    assert "Over training seeds" not in render_doc([_seeded(1234, 0.8242, 0.8221)])
    failed = render_doc([_seeded(1234, 0.8242, 0.8221)],
                        seed_runs=[SeedRun((), {"airline": "airline: export failed (exit 2)"})])
    assert "| Twitter US Airline | test accuracy >= 0.825 | int8 TFLite | 0.8242 | failed | 0.8242 | 0 of 1 |" in failed
    assert "- Twitter US Airline, training seed ?: airline: export failed (exit 2)" in failed
    assert "Files left out and runs that failed:" in failed


def test_a_file_export_left_out_shows_as_left_out_with_its_reason():
    from sentilite.train.datasets import SeedRun

    onnx_only = _seeded(1, 0.8260, 0.8250)
    onnx_only["files"] = onnx_only["files"][1:]
    onnx_only["left_out"] = [{"file": "model.int8.tflite", "format": "tflite",
                              "reason": "label agreement 98.9101% < tolerance 99.00%"}]
    doc = render_doc([_seeded(1234, 0.8242, 0.8221)], seed_runs=[SeedRun((onnx_only,), {})])
    assert "| Twitter US Airline | test accuracy >= 0.825 | int8 TFLite | 0.8242 | left out | 0.8242 | 0 of 1 |" in doc
    assert "| Twitter US Airline | test accuracy >= 0.825 | int8 ONNX | 0.8221 | 0.8250 | 0.8236 ± 0.0021 | 1 of 2 |" in doc
    assert ("- Twitter US Airline, training seed 1: model.int8.tflite left out: label agreement 98.9101% < "
            "tolerance 99.00%") in doc
    # in the main table too, with the reason under it
    (row,) = [line for line in table_rows([onnx_only]) if line.startswith("| Twitter")]
    assert row.split(" | ")[4:6] == ["left out", "-"]
    main = render_doc([onnx_only])
    assert "- Twitter US Airline: model.int8.tflite left out: label agreement 98.9101%" in main


def test_a_seed_run_that_is_not_a_datasets_run_is_refused_before_training(tmp_path, capsys):
    from sentilite.train.datasets import main

    (tmp_path / "datasets.json").write_text('{"sets": [{"set": "sst2"}]}', encoding="utf-8")
    assert main(["--data-root", str(tmp_path), "--out", str(tmp_path / "out"), "--seed-runs", str(tmp_path)]) == 2
    assert "datasets.json: not the results of a datasets run" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _reviews(n: int, seed: int, classes: int = 3):
    from sentilite.train.data import Reviews

    rng = np.random.default_rng(seed)
    words = [["awful", "bad", "worst"], ["okay", "fine", "average"], ["great", "lovely", "best"]][:classes]
    labels = np.arange(n) % classes
    texts = [" ".join(list(rng.choice(["the", "a", "film", "plot"], 4)) + list(rng.choice(words[c], 2)))
             for c in labels]
    return Reviews(texts, labels.astype(np.int32))


def test_the_tfidf_peer_with_three_labels_is_the_baseline(tmp_path):
    pytest.importorskip("sklearn")
    from sentilite.bench.peers import train_tfidf
    from sentilite.runtime.metrics import classification_metrics
    from sentilite.train.baseline import train_baseline
    from sentilite.train.data import Reviews, TrainingData

    fit, validation, test = _reviews(90, 1), _reviews(30, 2), _reviews(30, 3)
    data = TrainingData(fit, test, source="tiny", validation=validation, label_names=("neg", "neu", "pos"),
                        imdb=False)
    metrics = train_baseline(data, tmp_path)
    assert json.loads((tmp_path / "metrics.json").read_text())["test"]["confusion"] == metrics["test"]["confusion"]
    assert metrics["validation"]["fitted_on"] == 90 and metrics["test"]["fitted_on"] == 120
    everything = Reviews(fit.texts + validation.texts, np.concatenate([fit.labels, validation.labels]))
    peer = train_tfidf(everything, classes=3)
    probabilities = peer.probabilities(test.texts)
    assert probabilities.shape == (30, 3)
    assert classification_metrics(test.labels, probabilities, ("neg", "neu", "pos")).to_dict() == {
        k: v for k, v in metrics["test"].items() if k != "fitted_on"}


FASTTEXT_PEER_CHECK = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from test_datasets import _reviews
from sentilite.bench.peers import train_fasttext

fit, validation, train = _reviews(150, 1), _reviews(30, 2), _reviews(180, 3)
grid = {"epoch": (1, 25), "lr": (0.05,), "wordNgrams": (2,), "dim": (5,)}
peer = train_fasttext(fit, validation, train, grid, seed=0, workdir=Path(sys.argv[2]), classes=3)
probabilities = peer.probabilities(["a great lovely film", "the worst awful plot"])
print(json.dumps({"shape": list(probabilities.shape), "top": probabilities.argmax(axis=1).tolist(),
                  "classes": peer.details["classes"], "epoch": peer.details["settings"]["epoch"]}))
"""


def test_the_fasttext_peer_with_three_labels(tmp_path):
    pytest.importorskip("fasttext")
    import subprocess
    import sys

    # In a child of its own: in two full runs of the suite (and never alone, in 6 runs) every grid point of this
    # fit stopped with fastText's "Encountered NaN" in the test process, which by then had run TensorFlow,
    # onnxruntime and LiteRT; a fresh process fits it as `make datasets` does.
    result = subprocess.run([sys.executable, "-c", FASTTEXT_PEER_CHECK, str(Path(__file__).parent), str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["shape"] == [2, 3] and answer["top"] == [2, 0]
    assert answer["classes"] == 3 and answer["epoch"] == 25  # chosen on validation


def test_the_baseline_uses_the_splits_training_makes(tmp_path, capsys):
    """`baseline --data ...` and `baseline --model M` (M's config.json as `train` writes it) fit and score the same."""
    pytest.importorskip("sklearn")
    from sentilite.cli import build_parser, main
    from sentilite.train.commands import _config_and_data

    rows = _reviews(150, 4)
    data = tmp_path / "texts.csv"
    data.write_text("text,label\n" + "".join(f"{t},{('neg', 'neu', 'pos')[c]}\n"
                                             for t, c in zip(rows.texts, rows.labels)))
    args = build_parser().parse_args(["train", "--cell", "gru", "--data", str(data), "--out", str(tmp_path / "m")])
    config, training = _config_and_data(args)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(json.dumps(config.to_dict()))
    assert main(["baseline", "--data", str(data), "--out", str(tmp_path / "a")]) == 0
    assert main(["baseline", "--model", str(tmp_path / "m"), "--out", str(tmp_path / "b")]) == 0
    first, second = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in "ab")
    assert first["validation"] == second["validation"] and first["test"] == second["test"]
    assert first["validation"]["rows"] == len(training.validation) and first["test"]["rows"] == len(training.test)
    assert first["validation"]["fitted_on"] == len(training.train)
    assert first["label_names"] == ["neg", "neu", "pos"] and first["split_note"] == training.split_note
    assert "tfidf-logreg: test accuracy" in capsys.readouterr().out


def test_a_failed_step_says_the_commands_own_error(capsys):
    import sys

    from sentilite.shared.errors import SentiliteError
    from sentilite.train.datasets import _run

    child = [sys.executable, "-c", "import sys; print('progress', file=sys.stderr); "
             "print('sentilite export: error: m.int8.tflite: label agreement 98.5% < tolerance 99.00%', "
             "file=sys.stderr); print('{}'); sys.exit(2)", "export", "m"]
    with pytest.raises(SentiliteError, match=r"^sst5: export failed \(exit 2\): sentilite export: error: "
                                             r"m\.int8\.tflite: label agreement 98\.5% < tolerance 99\.00% \[export m\]$"):
        _run(child, "sst5: export", capture=True)
    assert "progress" in capsys.readouterr().err  # the child's progress still reaches the terminal
    assert _run([sys.executable, "-c", "print('{\"a\": 1}')", "x", "y"], "ok", capture=True)[0] == '{"a": 1}\n'
