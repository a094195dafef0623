"""export/report.py and train/results.py on small hand-made packages: the numbers go where they belong."""
import json

import pytest

LABELS = ["negative", "positive"]


def _eval(accuracy, agreement=1.0, short=(0.7, 0.75, 0.8)):
    return {"accuracy": accuracy, "agreement": agreement, "max_abs_diff": 0.01, "n": 2000,
            "short_text": {"words": [10, 20, 40], "n": 2000, "accuracy": list(short)}}


def _package(root, cell, artifacts, keras_accuracy=0.9):
    folder = root / cell
    folder.mkdir()
    (folder / "model.keras").write_bytes(b"k" * 2_000_000)
    manifest = {"format_version": 1, "cell": cell, "labels": LABELS,
                "source": {"file": "model.keras", "test_accuracy": keras_accuracy, "test_reviews": 2000,
                           "short_text": {"words": [10, 20, 40], "n": 2000, "accuracy": [0.71, 0.76, 0.81]}},
                "artifacts": [{"sha256": "0" * 64, **a} for a in artifacts]}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_report_rows_ratios_limits_and_the_reference(tmp_path):
    pytest.importorskip("matplotlib")
    from sentilite.export.report import collect_rows, write_report

    _package(tmp_path, "gru", [
        {"file": "model.fp32.onnx", "format": "onnx", "precision": "fp32", "bytes": 3_000_000, "eval": _eval(0.9)},
        {"file": "model.fp16.onnx", "format": "onnx", "precision": "fp16", "bytes": 1_800_000, "eval": _eval(0.9)},
        {"file": "model.int8.onnx", "format": "onnx", "precision": "int8", "bytes": 1_100_000,
         "eval": _eval(0.897, 0.993)},
        {"file": "model.mediapipe.tflite", "format": "tflite", "precision": "int8", "client": "mediapipe",
         "bytes": 1_047_000, "eval": _eval(0.898, 0.995)},
    ])
    (tmp_path / "baseline").mkdir()
    (tmp_path / "baseline" / "metrics.json").write_text(json.dumps({
        "name": "tfidf-logreg", "model": "TF-IDF", "features": 10, "test_accuracy": 0.88, "test_reviews": 2000,
        "short_text": {"words": [10, 20, 40], "n": 2000, "accuracy": [0.7, 0.74, 0.79]}, "train_seconds": 1.0}))
    rows = {r["file"]: r for r in collect_rows(tmp_path)}
    assert rows["gru/model.keras"]["bytes"] == 2_000_000 and rows["gru/model.keras"]["short_text"] == [0.71, 0.76, 0.81]
    assert rows["gru/model.fp16.onnx"]["size_vs_fp32"] == 0.6 and rows["gru/model.fp16.onnx"]["size_ok"] is False
    int8 = rows["gru/model.int8.onnx"]
    assert int8["size_vs_fp32"] == pytest.approx(0.3667, abs=1e-4) and int8["size_ok"] is False
    assert int8["under_1mb"] is False  # 1,100,000 bytes: over the 8-bit cap
    client = rows["gru/model.mediapipe.tflite"]
    assert client["client"] == "mediapipe" and client["size_limit"] is None and client["under_1mb"] is True
    text = write_report(tmp_path).read_text()
    assert ("| gru | onnx | int8 | `gru/model.int8.onnx` | 1,100,000 (OVER 1 MB) | 36.7% (OVER <= 35%) | 0.8970 | "
            "0.7000 / 0.7500 / 0.8000 | 99.3000% |") in text
    assert "| gru | tflite | int8 (mediapipe) | `gru/model.mediapipe.tflite` | 1,047,000 |  | 0.8980 |" in text
    assert "test accuracy 0.8800; last 10 / 20 / 40 words 0.7000 / 0.7400 / 0.7900." in text
    parity = json.loads((tmp_path / "parity.json").read_text())
    assert parity["reference"]["test_accuracy"] == 0.88 and len(parity["rows"]) == 5
    for chart in ("accuracy.png", "size.png"):
        assert (tmp_path / chart).read_bytes()[:4] == b"\x89PNG"


def test_report_without_packages_names_the_folder(tmp_path):
    from sentilite.export.report import write_report
    from sentilite.shared.errors import ModelFileError

    with pytest.raises(ModelFileError, match=f"{tmp_path}: no exported packages"):
        write_report(tmp_path)


