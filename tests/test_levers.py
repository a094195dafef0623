"""`sentilite levers`: the left-out model changes, each measured against the kept model."""
import numpy as np
import pytest
from conftest import small_config
from sentilite.train.levers import (
    BLEND_LEVERS,
    CELL_LEVERS,
    LEVERS,
    LeverError,
    check_levers,
    ngram_branch_bytes,
)


def test_lever_names_are_checked_before_any_work():
    assert check_levers([]) == LEVERS
    assert check_levers(["pooling", "tail-ngrams"]) == ("pooling", "tail-ngrams")
    with pytest.raises(LeverError, match="unknown lever.*poolin.*choose from base, pooling"):
        check_levers(["poolin"])


def test_branch_bytes_count_weights_fingerprints_and_displacements():
    from sentilite.runtime.architecture import ModelConfig
    from sentilite.runtime.recurrence import dictionary_groups

    hashed = ModelConfig(ngram_buckets=524_287)
    dictionary = ModelConfig(ngram_buckets=153_001, ngram_lookup="dictionary")
    assert ngram_branch_bytes(hashed, 10_000) == 534_287
    assert ngram_branch_bytes(dictionary, 10_000) == 10_000 + 2 * 153_001 + 2 * dictionary_groups(153_001)


@pytest.mark.parametrize("lever", CELL_LEVERS)
def test_every_cell_lever_reads_a_window_and_answers_a_probability(lever):
    pytest.importorskip("keras")
    from sentilite.train.levers import build_lever_cell

    config = small_config("gru")
    model = build_lever_cell(lever, config)
    steps = config.model.steps(config.tokenizer.maxlen)
    ids = np.zeros((3, steps), np.int32)
    ids[0, -5:] = [5, 6, 7, 8, 9]
    ids[1, :] = 4
    out = np.asarray(model(ids, training=False))
    assert out.shape == (3, 1) and np.all((out > 0) & (out < 1))
    assert model.count_params() > 0


def test_word_dropout_turns_real_ids_into_oov_only_while_training():
    keras = pytest.importorskip("keras")
    from sentilite.runtime.tokenizer import OOV_ID, PAD_ID
    from sentilite.train.levers import word_dropout_layer

    keras.utils.set_random_seed(0)
    layer = word_dropout_layer()(0.25)
    ids = np.full((64, 50), 7, np.int32)
    ids[:, :10] = PAD_ID
    np.testing.assert_array_equal(np.asarray(layer(ids, training=False)), ids)
    dropped = np.asarray(layer(ids, training=True))
    assert np.all(dropped[:, :10] == PAD_ID)  # padding stays padding
    assert set(np.unique(dropped[:, 10:])) == {7, OOV_ID}
    assert 0.2 < np.mean(dropped[:, 10:] == OOV_ID) < 0.3


@pytest.mark.integration
def test_levers_are_measured_on_real_reviews(imdb):
    from sentilite.train.levers import run_levers

    levers = ("pooling", "word-dropout", *BLEND_LEVERS, "ngram-hashed")
    result = run_levers(small_config("gru", epochs=1), imdb, levers, test_reviews=1000, hashed_buckets=20_011)
    rows = {r["lever"]: r for r in result["rows"]}
    # the base cell the blend levers reuse is not reported unasked; the branch lever brings the two whole models
    assert list(rows) == [*levers, "base, whole model", "ngram-hashed, whole model"]
    assert [len(rows[n]["blend_weights"]) for n in levers[:-1]] == [2, 2, 3, 5]
    assert rows["tail-ngrams"]["cell_alone"] is None
    assert rows["ngram-hashed"]["bytes_8bit"] == 2000 + 20_011
    for row in rows.values():
        blend = row["blend"]
        assert 0.70 < blend["test"] <= 1.0, row  # 3,000 training reviews: a real model, not a coin
        assert len(blend["short_text"]) == 3 and all(0.5 < a < blend["test"] + 0.05 for a in blend["short_text"])
    assert result["test_reviews"] == 1000
    assert result["table"].count("\n") == len(rows) + 2  # header, rule, the n-gram branch, one line a row
    # the whole models: the kept recipe and the hashed branch's, each a real model on the same test reviews
    whole = rows["ngram-hashed, whole model"]["blend"], rows["base, whole model"]["blend"]
    assert all(0.70 < w["test"] <= 1.0 for w in whole)
