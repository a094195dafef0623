"""The bench: a short real run (one cell, few repetitions) so `make bench` keeps working, and its parts on fakes."""
import json
import shutil
import sys

import numpy as np
import pytest


@pytest.mark.integration
def test_quick_bench_writes_rows_for_every_file_and_keras_and_the_peers(exported, imdb, tmp_path):
    pytest.importorskip("fasttext")
    from sentilite.bench.bench import BenchConfig, run_bench

    root = tmp_path / "artifacts"
    shutil.copytree(exported["gru"][0], root / "gru")
    config = BenchConfig(latency_reviews=40, warmup_reviews=5, throughput_reviews=128, throughput_batch=64,
                         cold_start_runs=1, whole_row_reviews=10,
                         fasttext_grid={"epoch": (5,), "lr": (0.5, 1.0), "wordNgrams": (2,), "dim": (10,)})
    result = run_bench(root, config, data=imdb, progress=False)
    assert json.loads((root / "bench.json").read_text()) == result
    rows = result["rows"]
    assert sorted((r["format"], r["precision"]) for r in rows) == sorted(
        [("keras", "fp32"), ("numpy", "fp32")]
        + [(f, p) for f in ("tflite", "onnx") for p in ("fp32", "fp16", "dynamic-int8", "int8")])
    for r in rows:
        assert r["latency_reviews"] == 40 and r["latency_ms_p50"] > 0 and r["latency_ms_p99"] >= r["latency_ms_p50"]
        assert r["throughput_per_s"] > 0 and r["cold_start_s"] > 0 and r["peak_rss_mb"] > 0
        if r["format"] != "keras":
            assert r["skips_padding"] is True and r["latency_ms_p50_whole_rows"] > 0, r
            assert set(r["short_text_breakdown_ms"]) == {"tokenize", "row", "engine", "rest", "call", "row_width_p50"}
        assert r["latency_ms_p50_tokenize"] > 0 and r["latency_ms_p50_engine"] > 0, r
        assert r["latency_ms_p50_short"] > 0 and r["throughput_short_per_s"] > 0, r
        assert r["accuracy_reviews"] == 2000 and 0.5 < r["accuracy"] < 1 and 0.5 < r["accuracy_short"] < 1, r
    keras = next(r for r in rows if r["format"] == "keras")
    onnx = next(r for r in rows if r["format"] == "onnx" and r["precision"] == "fp32")
    assert onnx["install_mb"] < keras["install_mb"]  # the runtime installs far less than TensorFlow

    peers = {p["name"]: p for p in result["peers"]}
    assert list(peers) == ["fasttext", "tfidf"]
    fasttext, tfidf = peers["fasttext"], peers["tfidf"]
    # fitted on the package's 3,000 training reviews, tuned on its validation reviews, never on test
    assert fasttext["train_reviews"] == tfidf["train_reviews"] == 3000
    assert fasttext["fit_reviews"] + fasttext["validation_reviews"] == 3000
    assert [p["settings"]["lr"] for p in fasttext["validation"]] == [0.5, 1.0]
    assert fasttext["settings"] == max(fasttext["validation"], key=lambda p: p["validation_accuracy"])["settings"]
    for peer in peers.values():
        assert peer["accuracy_reviews"] == 2000 and 0.5 < peer["accuracy"] < 1 and 0.5 < peer["accuracy_short"] < 1
        assert peer["bytes"] > 0 and peer["cold_start_s"] > 0 and peer["throughput_short_per_s"] > 0
        timing = peer["cells"]["gru"]
        assert timing["latency_ms_p50"] > 0 and timing["latency_ms_p50_short"] > 0
        assert timing["latency_ms_p50_tokenize"] > 0 and timing["latency_ms_p50_engine_short"] > 0

    report = (root / "bench.md").read_text()
    assert "| gru | keras |" in report and "Best file of each cell" in report
    best = min((r for r in rows if r["format"] != "keras"), key=lambda r: r["latency_ms_p50"])
    assert f"the engine {best['latency_ms_p50_engine']:.3f} ms" in report  # the split of the best file, in its line
    assert "## Beside the peers" in report and "| gru | fastText (`model.predict(text)`) |" in report
    assert "## Where the time goes on a short text" in report and "target" not in report
    for chart in ("bench_latency.png", "bench_latency_short.png", "bench_size.png"):
        assert (root / chart).read_bytes()[:4] == b"\x89PNG"


