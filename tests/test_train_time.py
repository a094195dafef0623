"""`make train-time`'s two files, made from tiny stand-ins of the shared sets; no training, no clock."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from sentilite.train.datasets import SharedDataError
from sentilite.train.train_time import TrainTime, mixed_texts_file, short_texts_file, table


def _rows(path: Path) -> list[list[str]]:
    return list(csv.reader(open(path, newline="", encoding="utf-8")))


def test_the_short_file_is_a_spread_of_the_airline_tweets(tmp_path):
    (tmp_path / "airline").mkdir()
    lines = ["tweet_id,airline_sentiment,text"] + [f'{n},{("negative", "neutral", "positive")[n % 3]},"tweet, {n}"'
                                                   for n in range(10)]
    (tmp_path / "airline" / "Tweets.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = _rows(short_texts_file(tmp_path, tmp_path / "short.csv", 4))
    assert rows == [["text", "label"], ["tweet, 0", "negative"], ["tweet, 3", "negative"], ["tweet, 6", "negative"],
                    ["tweet, 9", "negative"]]


def test_the_mixed_file_holds_sst2_phrases_and_imdb_reviews_under_one_pair_of_labels(tmp_path):
    (tmp_path / "sst2").mkdir()
    (tmp_path / "sst2" / "train_full.tsv").write_text('sentence\tlabel\na "good" film\t1\ndull\t0\n', encoding="utf-8")
    imdb = tmp_path / "aclImdb"
    for split in ("train", "test"):
        for cls, words in (("neg", "awful"), ("pos", "great")):
            (imdb / split / cls).mkdir(parents=True)
            (imdb / split / cls / f"1_{2 if cls == 'neg' else 9}.txt").write_text(f"{split} {words}", encoding="utf-8")
    rows = _rows(mixed_texts_file(tmp_path, tmp_path / "mixed.csv", 5, str(imdb), allow_incomplete=True))
    assert rows[0] == ["text", "label"] and len(rows) == 6
    every = {("a \"good\" film", "positive"), ("dull", "negative"), ("train awful", "negative"),
             ("train great", "positive"), ("test awful", "negative"), ("test great", "positive")}
    assert {tuple(r) for r in rows[1:]} < every  # 5 of the 6, shuffled with a fixed seed
    assert _rows(mixed_texts_file(tmp_path, tmp_path / "again.csv", 5, str(imdb), allow_incomplete=True)) == rows


def test_a_missing_shared_file_is_named(tmp_path):
    with pytest.raises(SharedDataError, match=r"airline/Tweets\.csv: missing"):
        short_texts_file(tmp_path, tmp_path / "short.csv", 4)


def test_the_table_says_whether_each_goal_was_met():
    rows = table([TrainTime("short-10k", "10,000 tweets", 10_000, 3, 19.0, 95.0, 170.0, 120.0, True, 0.81, 0.74),
                  TrainTime("mixed-100k", "100,000 texts", 100_000, 2, 25.0, 960.0, 1800.0, 900.0, False, 0.9, 0.9)])
    assert "| 10,000 tweets | 3 | 19 | 1.6 min | 2.8 min | 2 min | yes | 0.8100 / 0.7400 |" in rows
    assert "| 100,000 texts | 2 | 25 | 16.0 min | 30.0 min | 15 min | no | 0.9000 / 0.9000 |" in rows


def test_imdb_comes_from_the_option_then_the_environment_then_the_shared_archive(tmp_path, monkeypatch):
    from sentilite.train.train_time import SHARED_IMDB_ARCHIVE, imdb_source

    monkeypatch.delenv("IMDB_DATA", raising=False)
    assert imdb_source(None, tmp_path) is None  # nothing here: load_imdb's cache
    (tmp_path / SHARED_IMDB_ARCHIVE).write_bytes(b"")
    assert imdb_source(None, tmp_path) == str(tmp_path / SHARED_IMDB_ARCHIVE)
    monkeypatch.setenv("IMDB_DATA", "/data/imdb")
    assert imdb_source(None, tmp_path) == "/data/imdb"
    assert imdb_source("given.tar.gz", tmp_path) == "given.tar.gz"
