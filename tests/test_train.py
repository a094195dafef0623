"""Training on a real IMDB subset: files written, numbers measured, runs repeatable."""
import json

import numpy as np
import pytest

from sentilite.runtime import Tokenizer
from sentilite.train.config import RunConfig, preset_config

from conftest import small_config as small

def test_seed_preset_reproduces_the_notebook():
    cfg = preset_config("seed", "rnn")
    assert (cfg.tokenizer.vocab_size, cfg.tokenizer.maxlen) == (300, 100)
    assert (cfg.model.embedding_dim, cfg.model.units) == (16, 8)
    assert cfg.training.validation_fraction == 0.25
    assert (cfg.training.batch_size, cfg.training.patience) == (32, 2)


def test_default_preset_fits_one_megabyte_at_8_bits():
    for cell in ("rnn", "lstm", "gru"):
        cfg = preset_config("default", cell)
        gates = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
        d, u = cfg.model.embedding_dim, cfg.model.units
        weights = cfg.tokenizer.vocab_size * d + gates * (d * u + u * u + 2 * u)
        assert weights < 1_000_000


def test_config_json_round_trip():
    cfg = preset_config("default", "lstm")
    assert RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


@pytest.mark.integration
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_train_writes_a_complete_model_folder(cell, imdb, trained_models):
    from sentilite.train.model import load_keras_model

    out, metrics = trained_models[cell]
    names = sorted(p.name for p in out.iterdir())
    assert names == ["config.json", "history.json", "metrics.json", "model.keras", "tokenizer.json",
                     "training_curves.png"]
    assert (out / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert metrics["test_reviews"] == 25000
    # three epochs on 2,250 reviews clearly beat chance (seen: rnn 0.67, lstm 0.76, gru 0.73)
    assert metrics["test_accuracy"] > 0.6, metrics
    # the saved model and tokenizer reproduce the recorded accuracy on the test set
    model = load_keras_model(out / "model.keras")
    tok = Tokenizer.from_file(out / "tokenizer.json")
    probs = model.predict(tok.encode_batch(imdb.test.texts), batch_size=1024, verbose=0).reshape(-1)
    acc = float(np.mean((probs >= 0.5) == (imdb.test.labels == 1)))
    assert acc == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    history = json.loads((out / "history.json").read_text())
    assert len(history["val_loss"]) == metrics["epochs_run"]
    cfg = RunConfig.from_dict(json.loads((out / "config.json").read_text()))
    assert cfg.tokenizer == tok.config and cfg.model.cell == cell


@pytest.mark.integration
def test_onehot_input_trains_without_materialising_one_hot_arrays(imdb, tmp_path):
    from sentilite.train.fit import train_model
    from sentilite.train.model import load_keras_model

    cfg = small("rnn", input="onehot", subset=1000, epochs=1, ngrams=False, vocab_size=300)
    metrics = train_model(cfg, tmp_path / "onehot", imdb, verbose=0)
    model = load_keras_model(tmp_path / "onehot" / "model.keras")
    assert [layer.name for layer in model.layers][:2] == ["ids", "onehot"]
    assert model.input.dtype == "int32"
    assert metrics["input"] == "onehot" and 0.0 < metrics["test_accuracy"] <= 1.0


@pytest.mark.integration
def test_runs_are_repeatable(imdb, tmp_path):
    from sentilite.train.fit import train_model
    from sentilite.train.model import load_keras_model

    cfg = small("gru", subset=800, epochs=1)
    train_model(cfg, tmp_path / "a", imdb, verbose=0)
    train_model(cfg, tmp_path / "b", imdb, verbose=0)
    wa = load_keras_model(tmp_path / "a" / "model.keras").get_weights()
    wb = load_keras_model(tmp_path / "b" / "model.keras").get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(wa, wb))
    assert (tmp_path / "a" / "tokenizer.json").read_bytes() == (tmp_path / "b" / "tokenizer.json").read_bytes()


@pytest.mark.integration
def test_retraining_replaces_the_folder_and_a_failed_run_keeps_the_old_one(imdb, tmp_path, monkeypatch):
    from sentilite.train import fit

    out = tmp_path / "model"
    fit.train_model(small("rnn", subset=600, epochs=1), out, imdb, verbose=0)
    before = (out / "model.keras").read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(fit, "plot_history", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        fit.train_model(small("rnn", subset=600, epochs=1, maxlen=60), out, imdb, verbose=0)
    assert (out / "model.keras").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging folder left