# -- the report, from bench.json files written by hand ----------------------------------------------
def _row(fmt, precision, backend, p50, short=None, cold=1.0, **extra):
    row = {"cell": "gru", "format": fmt, "precision": precision, "backend": backend, "bytes": 700_000,
           "latency_ms_p50": p50, "latency_ms_p99": p50 * 2, "latency_ms_iqr": 0.01, "latency_reviews": 40,
           "throughput_per_s": 1000.0, "throughput_all_cores_per_s": None if fmt == "keras" else 1500.0,
           "cold_start_s": cold, "cold_start_runs_s": [cold], "peak_rss_mb": 70.0, "install_mb": 155.0,
           "latency_ms_p50_tokenize": 0.04, "latency_ms_p50_engine": p50 - 0.04}
    if fmt != "keras":
        row.update(skips_padding=True, latency_ms_p50_whole_rows=p50 * 3)
    if short is not None:
        row.update(latency_ms_p50_short=short, latency_ms_p99_short=short * 2, latency_ms_iqr_short=0.01,
                   throughput_short_per_s=5000.0, accuracy=0.918, accuracy_short=0.808, accuracy_reviews=25000,
                   latency_ms_p50_tokenize_short=0.01, latency_ms_p50_engine_short=short - 0.02)
        if fmt != "keras":
            row["short_text_breakdown_ms"] = {"tokenize": 0.006, "row": 0.003, "engine": short - 0.02,
                                              "rest": 0.011, "call": short, "row_width_p50": 32}
    row.update(extra)
    return row


def _peer(name, call, p50, short, **extra):
    peer = {"name": name, "call": call, "model": f"{name} model", "tokenizing": "its own", "bytes": 80_000_000,
            "install_mb": 30.0, "accuracy": 0.88, "accuracy_short": 0.77, "accuracy_reviews": 25000,
            "throughput_per_s": 9000.0, "throughput_short_per_s": 40000.0, "cold_start_s": 0.3,
            "cold_start_runs_s": [0.3], "peak_rss_mb": 120.0, "train_reviews": 25000, "train_seconds": 20.0,
            "cells": {"gru": {"latency_ms_p50": p50, "latency_ms_p99": p50 * 2, "latency_ms_iqr": 0.01,
                              "latency_ms_p50_short": short, "latency_ms_p99_short": short * 2}}}
    peer.update(extra)
    return peer


_SETTINGS = {"latency_reviews": 40, "warmup_reviews": 5, "throughput_batch": 64, "throughput_reviews": 128,
             "cold_start_runs": 1, "whole_row_reviews": 10, "latency_rounds": 5, "short_text_words": 20}
_MACHINE = {"processor": "x86_64", "cpus": 2, "python": "3.11", "load_average_start": [2.5, 3.0, 3.5],
            "load_average_end": [2.0, 2.9, 3.4]}


def _bench_json_with_peers():
    fasttext = _peer("fasttext", "model.predict(text)", 0.160, 0.025, fit_reviews=20000, validation_reviews=5000,
                     seed=1234, threads=1, version="0.10.4", settings={"epoch": 5, "lr": 1.0},
                     validation=[{"settings": {"epoch": 5, "lr": 0.25}, "validation_accuracy": 0.87},
                                 {"settings": {"epoch": 5, "lr": 1.0}, "validation_accuracy": 0.88}])
    tfidf = _peer("tfidf", "pipeline.predict_proba([text])", 0.400, 0.200, features=436919)
    rows = [_row("keras", "fp32", "tf.function", 8.0, short=8.0, cold=4.0),
            _row("onnx", "fp32", "onnxruntime", 0.320, short=0.140, cold=0.2),
            _row("tflite", "int8", "litert", 0.400, short=0.100, cold=0.1, row_width_p50=256)]
    return {"machine": _MACHINE, "settings": _SETTINGS, "rows": rows, "peers": [fasttext, tfidf]}


