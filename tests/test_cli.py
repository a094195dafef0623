"""The `sentilite` command as a user runs it."""
import json
import subprocess
import sys

import pytest


def run_cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "sentilite.cli", *args], capture_output=True, text=True, env=env, timeout=600
    )


def test_bad_data_path_is_a_clean_error(tmp_path):
    result = run_cli("train", "--cell", "gru", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "m"))
    assert result.returncode == 2
    assert f"sentilite train: error: {tmp_path / 'missing'}: IMDB data not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_cell_is_refused():
    result = run_cli("train", "--cell", "transformer", "--out", "x")
    assert result.returncode == 2 and "invalid choice: 'transformer'" in result.stderr


def test_help_imports_no_tensorflow():
    code = ("import sys, sentilite.cli as c; c.build_parser(); "
            "print(sorted(m for m in ('tensorflow', 'keras', 'onnx', 'sklearn') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.integration
def test_train_command_and_results_table(imdb_path, tmp_path):
    out = tmp_path / "runs" / "rnn"
    result = run_cli("train", "--cell", "rnn", "--preset", "seed", "--data", str(imdb_path), "--train-subset", "600",
                     "--max-epochs", "1", "--test-reviews", "1000", "--quiet", "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert f"rnn-seed: test accuracy {metrics['test_accuracy']:.4f} (1000 reviews)" in result.stdout
    assert "[sentilite.train] tokenized: 450 fit / 150 validation / 1000 test reviews" in result.stderr
    table = run_cli("results", str(tmp_path / "runs"), "--write", str(tmp_path / "results.md"))
    assert table.returncode == 0, table.stderr
    assert "| rnn | seed | 300 x 16, 8 units; length 100 |" in table.stdout
    assert f"{metrics['test_accuracy']:.4f}" in (tmp_path / "results.md").read_text()


def test_export_skip_failing_reaches_the_export_config(monkeypatch, tmp_path, capsys):
    pytest.importorskip("tensorflow")
    import sentilite.export.package as package
    from sentilite.cli import main

    seen = []

    def fake_export(model_dir, data, config, **options):
        seen.append(config)
        return {"artifacts": [], "skipped": [{"file": "model.int8.tflite", "reason": "agreement 98.9% < 99%"}]}

    monkeypatch.setattr(package, "export_package", fake_export)
    assert main(["export", str(tmp_path), "--skip-failing", "--formats", "tflite"]) == 0
    assert main(["export", str(tmp_path)]) == 0
    assert [c.skip_failing for c in seen] == [True, False] and seen[0].formats == ("tflite",)
    assert "model.int8.tflite            left out: agreement 98.9% < 99%" in capsys.readouterr().out
