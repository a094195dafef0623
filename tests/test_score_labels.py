"""`sentilite score` for models of any labels: column names, the label and its score, counts, resume, parity.

Unit tests on a tiny .npz of random weights (no IMDB data, no training, no
TensorFlow): a model of three labels, one of two labels that are not
negative/positive, and a binary sentiment model, whose output keeps the
columns it has always had.
"""
import json
from pathlib import Path

import numpy as np
import pytest

from sentilite.runtime.architecture import BINARY_LABELS, ModelConfig
from sentilite.runtime.tokenizer import OOV_TOKEN, PAD_TOKEN, Tokenizer, TokenizerConfig
from sentilite.score import LabelColumnError, score
from sentilite.score.outputs import COLUMNS, AnswerColumns, probability_column
from sentilite.score.records import NO_TEXT, Rows, rows_from_json_lines, score_rows

VOCAB, MAXLEN = 40, 12
THREE = ("a", "b", "c")


def tiny_model_file(path: Path, labels=BINARY_LABELS, seed: int = 0) -> Path:
    """A .npz as `sentilite export` writes it, of random weights, for a model of ``labels``."""
    from sentilite.export.file_metadata import embedded_metadata
    from sentilite.export.to_numpy import export_numpy
    from sentilite.runtime.numpy_model import expected_shapes

    model = ModelConfig(cell="gru", embedding_dim=4, units=4, window=8, ngram_buckets=7, labels=tuple(labels))
    words = [PAD_TOKEN, OOV_TOKEN] + [f"w{i}" for i in range(VOCAB - 2)]
    tokenizer = Tokenizer(TokenizerConfig(vocab_size=VOCAB, maxlen=MAXLEN), words).to_json().encode()
    rng = np.random.default_rng(seed)
    weights = {k: rng.normal(0, 0.8, s).astype(np.float32) for k, s in expected_shapes(model, VOCAB).items()}
    weights["ngram_weights"][0] = 0  # the padding id reads nothing, as in a trained model
    metadata = embedded_metadata(tokenizer, model, "fp32", "numpy", labels, MAXLEN, VOCAB, "tiny")
    return export_numpy(weights, path, metadata=metadata)


def tiny_texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(f"w{i}" for i in rng.integers(0, VOCAB + 5, rng.integers(1, 20))) for _ in range(n)]


def write_input(path: Path, texts: list[str]) -> Path:
    """JSON Lines with ids t0, t1, ...; a row of no text after text 3 and a broken line at the end."""
    lines = [json.dumps({"id": f"t{i}", "text": text}) for i, text in enumerate(texts)]
    lines.insert(4, json.dumps({"id": "empty", "text": " "}))
    lines.append("{broken")
    path.write_text("\n".join(lines) + "\n")
    return path


def read_parts(out: Path):
    import pyarrow.dataset as ds

    table = ds.dataset(str(out), format="parquet").to_table()
    return table.schema.names, table.to_pylist()


class FakeModel:
    """predict_proba of fixed rows, cycled: the scoring logic without a model file."""

    def __init__(self, labels, answers):
        self.labels = tuple(labels)
        self.answers = np.asarray(answers, dtype=np.float32)

    def predict_proba(self, texts):
        return self.answers[np.arange(len(texts)) % len(self.answers)]


# -- column names ------------------------------------------------------------------------------
def test_probability_columns_are_p_and_the_label_made_safe():
    labels = ("negative", "Very Negative", "4 stars", "0", "正面", "मिश्रित", "e-mail/spam", "__x__", "Ⅳ", ":)")
    assert [probability_column(label) for label in labels] == [
        "p_negative", "p_very_negative", "p_4_stars", "p_0", "p_正面", "p_मिश्रित", "p_e_mail_spam", "p_x",
        "p_iv", "p_u003a_u0029"]


def test_a_binary_sentiment_model_keeps_its_columns_and_any_other_gets_one_per_label():
    sentiment = AnswerColumns.for_labels(BINARY_LABELS, "m.npz")
    assert sentiment.sentiment and sentiment.names == COLUMNS == ("id", "source", "label", "p_positive", "error")
    digits = AnswerColumns.for_labels(("0", "1"), "m.npz")  # two labels, not negative/positive: no p_positive
    assert not digits.sentiment and digits.names == ("id", "source", "label", "score", "p_0", "p_1", "error")
    reversed_pair = AnswerColumns.for_labels(("positive", "negative"), "m.npz")
    assert reversed_pair.number_columns == ("score", "p_positive", "p_negative")
    assert AnswerColumns.for_labels(("negative", "neutral", "positive"), "m.npz").number_columns == (
        "score", "p_negative", "p_neutral", "p_positive")