def test_the_report_gives_each_cells_best_file_and_the_peers_with_ratios_to_the_fastest_peer(tmp_path):
    pytest.importorskip("matplotlib")
    from sentilite.bench.report import write_bench_report

    write_bench_report(tmp_path, _bench_json_with_peers())
    text = (tmp_path / "bench.md").read_text()
    assert "Load average (1, 5, 15 min) 2.5 / 3.0 / 3.5 at the start, 2.0 / 2.9 / 3.4 at the end." in text
    table = text[text.index("## Beside the peers"): text.index("## Where the time goes")]
    lines = [line for line in table.splitlines() if line.startswith("| gru |")]
    # the best file on full reviews, the best on short texts, each peer, then Keras; ratios to fastText's p50s
    assert lines == [
        "| gru | sentilite `onnx fp32` (onnxruntime; best file) | 0.320 | 0.640 | 0.140 | 0.280 | 2.00x | 5.60x | "
        "1,000 | 5,000 | 0.9180 | 0.8080 |",
        "| gru | sentilite `tflite int8` (litert; best file on the last 20 words) | 0.400 | 0.800 | 0.100 | 0.200 | "
        "2.50x | 4.00x | 1,000 | 5,000 | 0.9180 | 0.8080 |",
        "| gru | fastText (`model.predict(text)`) | 0.160 | 0.320 | 0.025 | 0.050 | 1.00x | 1.00x | 9,000 | 40,000 | "
        "0.8800 | 0.7700 |",
        "| gru | TF-IDF reference (`pipeline.predict_proba([text])`) | 0.400 | 0.800 | 0.200 | 0.400 | 2.50x | 8.00x | "
        "9,000 | 40,000 | 0.8800 | 0.7700 |",
        "| gru | Keras (tf.function) | 8.000 | 16.000 | 8.000 | 16.000 | 50.00x | 320.00x | 1,000 | 5,000 | 0.9180 | "
        "0.8080 |",
    ]
    assert ("settings chosen on 5,000 validation reviews (each fitted on the 20,000 others; epoch 5 lr 0.25: 0.8700; "
            "epoch 5 lr 1: 0.8800), then fitted on 25,000 training reviews in 20 s, seed 1234, 1 thread") in text
    assert "- TF-IDF reference: tfidf model; tokenizing: its own; 436,919 features, fitted on 25,000" in text
    # the short-text breakdown, and its line for the fastest file on short texts
    assert "| gru | tflite | int8 | 32 | 0.0060 | 0.0030 | 0.0800 | 0.0110 | 0.1000 | 80% | 0.3600 | 256 |" in text
    assert ("- gru `tflite int8` (fastest on short texts): of 0.100 ms, the engine call is 0.080 ms (80%), tokenizing "
            "and the row 0.009 ms (9%), the rest 0.011 ms; the engine takes 0.080 ms on a short text and 0.360 ms on "
            "a full review: a text of 20 words still costs 22% of a full review's engine time; a straight line "
            "through the two (rows of 32 and 256 ids) puts the engine's fixed cost per call at about 0.040 ms, 40% of "
            "the short text's whole call.") in text
    assert "| gru | onnx | fp32 | 32 | 0.0060 | 0.0030 | 0.1200 | 0.0110 | 0.1400 | 86% | 0.2800 | - |" in text
    assert ("- gru: `onnx fp32` at 0.320 ms, 25x faster than Keras (tf.function, 8.00 ms); apart, tokenizing 0.040 ms "
            "and the engine 0.280 ms (Keras's 7.96 ms): with tokenizing free it would be at most 29x; on whole rows "
            "0.960 ms, 8x; cold start 20.0x faster; 2.00x the time of the fastest peer (fastText, 0.160 ms)") in text
    assert "target" not in text
    for chart in ("bench_latency.png", "bench_latency_short.png", "bench_size.png"):
        assert (tmp_path / chart).read_bytes()[:4] == b"\x89PNG"


