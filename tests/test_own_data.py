"""`sentilite train --data FILE`: every reader through the command's own path, every bad-data case as one line.

The bad-data cases run `sentilite.cli.main` in this process: the data is
read and checked before TensorFlow is imported, so each takes milliseconds,
and each leaves --out as it was.
"""
import gzip
import json
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from sentilite.cli import build_parser, configure_logging, main
from sentilite.train import commands
from sentilite.train.config import (DataConfig, DataProfile, RunConfig, ngram_slots_within_budget, preset_config,
                                    sized_for_data)
from sentilite.train.data import Reviews, load_training_data, profile_texts, read_labeled_splits, training_data
from sentilite.train.readers import MAX_TEXT_CHARS

WORDS = {"neg": "bad awful poor sad dull".split(), "neu": "okay fine plain average usual".split(),
         "pos": "good great lovely superb fun".split()}
FILLER = "the film was it and really quite".split()


def made_up_rows(n=200, labels=("neg", "pos"), seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = labels[i % len(labels)]
        rows.append((" ".join(rng.choice(WORDS[label], 3).tolist() + rng.choice(FILLER, 5).tolist()), label))
    return rows


def csv_text(rows, header="text,label"):
    return header + "\n" + "".join(f"{text},{label}\n" for text, label in rows)


def write(path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def read_through_cli(*args):
    """The config and data `sentilite train` would train on: its parser and its data path, without the training."""
    parsed = build_parser().parse_args(["train", "--cell", "gru", *args, "--out", "unused"])
    configure_logging()  # to this test's stderr, as main does
    return commands._config_and_data(parsed)


def refused(capsys, tmp_path, *args):
    """`sentilite train ARGS` fails as a user error: (its one-line message); --out is left as it was."""
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    (out / "keep.txt").write_text("as it was")
    code = main(["train", "--cell", "gru", *args, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"] and (out / "keep.txt").read_text() == "as it was"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no staging folder left
    lines = [line for line in err.splitlines() if not line.startswith("[sentilite")]
    assert len(lines) == 1 and lines[0].startswith("sentilite train: error: "), err
    return lines[0][len("sentilite train: error: "):]


# -- every reader, through the command's data path ----------------------------------------------------------------
def _parquet(path, rows, text_type=None):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    texts = [text for text, _ in rows] if text_type is None else list(range(len(rows)))
    pq.write_table(pa.table({"text": texts, "label": [label for _, label in rows]}), path)
    return path


def _folder(path, rows):
    for i, (text, label) in enumerate(rows):
        write(path / label / f"{i}.txt", text)
    return path


READERS = {
    "train.csv": lambda p, rows: write(p, csv_text(rows)),
    "train.tsv": lambda p, rows: write(p, "sentence\tlabel\n" + "".join(f"{t}\t{lab}\n" for t, lab in rows)),
    "train.jsonl": lambda p, rows: write(p, "".join(json.dumps({"review": t, "sentiment": lab}) + "\n"
                                                    for t, lab in rows)),
    "train.txt": lambda p, rows: write(p, "".join(f"__label__{lab} {t}\n" for t, lab in rows)),
    "train.csv.gz": lambda p, rows: write(p, gzip.compress(csv_text(rows).encode())),
    "train.parquet": _parquet,
    "folder": _folder,
}


@pytest.mark.parametrize("name", READERS)
def test_every_reader_gives_the_same_splits_and_labels(tmp_path, name):
    rows = made_up_rows(60, ("neg", "neu", "pos"))
    path = READERS[name](tmp_path / name, rows)
    config, data = read_through_cli("--data", str(path))
    assert data.imdb is False and data.label_names == ("neg", "neu", "pos")
    assert config.model.labels == ("neg", "neu", "pos") and config.data.labels == ("neg", "neu", "pos")
    assert config.data.train == str(path) and config.preset == "data"
    # 60 rows, 20 a label: 4 of each for test, then 3 of each remaining 16 for validation
    assert (len(data.train), len(data.validation), len(data.test)) == (39, 9, 12)
    assert data.train.ratings is None and data.train.ids is None
    texts = {text for text, _ in rows}
    assert set(data.train.texts) | set(data.validation.texts) | set(data.test.texts) == texts
    assert not set(data.train.texts) & set(data.test.texts) and not set(data.validation.texts) & set(data.test.texts)
    assert data.summary.to_dict()["splits"]["test"]["class_counts"] == {"neg": 4, "neu": 4, "pos": 4}


def test_a_zip_of_one_csv_and_columns_by_index(tmp_path):
    path = tmp_path / "data.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("inner/data.csv", "".join(f"{lab};{t}\n".replace(";", ",") for t, lab in made_up_rows(40)))
    _, data = read_through_cli("--data", str(path), "--text-column", "1", "--label-column", "0")
    assert data.label_names == ("neg", "pos") and len(data.train) + len(data.validation) + len(data.test) == 40


def test_given_files_are_used_as_given_and_the_note_says_so(tmp_path):
    train = write(tmp_path / "train.csv", csv_text(made_up_rows(40)))
    validation = write(tmp_path / "dev.tsv", "text\tlabel\n" + "".join(f"{t}\t{lab}\n" for t, lab in
                                                                      made_up_rows(10, seed=1)))
    test = write(tmp_path / "test.csv", csv_text(made_up_rows(8, ("pos",), seed=2)))  # may lack a label
    config, data = read_through_cli("--data", str(train), "--validation-data", str(validation),
                                    "--test-data", str(test))
    assert (len(data.train), len(data.validation), len(data.test)) == (40, 10, 8)
    assert data.test.labels.tolist() == [1] * 8
    assert data.split_note == "train: train.csv as given; validation: dev.tsv as given; test: test.csv as given"
    _, only_test = read_through_cli("--data", str(train), "--test-data", str(test))
    assert only_test.split_note == ("train: train.csv less its validation split; validation: 20% of train.csv, "
                                    "stratified, seed 1234; test: test.csv as given")
    _, none_given = read_through_cli("--data", str(train))
    assert none_given.split_note == ("train: train.csv less its validation and test splits; validation: 20% of "
                                     "train.csv less its test split, stratified, seed 1234; test: 20% of train.csv, "
                                     "stratified, seed 1234")


def test_label_order_given_numeric_or_sorted(tmp_path):
    path = write(tmp_path / "r.csv", csv_text([(f"text {i}", ["10", "2", "-1"][i % 3]) for i in range(30)]))
    assert read_through_cli("--data", str(path))[1].label_names == ("-1", "2", "10")
    words = write(tmp_path / "w.csv", csv_text(made_up_rows(30, ("pos", "neu", "neg"))))
    assert read_through_cli("--data", str(words))[1].label_names == ("neg", "neu", "pos")
    given = read_through_cli("--data", str(words), "--labels", "pos, neu,neg")[1]
    assert given.label_names == ("pos", "neu", "neg")


def test_config_json_reads_the_same_splits_again_and_a_0_3_config_means_imdb(tmp_path):
    path = write(tmp_path / "train.csv", csv_text(made_up_rows(50, ("neg", "neu", "pos"))))
    config, data = read_through_cli("--data", str(path), "--seed", "7")
    again_config = RunConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again_config == config
    again = load_training_data(again_config)
    for split in ("train", "validation", "test"):
        assert getattr(again, split).texts == getattr(data, split).texts
        assert getattr(again, split).labels.tolist() == getattr(data, split).labels.tolist()
    assert again.split_note == data.split_note and "seed 7" in again.split_note
    imdb = preset_config("default", "gru")
    written = imdb.to_dict()
    assert "data" not in written and "character_words" not in written["tokenizer"]  # as 0.3 wrote it
    assert RunConfig.from_dict(written).data == DataConfig() and RunConfig.from_dict(written).data.imdb


def test_a_config_json_data_section_is_checked():
    from sentilite.shared.errors import ConfigError

    written = preset_config("default", "gru").replace(data=DataConfig(train="/d/train.csv")).to_dict()
    for change, match in (({"colour": 1}, "config.json: data: unknown DataConfig setting.*colour"),
                          ({"test_fraction": 1.5}, r"DataConfig.test_fraction must be in \(0, 1\)"),
                          ({"train": None, "test": "/d/test.csv"}, "need a training file"),
                          ({"labels": "ab"}, "DataConfig.labels must be a list")):
        with pytest.raises(ConfigError, match=match):
            RunConfig.from_dict({**written, "data": {**written["data"], **change}})


def test_imdb_stays_the_default_and_its_options_are_refused_with_it(capsys, tmp_path, imdb_path):
    parsed = build_parser().parse_args(["train", "--cell", "gru", "--data", str(imdb_path), "--out", "x"])
    assert commands._own_data_config(parsed) is None and commands._config(parsed).preset == "default"
    message = refused(capsys, tmp_path, "--data", str(imdb_path), "--labels", "a,b")
    assert message.startswith("--labels: for your own labeled files given with --data")


def test_skip_bad_rows_skips_counts_and_reports(capsys, tmp_path):
    rows = made_up_rows(40)
    path = write(tmp_path / "r.csv", csv_text(rows) + "   ,pos\nno label,\n")
    _, data = read_through_cli("--data", str(path), "--skip-bad-rows")
    assert len(data.train) + len(data.validation) + len(data.test) == 40
    summary = data.summary.to_dict()
    assert summary["skipped_rows"] == 2
    assert summary["files"][0]["skipped_by_reason"] == {"empty_text": 1, "missing_label": 1}
    assert [row["location"] for row in summary["files"][0]["skipped_examples"]] == ["line 42", "line 43"]
    assert "r.csv: skipped 2 bad rows (--skip-bad-rows): empty_text 1, missing_label 1" in capsys.readouterr().err


# -- every bad-data case: one line naming the file, the row and what is wrong; --out untouched -------------------
def test_a_missing_column_lists_the_columns_found(capsys, tmp_path):
    path = write(tmp_path / "r.csv", "review_text,stars\nhello,1\n")
    message = refused(capsys, tmp_path, "--data", str(path), "--text-column", "text")
    assert message == (f"{path}: no column 'text' for the text (--text-column); its columns are 'review_text', "
                       f"'stars'")
    message = refused(capsys, tmp_path, "--data", str(path))
    assert message.startswith(f"{path}: no text column: none of text, sentence,")
    assert "('review_text', 'stars')" in message


@pytest.mark.parametrize("text, problem", [("", "the text is empty"), ("  \t ", "the text is only whitespace")])
def test_an_empty_or_whitespace_text(capsys, tmp_path, text, problem):
    path = write(tmp_path / "r.jsonl", '{"text": "fine", "label": "a"}\n' + json.dumps({"text": text, "label": "b"}))
    assert refused(capsys, tmp_path, "--data", str(path)) == (
        f"{path}: line 2: {problem} (--skip-bad-rows, skip_bad_rows=True, skips such rows and counts them)")


def test_a_missing_label(capsys, tmp_path):
    path = write(tmp_path / "r.csv", "text,label\nfine,a\nno label here,\n")
    assert refused(capsys, tmp_path, "--data", str(path)).startswith(f"{path}: line 3: the label is empty")
    jsonl = write(tmp_path / "r.jsonl", '{"text": "fine", "label": "a"}\n{"text": "where is it"}\n')
    assert refused(capsys, tmp_path, "--data", str(jsonl)).startswith(
        f"{jsonl}: line 2: no 'label' field (its fields: 'text')")


def test_a_single_class(capsys, tmp_path):
    path = write(tmp_path / "r.csv", csv_text(made_up_rows(10, ("pos",))))
    assert refused(capsys, tmp_path, "--data", str(path)) == (
        f"{path}: every row (10) has the label 'pos': training needs at least 2 classes")


def test_a_class_too_small_to_split(capsys, tmp_path):
    path = write(tmp_path / "r.csv", csv_text(made_up_rows(20) + [("a lone neutral text", "neu")]))
    assert refused(capsys, tmp_path, "--data", str(path)) == (
        f"{path}: class 'neu' has 1 row: too few for a 0.2 test split (no --test-data given), which would "
        f"leave none on the test side; it needs at least 3 rows (add rows, or merge or drop the class)")
    test = write(tmp_path / "test.csv", csv_text(made_up_rows(6, seed=3)))
    path = write(tmp_path / "r.csv", csv_text(made_up_rows(20) + [("two neutral", "neu"), ("texts", "neu")]))
    assert refused(capsys, tmp_path, "--data", str(path), "--test-data", str(test)).startswith(
        f"{path}: class 'neu' has 2 rows: too few for a 0.2 validation split (no --validation-data given), ")


def test_more_than_50_labels_says_the_text_column_may_be_the_label(capsys, tmp_path):
    path = write(tmp_path / "r.csv", "label,text\n" + "".join(f"text number {i},{i % 3}\n" for i in range(60)))
    message = refused(capsys, tmp_path, "--data", str(path), "--text-column", "text", "--label-column", "label")
    assert message == (f"{path}: more than 50 distinct labels (one more, 'text number 50', on line 52); this often "
                       f"means the text column was taken as the label: choose the columns with --text-column and "
                       f"--label-column")


def test_labels_the_data_does_not_match(capsys, tmp_path):
    path = write(tmp_path / "r.csv", csv_text(made_up_rows(30, ("neg", "neu", "pos"))))
    assert refused(capsys, tmp_path, "--data", str(path), "--labels", "neg,pos") == (
        f"{path}: its labels do not match --labels ('neg', 'pos'): unexpected 'neu' (10 rows, first on line 3)")
    assert refused(capsys, tmp_path, "--data", str(path), "--labels", "neg,neu,pos,mixed").endswith(
        "missing 'mixed' (no row has it)")
    assert refused(capsys, tmp_path, "--data", str(path), "--labels", "neg,,pos") == (
        "--labels 'neg,,pos': an empty label name; give them comma-separated, e.g. negative,neutral,positive")


def test_a_test_or_validation_file_with_a_label_training_lacks(capsys, tmp_path):
    train = write(tmp_path / "train.csv", csv_text(made_up_rows(20)))
    test = write(tmp_path / "test.csv", csv_text(made_up_rows(6, ("neg", "neu", "pos"))))
    assert refused(capsys, tmp_path, "--data", str(train), "--test-data", str(test)) == (
        f"{test}: its labels do not match those of the training file train.csv ('neg', 'pos'): unexpected 'neu' "
        f"(2 rows, first on line 3)")
    folder = _folder(tmp_path / "dev", made_up_rows(6, ("neg", "neu", "pos")))
    assert refused(capsys, tmp_path, "--data", str(train), "--validation-data", str(folder)) == (
        f"{folder}: sub-folder 'neu' is a label the training data (train.csv) does not have; its labels: "
        f"'neg', 'pos'")


def test_bytes_that_do_not_decode_name_the_encoding_tried(capsys, tmp_path):
    path = write(tmp_path / "r.csv", b"text,label\ncaf\xe9 au lait,pos\nfine,neg\n")
    assert refused(capsys, tmp_path, "--data", str(path)) == (
        f"{path}: line 2: bytes that are not valid utf-8 (e9 at byte 4 of the line); the file was read as "
        f"utf-8: --encoding (encoding=) reads another, e.g. cp1252 or gb18030 (--skip-bad-rows, "
        f"skip_bad_rows=True, skips such rows and counts them)")
    assert refused(capsys, tmp_path, "--data", str(path), "--encoding", "cp1252") == (
        f"{path}: class 'neg' has 1 row: too few for a 0.2 test split (no --test-data given), which would "
        f"leave none on the test side; it needs at least 3 rows (add rows, or merge or drop the class)")
    assert refused(capsys, tmp_path, "--data", str(path), "--encoding", "klingon") == (
        "--encoding 'klingon': not an encoding Python knows (e.g. utf-8, cp1252, gb18030, utf-16)")


def test_a_ragged_csv_row(capsys, tmp_path):
    path = write(tmp_path / "r.csv", "text,label\nfine,pos\nan, unquoted comma,neg\n")
    assert refused(capsys, tmp_path, "--data", str(path)).startswith(
        f"{path}: line 3: 3 fields where the header has 2")


def test_a_field_over_the_size_cap(capsys, tmp_path):
    path = write(tmp_path / "r.tsv", "text\tlabel\nfine\tpos\n" + "x" * (MAX_TEXT_CHARS + 1) + "\tneg\n")
    assert refused(capsys, tmp_path, "--data", str(path)).startswith(
        f"{path}: line 3: the text is 1,048,577 characters, over the cap of 1,048,576 for one text")


def test_an_empty_file(capsys, tmp_path):
    path = write(tmp_path / "r.csv", "")
    assert refused(capsys, tmp_path, "--data", str(path)) == f"{path}: is empty"
    header = write(tmp_path / "h.csv", "text,label\n")
    assert refused(capsys, tmp_path, "--data", str(header)) == f"{header}: has a header but no rows"


def test_a_parquet_column_of_the_wrong_type(capsys, tmp_path):
    path = _parquet(tmp_path / "r.parquet", made_up_rows(10), text_type=int)
    assert refused(capsys, tmp_path, "--data", str(path)) == (
        f"{path}: the text column 'text' holds int64, not strings; choose the text column with --text-column")


def test_a_folder_with_no_label_sub_folders(capsys, tmp_path):
    folder = tmp_path / "texts"
    write(folder / "a.txt", "a text lying loose")
    assert refused(capsys, tmp_path, "--data", str(folder)).startswith(
        f"{folder}: no label sub-folders: expected one sub-folder per class")


def test_a_missing_file_and_an_unknown_format(capsys, tmp_path):
    assert refused(capsys, tmp_path, "--data", str(tmp_path / "nowhere.csv")) == (
        f"{tmp_path / 'nowhere.csv'}: no such file or folder")
    odd = write(tmp_path / "r.dat", "text,label\n")
    assert refused(capsys, tmp_path, "--data", str(odd)).startswith(f"{odd}: cannot tell the format from the name")
    assert refused(capsys, tmp_path, "--data", str(odd), "--data-format", "xml") == (
        "--data-format 'xml': choose one of csv, tsv, jsonl, parquet, fasttext, folder")


# -- sizes from the data ------------------------------------------------------------------------------------------
def test_the_profile_counts_words_lengths_and_ngrams():
    texts = ["a b c", "a b d", "a b c e", "f"]
    profile = profile_texts(texts, [0, 1, 0, 1], 2)
    assert (profile.rows, profile.label_counts, profile.median_words, profile.p95_words, profile.max_words) == (
        4, (2, 2), 3.0, 4, 4)
    # a, b and c are seen twice; d, e, f are one unknown word (?): a b x3, b c x2, a b c x2 are seen twice,
    # b ?, c ?, a b ?, b c ? once
    assert (profile.distinct_words, profile.words_seen_twice, profile.half_distinct_words) == (6, 3, 4)
    assert (profile.distinct_ngrams, profile.ngrams_seen_twice) == (7, 3)
    chinese = profile_texts(["这部电影太好看了，我很喜欢。", "不好看"], [1, 0], 2)
    assert chinese.cjk_share == 1.0 and chinese.max_words == 12  # one word a character, punctuation apart


def test_sizes_follow_the_data_and_8_bit_files_fit_1_mib_up_to_5_labels():
    short = DataProfile(rows=14_000, label_counts=(9_000, 3_000, 2_000), median_words=19, p95_words=27,
                        max_words=35, distinct_words=15_000, half_distinct_words=10_000, words_seen_twice=6_596,
                        distinct_ngrams=270_000, ngrams_seen_twice=48_380)
    config, chosen = sized_for_data(short, "gru")
    assert (config.tokenizer.vocab_size, config.tokenizer.maxlen, config.model.window) == (6_598, 32, None)
    assert config.model.ngram_buckets == 49_368 and config.training.crops_per_review == 0
    assert (config.training.batch_size, config.training.max_epochs, config.training.patience) == (64, 7, 2)
    assert [c.setting for c in chosen][:3] == ["tokenizer.vocab_size", "tokenizer.maxlen", "model.window"]
    long = DataProfile(rows=25_000, label_counts=(12_500, 12_500), median_words=174, p95_words=2_000,
                       max_words=2_500, distinct_words=100_000, half_distinct_words=70_000, words_seen_twice=50_000,
                       distinct_ngrams=3_000_000, ngrams_seen_twice=900_000)
    config = sized_for_data(long, "gru")[0]
    default = preset_config("default", "gru")
    assert (config.tokenizer.vocab_size, config.tokenizer.maxlen, config.model.ngram_buckets,
            config.model.window) == (10_000, 1_000, 153_001, 64) == (
        default.tokenizer.vocab_size, default.tokenizer.maxlen, default.model.ngram_buckets, default.model.window)
    assert config.training.crops_per_review == 1 and config.training.max_epochs == 4
    for labels in (3, 4, 5):
        many = sized_for_data(DataProfile(**{**long.to_dict(), "label_counts": (5_000,) * labels}), "gru")[0]
        slots = many.model.ngram_buckets
        assert slots == ngram_slots_within_budget(10_000, 16, labels) < 153_001
        # ~N bytes a slot and embedding_dim + N a word, with the 330,000 bytes of the rest, within 1 MiB
        assert 330_000 + 10_000 * (16 + labels) + slots * (labels + 1.5) <= 1 << 20
    cjk = sized_for_data(DataProfile(**{**short.to_dict(), "label_counts": (1, 1), "cjk_share": 0.9}), "gru")[0]
    assert cjk.tokenizer.character_words == "cjk"
    # characters inside words are a setting to try, not a size the data chooses
    assert config.training.subword_ngrams == cjk.training.subword_ngrams == "none"


def test_preset_and_set_override_the_sizes_from_the_data(tmp_path):
    path = write(tmp_path / "r.csv", csv_text(made_up_rows(60)))
    config, _ = read_through_cli("--data", str(path), "--preset", "default")
    assert config.preset == "default" and config.data.profile is None and config.data.derived == ()
    assert config.tokenizer.vocab_size == 10_000 and config.model.labels == ("neg", "pos")
    config, _ = read_through_cli("--data", str(path), "--set", "tokenizer.maxlen=50", "--max-epochs", "1")
    assert config.tokenizer.maxlen == 50 and config.training.max_epochs == 1
    maxlen = next(c for c in config.data.derived if c.setting == "tokenizer.maxlen")
    assert maxlen.value == 50 and maxlen.reason.startswith("given on the command line (the data suggested 8:")


def test_reviews_without_ratings_take_rows():
    reviews = Reviews(["a", "b", "c"], np.array([0, 1, 0], np.int32))
    taken = reviews.take([2, 0])
    assert taken.texts == ["c", "a"] and taken.labels.tolist() == [0, 0] and taken.ratings is None


# -- a brief real run -----------------------------------------------------------------------------------------------
@pytest.mark.integration
def test_train_on_a_made_up_csv_of_3_labels(tmp_path):
    """200 rows and a bad one, 1 epoch, a small vocabulary: config.json records the data, the labels and the
    sizes chosen; metrics.json the row skipped. 22 s of CPU, most of it TensorFlow starting (80 s on 2 busy cores)."""
    labels = ("neg", "neu", "pos")
    path = write(tmp_path / "made_up.csv", csv_text(made_up_rows(200, labels)) + "   ,neu\n")
    out = tmp_path / "model"
    started = time.time()
    result = subprocess.run([sys.executable, "-m", "sentilite", "train", "--cell", "gru", "--data", str(path),
                             "--skip-bad-rows", "--set", "training.max_epochs=1", "--set", "tokenizer.vocab_size=50",
                             "--quiet", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads((out / "config.json").read_text())
    assert config["preset"] == "data" and config["model"]["labels"] == list(labels)
    assert config["data"]["train"] == str(path) and config["data"]["labels"] == list(labels)
    assert config["data"]["profile"]["rows"] == 200 - 3 * 13 and config["tokenizer"]["vocab_size"] <= 50
    assert "[sentilite.data] from the data: tokenizer.maxlen = 8:" in result.stderr
    assert "made_up.csv: skipped 1 bad row (--skip-bad-rows): empty_text 1; the first: line 202" in result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data_summary"]["skipped_rows"] == 1 and metrics["data_summary"]["label_names"] == list(labels)
    again = load_training_data(RunConfig.from_dict(config))
    assert again.label_names == labels and len(again.test) == metrics["data_summary"]["splits"]["test"]["rows"]
    print(f"trained on {path.name} with {len(labels)} labels in {time.time() - started:.0f} s")