def test_results_table_lists_models_then_the_reference(tmp_path):
    from sentilite.train.config import preset_config
    from sentilite.train.results import results_table

    folder = tmp_path / "gru"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(preset_config("default", "gru").to_dict()))
    (folder / "metrics.json").write_text(json.dumps({
        "cell": "gru", "preset": "default", "weights": 699_120, "test_accuracy": 0.9134, "test_reviews": 25000,
        "short_text": {"accuracy": [0.7535, 0.8038, 0.8413]}, "validation_accuracy": 0.9032, "epochs_run": 3,
        "best_epoch": 2, "train_seconds": 43.0,
        "ablation": {"ngrams_only": {"test_accuracy": 0.9127, "short_text": [0.753, 0.7998, 0.8392]},
                     "cell_only": {"test_accuracy": 0.8243, "short_text": [0.7247, 0.7706, 0.8042]}}}))
    (tmp_path / "baseline").mkdir()
    (tmp_path / "baseline" / "metrics.json").write_text(json.dumps({
        "name": "tfidf-logreg", "model": "TF-IDF", "features": 436_919, "test_accuracy": 0.9082,
        "test_reviews": 25000, "short_text": {"accuracy": [0.7372, 0.7825, 0.8266]}, "train_seconds": 13.0}))
    lines = results_table(str(tmp_path)).splitlines()
    assert lines[0].startswith("| cell | preset | size | weights | test accuracy (25,000 reviews) |")
    assert lines[2].startswith("| gru | default | 10,000 x 16, 32 units on the last 64 ids; n-grams: 10,000 + "
                               "153,001-slot bi/trigram dictionary; length 1000 | 699,120 | 0.9134 | 0.7535 / 0.8038 / 0.8413 | "
                               "0.9127 (0.7530 / 0.7998 / 0.8392) | 0.8243 (0.7247 / 0.7706 / 0.8042) | 0.9032 |")
    assert lines[3].startswith("| reference | - | TF-IDF; 436,919 features | 436,919 | 0.9082 |")


def test_bench_report_of_a_package_without_fp32_files(tmp_path):
    """A package exported with --precisions int8 only: the bench report has no float twin to compare with."""
    pytest.importorskip("matplotlib")
    from sentilite.bench.bench import write_bench_report

    def row(fmt, precision, backend, p50, cold):
        return {"cell": "gru", "format": fmt, "precision": precision, "backend": backend, "bytes": 800_000,
                "latency_ms_p50": p50, "latency_ms_p99": p50 * 2, "latency_ms_iqr": 0.01, "latency_reviews": 40,
                "throughput_per_s": 1000.0, "throughput_all_cores_per_s": None if fmt == "keras" else 1500.0,
                "cold_start_s": cold, "cold_start_runs_s": [cold], "peak_rss_mb": 70.0, "install_mb": 155.0,
                **({} if fmt == "keras" else {"skips_padding": True, "latency_ms_p50_whole_rows": p50})}

    result = {"machine": {"processor": "x86_64", "cpus": 2, "python": "3.11"},
              "settings": {"latency_reviews": 40, "warmup_reviews": 5, "throughput_batch": 64,
                           "throughput_reviews": 128, "cold_start_runs": 1, "whole_row_reviews": 10},
              "rows": [row("keras", "fp32", "tf.function", 2.0, 4.0), row("onnx", "int8", "onnxruntime", 0.5, 0.2),
                       row("tflite", "int8", "litert", 0.25, 0.1)]}
    write_bench_report(tmp_path, result)
    text = (tmp_path / "bench.md").read_text()
    assert "- gru: `tflite int8` at 0.250 ms, 8x faster than Keras (tf.function, 2.00 ms); on whole rows" in text
    assert "target" not in text
    assert "## Slower than their float twin\n\n- none" in text
    assert (tmp_path / "bench_latency.png").read_bytes()[:4] == b"\x89PNG"


def test_size_ratio_leaves_out_the_tokenizer_and_the_dictionary_tables(tmp_path):
    """What quantization shrinks: not the embedded tokenizer, not a dictionary's uint8/int16 tables."""
    from sentilite.export.report import collect_rows
    from sentilite.runtime.recurrence import dictionary_groups
    from sentilite.train.config import preset_config

    config = preset_config("default", "gru").to_dict()
    fixed = 153_001 + 2 * dictionary_groups(153_001)
    folder = _package(tmp_path, "gru", [
        {"file": "model.fp32.onnx", "format": "onnx", "precision": "fp32", "bytes": 1_000_000 + 80_000 + fixed,
         "embedded_metadata_bytes": 80_000, "eval": _eval(0.9)},
        {"file": "model.int8.onnx", "format": "onnx", "precision": "int8", "bytes": 300_000 + 80_000 + fixed,
         "embedded_metadata_bytes": 80_000, "eval": _eval(0.9)},
    ])
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["config"] = config
    (folder / "manifest.json").write_text(json.dumps(manifest))
    rows = {r["file"]: r for r in collect_rows(tmp_path)}
    assert rows["gru/model.int8.onnx"]["size_vs_fp32"] == 0.3 and rows["gru/model.int8.onnx"]["size_ok"] is True