def test_a_bench_json_from_before_the_peers_and_the_short_texts_still_renders(tmp_path):
    pytest.importorskip("matplotlib")
    from sentilite.bench.bench import write_bench_report

    old_settings = {k: v for k, v in _SETTINGS.items() if k not in ("latency_rounds", "short_text_words")}
    rows = [_row("keras", "fp32", "tf.function", 2.0, cold=4.0), _row("onnx", "fp32", "onnxruntime", 0.25, cold=0.2)]
    write_bench_report(tmp_path, {"machine": {"processor": "x86_64", "cpus": 2, "python": "3.11"},
                                  "settings": old_settings, "rows": rows})
    text = (tmp_path / "bench.md").read_text()
    assert "## Beside the peers" not in text and "## Where the time goes" not in text and "turns" not in text
    assert "| gru | onnx | fp32 | onnxruntime | 700,000 | 0.250 | 0.500 | 0.010 | - | - | 8.0x |" in text
    assert "- gru: `onnx fp32` at 0.250 ms, 8x faster than Keras (tf.function, 2.00 ms)" in text
    assert "target" not in text and not (tmp_path / "bench_latency_short.png").exists()


# -- the parts of the bench, without a model file -------------------------------------------------
class _Backend:
    """A backend that answers 0.5 for every row and records the rows it was given."""

    name = "fake"
    metadata: dict = {}
    declared = None

    def __init__(self, variable_length):
        self.variable_length = variable_length
        self.rows = []

    def run(self, ids):
        self.rows.append(ids)
        return np.full(len(ids), 0.5, dtype=np.float32)


def _model(variable_length, padding="pre"):
    from sentilite.runtime.model import SentimentModel
    from sentilite.runtime.tokenizer import Tokenizer, TokenizerConfig

    words = ["<pad>", "<oov>", "a", "wonderful", "film", "dull", "plot"]
    config = TokenizerConfig(vocab_size=len(words), maxlen=40, padding=padding)
    return SentimentModel(_Backend(variable_length), Tokenizer(config, words), batch_size=1)


@pytest.mark.parametrize("variable_length, padding", [(True, "pre"), (False, "pre"), (True, "post")])
def test_the_breakdown_makes_the_row_the_runtime_gives_the_file(variable_length, padding):
    from sentilite.bench.bench import row_maker, short_text_breakdown

    model = _model(variable_length, padding)
    texts = ["A wonderful film.", "dull plot " * 12, "", "wonderful"]
    make_row = row_maker(model)
    for text in texts:
        row = make_row(model.tokenizer.encode(text))
        assert row.dtype == np.int32 and np.array_equal(row, model.encode_one(text)), text
    parts = short_text_breakdown(model, texts, rounds=2)
    assert set(parts) == {"tokenize", "row", "engine", "call", "rest", "row_width_p50"}
    assert parts["rest"] == pytest.approx(parts["call"] - parts["tokenize"] - parts["row"] - parts["engine"], abs=1e-4)
    assert parts["row_width_p50"] == (16 if variable_length and padding == "pre" else 40)
    # the engine part and the whole call each gave the engine every text's row once, and warm rows before each turn
    rows = [make_row(model.tokenizer.encode(t)) for t in texts]
    seen = model.backend.rows
    assert len(seen) == 2 * len(texts) + 2 * 2 * 3
    for row in rows:
        assert sum(np.array_equal(row, r) for r in seen) >= 2


def test_fasttext_text_is_the_tutorials_preprocessing():
    from sentilite.bench.peers import fasttext_text

    text = fasttext_text("Great FILM!<br />Loved it (really), didn't you?\nYes/no.")
    assert text.split() == ["great", "film", "!", "loved", "it", "(", "really", ")", ",", "didn", "'", "t", "you",
                            "?", "yes", "/", "no", "."]
    assert "\n" not in text  # fastText's predict refuses a newline


def test_fasttext_grid_points_are_every_combination_in_order():
    from sentilite.bench.peers import fasttext_grid_points

    assert fasttext_grid_points({"epoch": (5, 10), "lr": (0.25, 1), "dim": (10,)}) == [
        {"epoch": 5, "lr": 0.25, "dim": 10}, {"epoch": 5, "lr": 1.0, "dim": 10},
        {"epoch": 10, "lr": 0.25, "dim": 10}, {"epoch": 10, "lr": 1.0, "dim": 10}]