def test_two_labels_of_one_column_name_are_refused_naming_both(tmp_path):
    with pytest.raises(LabelColumnError, match=r"m\.npz: labels 'Good' and 'good!' both become the output "
                                               r"column 'p_good'"):
        AnswerColumns.for_labels(("bad", "Good", "good!"), "m.npz")
    model = tiny_model_file(tmp_path / "m.npz", labels=("very good", "Very-Good", "bad"))
    source = write_input(tmp_path / "in.jsonl", tiny_texts(3))
    with pytest.raises(LabelColumnError, match="'very good' and 'Very-Good' both become the output column "
                                               "'p_very_good'"):
        score(str(source), model=str(model), out=str(tmp_path / "out"), workers=1, quiet=True)
    assert not (tmp_path / "out").exists()  # refused before any work


# -- the label and its score -------------------------------------------------------------------
def test_rows_get_the_most_probable_label_its_score_and_every_probability():
    model = FakeModel(THREE, [[0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [0.4, 0.4, 0.2]])  # the last: a tie, first wins
    rows = rows_from_json_lines(['{"text": "x"}', '{"text": 5}', '{"text": "y"}', '{"text": "z"}'], range(1, 5),
                                "text", None)
    answers = score_rows(model, rows)
    assert answers.labels == ["b", None, "c", "a"]
    assert np.isnan(answers.probabilities[1]).all() and rows.errors[1] == "not text: number"
    np.testing.assert_array_equal(answers.probabilities[[0, 2, 3]], model.answers.astype(np.float64))
    np.testing.assert_array_equal(answers.scores, np.float32([0.5, np.nan, 0.8, 0.4]).astype(np.float64))
    two = score_rows(FakeModel(("0", "1"), [[0.5, 0.5], [0.75, 0.25]]), Rows([1, 2], ["x", "y"], [None, None]))
    assert two.labels == ["1", "0"]  # p >= 0.5 picks labels[1], as the runtime always has
    assert two.scores.tolist() == [0.5, 0.75]


def test_three_labels_one_process_parquet_and_jsonl(tmp_path):
    from sentilite.runtime import load

    model_file = tiny_model_file(tmp_path / "m3.npz", THREE)
    model = load(model_file)
    texts = tiny_texts(60)
    expected = model.predict_proba(texts).astype(np.float64)
    assert expected.shape == (60, 3)
    source = write_input(tmp_path / "in.jsonl", texts)
    summary = score(str(source), model=str(model_file), out=str(tmp_path / "out"), id_column="id", workers=1,
                    part_rows=25, quiet=True)
    names, rows = read_parts(tmp_path / "out")
    assert names == ["id", "source", "label", "score", "p_a", "p_b", "p_c", "error"]
    good = [r for r in rows if r["error"] is None]
    assert [r["id"] for r in good] == [f"t{i}" for i in range(60)]
    np.testing.assert_array_equal(np.array([[r["p_a"], r["p_b"], r["p_c"]] for r in good]), expected)
    assert [r["label"] for r in good] == [THREE[k] for k in expected.argmax(axis=1)] == model.predict(texts)
    np.testing.assert_array_equal([r["score"] for r in good], expected.max(axis=1))
    bad = [r for r in rows if r["error"] is not None]
    assert [(r["id"], r["error"]) for r in bad] == [("empty", NO_TEXT),
                                                     (None, "line 62: not valid JSON (Expecting property name "
                                                            "enclosed in double quotes, column 2)")]
    assert all(r["label"] is r["score"] is r["p_a"] is r["p_b"] is r["p_c"] is None for r in bad)
    counts = {label: sum(r["label"] == label for r in good) for label in THREE}
    assert summary["label_counts"] == counts and sum(counts.values()) == 60
    assert (summary["rows"], summary["scored"], summary["errors"]) == (62, 60, 2)
    assert "positive" not in summary and "negative" not in summary

    lines = score(str(source), model=str(model_file), out=str(tmp_path / "jsonl"), id_column="id", workers=1,
                  part_rows=25, output_format="jsonl", quiet=True)
    assert lines["label_counts"] == counts
    records = [json.loads(line) for part in sorted((tmp_path / "jsonl").glob("part-*.jsonl"))
               for line in part.read_text().splitlines()]
    assert list(records[0]) == ["id", "source", "label", "score", "p_a", "p_b", "p_c", "error"]
    assert [{k: r[k] for k in ("id", "label", "score", "p_a", "p_b", "p_c", "error")} for r in records] == [
        {k: r[k] for k in ("id", "label", "score", "p_a", "p_b", "p_c", "error")} for r in rows]


def test_three_labels_on_every_core_and_resumed_give_the_same_parts(tmp_path):
    model_file = tiny_model_file(tmp_path / "m3.npz", THREE)
    source = write_input(tmp_path / "in.jsonl", tiny_texts(90, seed=1))
    common = dict(model=str(model_file), id_column="id", part_rows=20, quiet=True)
    one = score(str(source), out=str(tmp_path / "one"), workers=1, **common)
    many = score(str(source), out=str(tmp_path / "many"), workers=2, **common)
    parts = sorted(p.name for p in (tmp_path / "one").glob("part-*.parquet"))
    assert len(parts) == 5 and parts == sorted(p.name for p in (tmp_path / "many").glob("part-*.parquet"))
    assert all((tmp_path / "one" / p).read_bytes() == (tmp_path / "many" / p).read_bytes() for p in parts)
    assert many["label_counts"] == one["label_counts"]
    (tmp_path / "one" / parts[2]).unlink()
    (tmp_path / "one" / "_SUCCESS").unlink()
    resumed = score(str(source), out=str(tmp_path / "one"), workers=1, **common)
    assert (resumed["parts_resumed"], resumed["parts_written"]) == (4, 1)
    assert resumed["label_counts"] == one["label_counts"]  # four parts' counts read back from their metadata


def test_two_labels_that_are_not_sentiment_get_a_column_each(tmp_path):
    from sentilite.runtime import load

    model_file = tiny_model_file(tmp_path / "m01.npz", ("0", "1"))
    texts = tiny_texts(30, seed=2)
    expected = load(model_file).predict_proba(texts).astype(np.float64)
    source = write_input(tmp_path / "in.jsonl", texts)
    summary = score(str(source), model=str(model_file), out=str(tmp_path / "out"), id_column="id", workers=1,
                    quiet=True)
    names, rows = read_parts(tmp_path / "out")
    assert names == ["id", "source", "label", "score", "p_0", "p_1", "error"]
    good = [r for r in rows if r["error"] is None]
    np.testing.assert_array_equal([[r["p_0"], r["p_1"]] for r in good], expected)
    assert [r["label"] for r in good] == ["1" if p >= 0.5 else "0" for p in expected[:, 1]]
    assert summary["label_counts"] == {"0": int((expected[:, 1] < 0.5).sum()), "1": int((expected[:, 1] >= 0.5).sum())}


def test_a_binary_sentiment_model_writes_the_columns_and_summary_it_always_has(tmp_path):
    from sentilite.runtime import load

    model_file = tiny_model_file(tmp_path / "m2.npz")
    texts = tiny_texts(40, seed=3)
    positive = load(model_file).predict_proba(texts)[:, 1].astype(np.float64)
    source = write_input(tmp_path / "in.jsonl", texts)
    summary = score(str(source), model=str(model_file), out=str(tmp_path / "out"), id_column="id", workers=1,
                    quiet=True, output_format="jsonl")
    records = [json.loads(line) for line in next((tmp_path / "out").glob("part-*.jsonl")).read_text().splitlines()]
    assert all(list(r) == list(COLUMNS) for r in records)
    good = [r for r in records if r["error"] is None]
    assert [r["p_positive"] for r in good] == positive.tolist()
    assert [r["label"] for r in good] == ["positive" if p >= 0.5 else "negative" for p in positive]
    assert summary["positive"] == int((positive >= 0.5).sum()) and summary["negative"] == 40 - summary["positive"]
    assert "label_counts" not in summary
    parquet = score(str(source), model=str(model_file), out=str(tmp_path / "parquet"), id_column="id", workers=1,
                    quiet=True)
    import pyarrow.parquet as pq

    part = next((tmp_path / "parquet").glob("part-*.parquet"))
    assert pq.read_schema(part).names == list(COLUMNS)
    meta = pq.read_metadata(part).metadata
    assert (meta[b"sentilite.part_rows"], meta[b"sentilite.part_errors"], meta[b"sentilite.part_positive"]) == (
        b"42", b"2", str(parquet["positive"]).encode())
