"""A short benchmark run (one cell, few repetitions) so `make bench` keeps working."""
import json
import shutil

import pytest

pytestmark = pytest.mark.integration


def test_quick_bench_writes_rows_for_every_file_and_keras(exported, imdb, tmp_path):
    from sentilite.bench.bench import BenchConfig, run_bench

    root = tmp_path / "artifacts"
    shutil.copytree(exported["gru"][0], root / "gru")
    config = BenchConfig(latency_reviews=40, warmup_reviews=5, throughput_reviews=128, throughput_batch=64,
                         cold_start_runs=1, whole_row_reviews=10)
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
        assert r["latency_ms_p50_tokenize"] > 0 and r["latency_ms_p50_engine"] > 0, r
    keras = next(r for r in rows if r["format"] == "keras")
    onnx = next(r for r in rows if r["format"] == "onnx" and r["precision"] == "fp32")
    assert onnx["install_mb"] < keras["install_mb"]  # the runtime installs far less than TensorFlow
    report = (root / "bench.md").read_text()
    assert "| gru | keras |" in report and "Best file of each cell" in report
    best = min((r for r in rows if r["format"] != "keras"), key=lambda r: r["latency_ms_p50"])
    assert f"the engine {best['latency_ms_p50_engine']:.3f} ms" in report  # the split of the best file, in its line
    assert (root / "bench_latency.png").read_bytes()[:4] == b"\x89PNG"