def _tiny_reviews(n, seed):
    from sentilite.train.data import Reviews

    rng = np.random.default_rng(seed)
    good, bad, filler = ["wonderful", "great", "superb", "moving"], ["dull", "awful", "boring", "weak"], \
        ["the", "film", "plot", "acting", "was", "and", "a", "story"]
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        words = list(rng.choice(filler, 8)) + list(rng.choice(good if label else bad, 3))
        rng.shuffle(words)
        texts.append(" ".join(words).capitalize() + ".")
        labels.append(label)
    labels = np.array(labels, dtype=np.int32)
    return Reviews(texts, labels, np.where(labels == 1, 8, 2).astype(np.int32), np.arange(n))


def test_the_tfidf_peer_is_the_baseline_reference(tmp_path):
    """Fitted on the same reviews, the bench's TF-IDF pipeline scores what `sentilite baseline` reports."""
    pytest.importorskip("sklearn")
    from sentilite.bench.peers import train_tfidf
    from sentilite.train.baseline import train_baseline
    from sentilite.train.data import TrainingData
    from sentilite.train.evaluate import accuracy, short_texts

    data = TrainingData(_tiny_reviews(120, 1), _tiny_reviews(60, 2), source="tiny")
    metrics = train_baseline(data, tmp_path)
    peer = train_tfidf(data.train)
    assert peer.details["features"] == metrics["features"]
    assert round(accuracy(peer.positive(data.test.texts), data.test.labels), 6) == metrics["test_accuracy"]
    short = short_texts(data.test.texts, 20)
    assert round(accuracy(peer.positive(short), data.test.labels), 6) == metrics["short_text"]["accuracy"][1]
    assert peer.predict_one("A wonderful film.").shape == (1, 2)  # a user's call: predict_proba([text])


def test_the_fasttext_peer_is_chosen_on_validation_and_fitted_the_same_each_run(tmp_path):
    pytest.importorskip("fasttext")
    from sentilite.bench.peers import train_fasttext

    fit, validation = _tiny_reviews(200, 1), _tiny_reviews(60, 2)
    train = _tiny_reviews(260, 3)
    grid = {"epoch": (1, 20), "lr": (0.5,), "wordNgrams": (2,), "dim": (5,)}
    first = train_fasttext(fit, validation, train, grid, seed=7, workdir=tmp_path)
    again = train_fasttext(fit, validation, train, grid, seed=7, workdir=tmp_path)
    assert [p["settings"]["epoch"] for p in first.details["validation"]] == [1, 20]
    best = max(first.details["validation"], key=lambda p: p["validation_accuracy"])
    assert first.details["settings"] == best["settings"]
    assert first.details["train_reviews"] == 260 and first.details["validation_reviews"] == 60
    texts = _tiny_reviews(30, 4).texts
    assert np.array_equal(first.positive(texts), again.positive(texts))  # one thread and a seed: deterministic
    labels, probabilities = first.predict_one("A wonderful film.")
    assert labels[0] in ("__label__0", "__label__1") and len(probabilities) == 1
    assert first.save(tmp_path).stat().st_size > 0


def test_without_fasttext_the_bench_says_in_one_line_what_to_install(tmp_path, monkeypatch, capsys):
    import importlib.util

    from sentilite.cli import main

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name == "fasttext" else real_find_spec(name, *a, **k))
    monkeypatch.setitem(sys.modules, "fasttext", None)
    assert main(["bench", str(tmp_path), "--data", str(tmp_path / "no-such-data")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("sentilite bench: error: `sentilite bench` trains fastText as a peer and fasttext is not "
                          "installed here: install the bench extra, pip install -e '.[bench]'")
    assert "--peers tfidf" in err
    # the library call says the same before it reads any data
    from sentilite.bench.bench import run_bench
    from sentilite.shared.errors import MissingExtraError

    with pytest.raises(MissingExtraError, match="install the bench extra"):
        run_bench(tmp_path, data=object())


def test_a_folder_without_packages_is_refused_before_the_data_is_read(tmp_path, capsys):
    from sentilite.cli import main

    assert main(["bench", str(tmp_path), "--peers", "tfidf", "--data", str(tmp_path / "no-such-data")]) == 2
    assert capsys.readouterr().err == (f"sentilite bench: error: {tmp_path}: no package to bench (no */manifest.json); "
                                       "`make export` makes them\n")
