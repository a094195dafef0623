"""Reading a user's labeled files: every format, every kind of bad data, and the real shared sets."""
import gzip
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sentilite.shared.errors import MissingExtraError
from sentilite.train.errors import DatasetError
from sentilite.train.readers import (MAX_CLASSES, BadRowError, LabeledDataError, LabelSetError, SplitError,
                                     column_spec, format_of, read_labeled, stratified_split)

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"  # beside the repository, as tests/conftest.py finds IMDB


def write(path: Path, text: str, encoding="utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def write_gz(path: Path, text: str) -> Path:
    path.write_bytes(gzip.compress(text.encode("utf-8")))
    return path


def write_parquet(path: Path, columns: dict) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path)
    return path


def fails(exc_type, match, *args, **kwargs):
    """The error read_labeled raises, checked to be a clean one: our type, no traceback from inside a parser."""
    with pytest.raises(exc_type, match=match) as info:
        read_labeled(*args, **kwargs)
    assert isinstance(info.value, DatasetError)
    assert info.value.__cause__ is None and (info.value.__context__ is None or info.value.__suppress_context__)
    return str(info.value)


# -- formats ------------------------------------------------------------------------------------------------
def test_csv_quoting_newlines_and_byte_order_marks(tmp_path):
    path = write(tmp_path / "reviews.csv", '\ufeffid,Text,label\n1,"good, ""really"" good",pos\n'
                                           '2,"two\nlines",neg\n3,\ufeffbom first,pos\n')
    data = read_labeled(path)
    assert data.texts == ('good, "really" good', "two\nlines", "bom first")
    assert data.label_names == ("neg", "pos")
    assert data.labels.tolist() == [1, 0, 1] and data.labels.dtype == np.int32
    assert (data.data_format, data.text_column, data.label_column) == ("csv", "Text", "label")
    assert data.skipped_rows == 0 and data.source == str(path)


def test_tsv_has_no_quoting_and_crlf_line_ends(tmp_path):
    path = write(tmp_path / "train.tsv", 'sentence\tlabel\r\nit \'s "great"\t1\r\n"bad\t0\r\n\r\n')
    data = read_labeled(path)
    assert data.texts == ('it \'s "great"', '"bad')
    assert data.labels.tolist() == [1, 0]


def test_jsonl(tmp_path):
    rows = [{"content": "fine", "sentiment": "positive", "id": 1}, {"content": "meh", "sentiment": "neutral"},
            {"content": "awful", "sentiment": "negative"}]
    path = write(tmp_path / "r.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    data = read_labeled(path)
    assert data.texts == ("fine", "meh", "awful")
    assert data.label_names == ("negative", "neutral", "positive")
    assert data.labels.tolist() == [2, 1, 0]


def test_jsonl_typed_labels(tmp_path):
    path = write(tmp_path / "r.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": 0.0}\n'
                                       '{"text": "c", "label": "1"}\n')
    data = read_labeled(path)
    assert data.label_names == ("0", "1") and data.labels.tolist() == [1, 0, 1]


def test_parquet(tmp_path):
    path = write_parquet(tmp_path / "r.parquet", {"review": ["good", "bad", "ok"], "stars": [5, 1, 3]})
    data = read_labeled(path, label_column="stars")
    assert data.texts == ("good", "bad", "ok")
    assert data.label_names == ("1", "3", "5") and data.labels.tolist() == [2, 0, 1]


def test_fasttext_lines_tab_or_space(tmp_path):
    path = write(tmp_path / "sst.txt", "__label__2\tA tab .\n__label__10 a space\n__label__1  two spaces\n")
    data = read_labeled(path)
    assert data.texts == ("A tab .", "a space", "two spaces")
    assert data.label_names == ("1", "2", "10")  # integers: numeric order
    assert data.labels.tolist() == [1, 2, 0]


def test_folder_per_class(tmp_path):
    for label, texts in (("pos", ["great", "fine"]), ("neg", ["bad"]), ("unsup", ["who knows"])):
        (tmp_path / label).mkdir()
        for i, text in enumerate(texts):
            write(tmp_path / label / f"{i + 1}.txt", text)
    (tmp_path / "pos" / "notes.md").write_text("not a text")
    (tmp_path / ".hidden").mkdir()
    data = read_labeled(tmp_path, labels=["neg", "pos"])  # labels= picks the sub-folders: unsup is not read
    assert sorted(zip(data.texts, data.labels.tolist())) == [("bad", 0), ("fine", 1), ("great", 1)]
    assert data.data_format == "folder" and data.label_names == ("neg", "pos")
    assert read_labeled(tmp_path).label_names == ("neg", "pos", "unsup")
    # a test folder may lack a rare class of the training data's
    lacking = read_labeled(tmp_path, labels=["neg", "pos", "mixed"], require_all_labels=False)
    assert lacking.label_names == ("neg", "pos", "mixed") and sorted(lacking.labels.tolist()) == [0, 1, 1]
    with pytest.raises(LabelSetError, match=r"no sub-folder with \.txt files for 'mixed' \(--labels\)"):
        read_labeled(tmp_path, labels=["neg", "pos", "mixed"], labels_source="--labels")


def test_an_error_says_where_the_labels_and_the_split_came_from(tmp_path):
    path = write(tmp_path / "r.csv", "text,label\na,x\nb,y\nc,z\n")
    with pytest.raises(LabelSetError, match=r"r\.csv: its labels do not match those of train\.csv \('x', 'y'\): "
                                            r"unexpected 'z' \(1 row, first on line 4\)"):
        read_labeled(path, labels=["x", "y"], labels_source="those of train.csv")
    with pytest.raises(SplitError, match=r"too few for a 0\.2 test split, which would leave none on the test side"):
        stratified_split(np.array([0, 0, 0, 1]), 0.2, 0, holdout="test")


@pytest.mark.parametrize("name,body", [
    ("r.csv.gz", "text,label\ngood,1\nbad,0\n"),
    ("r.tsv.gz", "text\tlabel\ngood\t1\nbad\t0\n"),
    ("r.jsonl.gz", '{"text": "good", "label": 1}\n{"text": "bad", "label": 0}\n'),
    ("r.txt.gz", "__label__1 good\n__label__0 bad\n"),
])
def test_gzip_text_formats(tmp_path, name, body):
    data = read_labeled(write_gz(tmp_path / name, body))
    assert data.texts == ("good", "bad") and data.labels.tolist() == [1, 0]


def test_gzip_found_by_its_bytes(tmp_path):
    data = read_labeled(write_gz(tmp_path / "r.csv", "text,label\ngood,1\nbad,0\n"))
    assert data.texts == ("good", "bad")


def test_zip_of_one_csv(tmp_path):
    path = tmp_path / "set.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data/set.csv", "cat,label,review\nbook,1,\ufeffnice\nbook,0,dull\n")
        archive.writestr("__MACOSX/data/._set.csv", "junk")
    data = read_labeled(path)
    assert data.texts == ("nice", "dull") and data.labels.tolist() == [1, 0]
    assert "set.csv" in data.source


def test_zip_of_several_files_or_a_workbook(tmp_path):
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", "text,label\n")
        archive.writestr("b.csv", "text,label\n")
    assert "a.csv, b.csv" in fails(LabeledDataError, "exactly one data file", path)
    book = tmp_path / "sheet.csv"  # an .xlsx saved under a .csv name
    with zipfile.ZipFile(book, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("[Content_Types].xml", "<Types/>")
    fails(LabeledDataError, "Excel workbook", book)


def test_data_format_override_and_aliases(tmp_path):
    path = write(tmp_path / "export.dat", "text\tlabel\ngood\t1\nbad\t0\n")
    fails(LabeledDataError, "cannot tell the format.*data_format", path)
    assert read_labeled(path, data_format="TSV").texts == ("good", "bad")
    lines = write(tmp_path / "lines.data", "__label__a x\n__label__b y\n")
    assert read_labeled(lines, data_format="txt").label_names == ("a", "b")
    fails(LabeledDataError, "unknown data format 'xml'", path, data_format="xml")


def test_columns_by_index_without_a_header(tmp_path):
    path = write(tmp_path / "raw.csv", "1,first text\n0,second text\n")
    data = read_labeled(path, text_column=1, label_column=0)
    assert data.texts == ("first text", "second text") and data.labels.tolist() == [1, 0]
    assert (data.text_column, data.label_column) == (1, 0)
    headed = write(tmp_path / "headed.csv", "label,text\n1,first\n0,second\n")
    assert read_labeled(headed, text_column=1, label_column=0, has_header=True).texts == ("first", "second")
    assert read_labeled(headed, text_column="TEXT", label_column=0).texts == ("first", "second")
    fails(LabeledDataError, "without a header the label column must be given", path, text_column=1)
    fails(LabeledDataError, "out of range: the first row has 2 columns", path, text_column=5, label_column=0)
    fails(LabeledDataError, "not names", path, text_column="text", has_header=False)


def test_column_spec_and_format_of():
    assert column_spec("0") == 0 and column_spec(" 12 ") == 12 and column_spec("review") == "review"
    assert column_spec("٣") == "٣"  # an Arabic-Indic digit is a name, not an index
    assert format_of("a/reviews.csv.gz") == "csv" and format_of("x.TSV") == "tsv" and format_of("x.zip") is None


def test_label_order_given_numeric_or_sorted(tmp_path):
    path = write(tmp_path / "r.csv", "text,label\na,__label__pos\nb,neg\nc, pos \nd,neutral\n")
    assert read_labeled(path).label_names == ("neg", "neutral", "pos")  # sorted, prefix and spaces dropped
    given = read_labeled(path, labels=["pos", "neutral", "__label__neg"])
    assert given.label_names == ("pos", "neutral", "neg") and given.labels.tolist() == [0, 2, 0, 1]
    numeric = write(tmp_path / "n.csv", "text,label\na,10\nb,-1\nc,2\n")
    assert read_labeled(numeric).label_names == ("-1", "2", "10")
    assert read_labeled(numeric, labels=[10, 2, -1]).label_names == ("10", "2", "-1")


def test_labels_argument_is_checked(tmp_path):
    path = write(tmp_path / "r.csv", "text,label\na,1\nb,0\n")
    for labels, match in ((["1"], "names 1 classes"), (["1", "__label__1"], "twice"), ("01", "the string"),
                          ([str(i) for i in range(MAX_CLASSES + 1)], "needs 2 to 50"), ([True, False], "holds True")):
        with pytest.raises(LabelSetError, match=match):
            read_labeled(path, labels=labels)


def test_text_kept_as_written(tmp_path):
    path = write(tmp_path / "r.tsv", "text\tlabel\n  padded  \t1\nx\t0\n")
    assert read_labeled(path).texts[0] == "  padded  "


# -- the result ---------------------------------------------------------------------------------------------
def test_result_take_split_and_summary(tmp_path):
    lines = "".join(f"__label__{'ab'[i % 2]} text {i}\n" for i in range(40))
    data = read_labeled(write(tmp_path / "r.txt", lines))
    with pytest.raises(ValueError):
        data.labels[0] = 1  # the result is frozen, its array too
    part = data.take([3, 1])
    assert part.texts == ("text 3", "text 1") and part.labels.tolist() == [1, 1]
    assert part.label_names == data.label_names and part.source == data.source
    rest, holdout = data.split(0.25, seed=7)
    assert len(rest) == 30 and len(holdout) == 10
    assert holdout.class_counts() == {"a": 5, "b": 5}
    assert sorted(rest.texts + holdout.texts) == sorted(data.texts)
    summary = json.loads(json.dumps(data.summary()))
    assert summary["rows"] == 40 and summary["class_counts"] == {"a": 20, "b": 20}
    assert summary["skipped_rows"] == 0 and summary["skipped_by_reason"] == {}


def test_stratified_split_is_seeded_and_stratified():
    labels = np.array([0] * 50 + [1] * 30 + [2] * 20)
    train, holdout = stratified_split(labels, 0.2, seed=3)
    assert np.bincount(labels[holdout]).tolist() == [10, 6, 4]
    assert len(np.intersect1d(train, holdout)) == 0 and len(train) + len(holdout) == 100
    assert np.all(np.diff(train) > 0) and np.all(np.diff(holdout) > 0)  # file order
    again = stratified_split(labels, 0.2, seed=3)
    assert np.array_equal(again[1], holdout)
    assert not np.array_equal(stratified_split(labels, 0.2, seed=4)[1], holdout)
    with pytest.raises(SplitError, match="between 0 and 1"):
        stratified_split(labels, 1.0, seed=0)


def test_a_class_too_small_to_split(tmp_path):
    one = np.array([0] * 10 + [1])
    with pytest.raises(SplitError, match=r"class 'rare' has 1 row: .* at least"):
        stratified_split(one, 0.2, seed=0, label_names=("common", "rare"))
    two = np.array([0] * 10 + [1] * 2)  # 2 rows: a 0.1 holdout rounds to none of them
    with pytest.raises(SplitError, match=r"class 1 has 2 rows: .*none on the holdout side; it needs at least 5"):
        stratified_split(two, 0.1, seed=0)
    data = read_labeled(write(tmp_path / "r.csv", "text,label\n" + "a,x\n" * 5 + "b,y\n"))
    with pytest.raises(SplitError, match=r"r\.csv: class 'y' has 1 row"):
        data.split(0.2, seed=0)


# -- bad data -----------------------------------------------------------------------------------------------
def test_missing_column_lists_the_columns(tmp_path):
    path = write(tmp_path / "r.csv", "id,body_text,stars\n1,good,5\n")
    message = fails(LabeledDataError, "no text column", path)
    assert "'id', 'body_text', 'stars'" in message and "--text-column" in message
    message = fails(LabeledDataError, "no column 'review' for the text", path, text_column="review")
    assert "'id', 'body_text', 'stars'" in message
    assert "--label-column" in fails(LabeledDataError, "no label column", path, text_column="body_text")
    semicolons = write(tmp_path / "excel.csv", "text;label\ngood;1\n")
    fails(LabeledDataError, "separated by semicolons", semicolons)
    fails(LabeledDataError, "no text column", path, skip_bad_rows=True)  # a file's problem: never skipped


def test_layout_mistakes(tmp_path):
    fails(LabeledDataError, "old Mac line ends", write(tmp_path / "mac.csv", "text,label\rgood,1\rbad,0\r"))
    twice = write(tmp_path / "twice.csv", "text,text,label\na,b,1\nc,d,0\n")
    fails(LabeledDataError, r"the text column 'text' appears 2 times \(columns 0, 1\)", twice)
    assert read_labeled(twice, text_column=1, label_column=2, has_header=True).texts == ("b", "d")
    cased = write(tmp_path / "cased.csv", "Text,text,label\na,b,1\nc,d,0\n")
    assert read_labeled(cased).texts == ("b", "d")  # an exact name wins over one in another case
    fails(LabeledDataError, "the text and the label are the same column",
          write(tmp_path / "same.csv", "text,label\na,1\n"), text_column="text", label_column="TEXT")
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    fails(LabeledDataError, "not a regular file", fifo)  # and no read that waits for a writer forever


@pytest.mark.parametrize("text,problem", [("", "the text is empty"), ("   ", "the text is only whitespace")])
def test_empty_text(tmp_path, text, problem):
    path = write(tmp_path / "r.csv", f"text,label\ngood,1\n{text},0\nbad,0\n")
    with pytest.raises(BadRowError, match=rf"r\.csv: line 3: {problem}.*skip-bad-rows") as info:
        read_labeled(path)
    assert info.value.bad_row.location == "line 3" and info.value.bad_row.reason == "empty_text"
    data = read_labeled(path, skip_bad_rows=True)
    assert data.texts == ("good", "bad") and data.skipped_counts == {"empty_text": 1}
    assert data.skipped_examples[0].to_dict() == {"location": "line 3", "reason": "empty_text", "problem": problem}


def test_line_numbers_count_lines_inside_quotes(tmp_path):
    path = write(tmp_path / "r.csv", 'text,label\n"one\ntwo\nthree",1\n"",0\n')
    fails(BadRowError, "line 5: the text is empty", path)


def test_missing_label(tmp_path):
    fails(BadRowError, "line 3: the label is empty", write(tmp_path / "r.csv", "text,label\na,1\nb, \nc,0\n"))
    fails(BadRowError, "line 2: no 'label' field", write(tmp_path / "r.jsonl", '{"text": "a", "label": 1}\n'
                                                                              '{"text": "b"}\n'))
    fails(BadRowError, "line 2: no label", write(tmp_path / "n.jsonl", '{"text": "a", "label": 1}\n'
                                                                       '{"text": "b", "label": null}\n'))
    fails(BadRowError, "line 1: the label is empty", write(tmp_path / "r.txt", "__label__ text\n"))
    data = read_labeled(tmp_path / "r.csv", skip_bad_rows=True)
    assert data.texts == ("a", "c") and data.skipped_counts == {"missing_label": 1}


def test_a_single_class(tmp_path):
    path = write(tmp_path / "r.csv", "text,label\na,pos\nb,pos\nc,\n")
    fails(LabelSetError, r"every row \(2\) has the label 'pos': training needs at least 2", path, skip_bad_rows=True)


def test_more_than_fifty_labels(tmp_path):
    path = write(tmp_path / "r.csv", "label,review\n" + "".join(f"{i % 2},review number {i}\n" for i in range(80)))
    message = fails(LabelSetError, "more than 50 distinct labels", path, text_column="label", label_column="review")
    assert "line 52" in message and "text column was taken as the label" in message


def test_labels_the_data_does_not_match(tmp_path):
    path = write(tmp_path / "r.csv", "text,label\na,pos\nb,neg\nc,neutral\nd,neutral\n")
    message = fails(LabelSetError, "do not match labels=", path, labels=["neg", "pos", "mixed"])
    assert "unexpected 'neutral' (2 rows, first on line 4)" in message and "missing 'mixed'" in message
    partial = read_labeled(path, labels=["neg", "pos", "neutral", "mixed"], require_all_labels=False)
    assert partial.label_names == ("neg", "pos", "neutral", "mixed") and partial.class_counts()["mixed"] == 0
    fails(LabelSetError, "unexpected 'neutral'", path, labels=["neg", "pos"], require_all_labels=False)


def test_bytes_that_do_not_decode(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes("text,label\ngood,1\ncaf\xe9 cr\xe8me,0\n".encode("latin-1"))
    message = fails(BadRowError, "line 3: bytes that are not valid utf-8", path)
    assert "--encoding" in message and "e9" in message
    assert read_labeled(path, encoding="latin-1").texts[1] == "café crème"
    data = read_labeled(path, skip_bad_rows=True, labels=["1", "0"], require_all_labels=False)
    assert data.texts == ("good",) and data.skipped_counts == {"undecodable": 1}
    fails(LabeledDataError, "unknown encoding 'klingon'", path, encoding="klingon")


def test_undecodable_in_line_formats_and_folders(tmp_path):
    lines = tmp_path / "r.txt"
    lines.write_bytes(b"__label__a fine\n__label__b \xff\xfe bad\n__label__b ok\n")
    fails(BadRowError, "line 2: bytes that are not valid utf-8", lines)
    assert read_labeled(lines, skip_bad_rows=True).texts == ("fine", "ok")
    for label in ("a", "b"):
        (tmp_path / "f" / label).mkdir(parents=True)
        write(tmp_path / "f" / label / "1.txt", "fine")
    (tmp_path / "f" / "b" / "2.txt").write_bytes(b"\xff bad")
    fails(BadRowError, "b/2.txt: bytes that are not valid utf-8", tmp_path / "f")


def test_utf16_files(tmp_path):
    path = write(tmp_path / "r.tsv", "\ufefftext\tlabel\ngood\t1\nbad\t0\n", encoding="utf-16-le")
    fails(LabeledDataError, "UTF-16 byte-order mark: pass --encoding utf-16", path)
    assert read_labeled(path, encoding="utf-16").texts == ("good", "bad")


@pytest.mark.parametrize("name,body,message", [
    ("r.csv", "text,label\na,1\nb,0,extra\nc,0\n", "line 3: 3 fields where the header has 2"),
    ("r.tsv", "text\tlabel\na\t1\nb\twith a\ttab\t0\nc\t0\n", "line 3: 4 fields where the header has 2.*no quoting"),
])
def test_ragged_rows(tmp_path, name, body, message):
    path = write(tmp_path / name, body)
    fails(BadRowError, message, path)
    data = read_labeled(path, skip_bad_rows=True)
    assert data.texts == ("a", "c") and data.skipped_counts == {"ragged_row": 1}


def test_malformed_csv_stops_at_its_line(tmp_path):
    fails(LabeledDataError, r"lines 3-4: malformed CSV .*unbalanced quote",
          write(tmp_path / "open.csv", 'text,label\na,1\n"never closed,0\nb,1\n'))
    fails(LabeledDataError, r"line 2: malformed CSV .*written twice",
          write(tmp_path / "stray.csv", 'text,label\n"a"b,1\n'), skip_bad_rows=True)


def test_text_over_the_cap(tmp_path):
    path = write(tmp_path / "r.csv", f"text,label\nshort,1\n{'x' * 101},0\nok,0\n")
    fails(BadRowError, "line 3: the text is 101 characters, over the cap of 100", path, max_text_chars=100)
    assert read_labeled(path, max_text_chars=100, skip_bad_rows=True).skipped_counts == {"too_long": 1}
    (tmp_path / "f" / "a").mkdir(parents=True)
    (tmp_path / "f" / "b").mkdir()
    write(tmp_path / "f" / "a" / "1.txt", "fine")
    write(tmp_path / "f" / "b" / "1.txt", "y" * 500)
    fails(BadRowError, "b/1.txt: the file is 500 bytes", tmp_path / "f", max_text_chars=100)


def test_a_line_over_the_line_cap_is_not_held_whole(tmp_path, monkeypatch):
    from sentilite.train import readers

    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 64)
    path = write(tmp_path / "r.txt", "__label__a fine\n__label__b " + "z" * 300 + "\n__label__b ok\n")
    fails(BadRowError, "line 2: the line is over 64 bytes", path)
    assert read_labeled(path, skip_bad_rows=True).texts == ("fine", "ok")
    csv_path = write(tmp_path / "r.csv", "text,label\n" + "z" * 300 + ",1\n")
    fails(LabeledDataError, "line 2: the line is over 64 bytes", csv_path, skip_bad_rows=True)


def test_whole_file_cap_stops_reading(tmp_path):
    body = "text,label\n" + "a fine text,1\nanother,0\n" * 2000
    fails(LabeledDataError, "over 10,000 bytes of data", write(tmp_path / "r.csv", body), max_input_bytes=10_000)
    bomb = tmp_path / "bomb.csv.gz"  # 20 MB of one unfinished line, 20 KB compressed
    bomb.write_bytes(gzip.compress(b"text,label\n" + b"x" * 20_000_000, compresslevel=1))
    started = time.perf_counter()
    fails(LabeledDataError, "over 1,000,000 bytes", bomb, max_input_bytes=1_000_000)
    assert time.perf_counter() - started < 5
    parquet = write_parquet(tmp_path / "r.parquet", {"text": ["some text"] * 2000, "label": [0, 1] * 1000})
    fails(LabeledDataError, "over 1,000 .*max_input_bytes", parquet, max_input_bytes=1_000)
    (tmp_path / "f" / "a").mkdir(parents=True)
    write(tmp_path / "f" / "a" / "1.txt", "x" * 2000)
    fails(LabeledDataError, "over 1,000 .*max_input_bytes", tmp_path / "f", max_input_bytes=1_000)


@pytest.mark.parametrize("name,body,message", [
    ("r.csv", "", "is empty"), ("r.tsv", "\n\n", "is empty"), ("r.jsonl", "", "is empty"), ("r.txt", "", "is empty"),
    ("h.csv", "text,label\n", "has a header but no rows"), ("h.tsv", "text\tlabel\n", "has a header but no rows"),
])
def test_empty_files(tmp_path, name, body, message):
    fails(LabeledDataError, message, write(tmp_path / name, body), skip_bad_rows=True)


def test_every_row_skipped(tmp_path):
    path = write(tmp_path / "r.csv", "text,label\n,1\n,0\n")
    fails(LabeledDataError, r"no usable rows: all 2 were skipped \(empty_text 2\)", path, skip_bad_rows=True)


def test_parquet_columns_of_the_wrong_type(tmp_path):
    numbers = write_parquet(tmp_path / "n.parquet", {"text": [1, 2], "label": ["a", "b"]})
    fails(LabeledDataError, "the text column 'text' holds int64, not strings", numbers)
    lists = write_parquet(tmp_path / "l.parquet", {"text": ["a", "b"], "label": [[1], [0]]})
    fails(LabeledDataError, "the label column 'label' holds list<", lists)
    gaps = write_parquet(tmp_path / "g.parquet", {"text": ["a", "b", "c"], "label": [1.0, float("nan"), 0.0]})
    fails(BadRowError, "row 2: no label", gaps)
    assert read_labeled(gaps, skip_bad_rows=True).label_names == ("0", "1")  # pandas' integers with a gap
    floats = write_parquet(tmp_path / "f.parquet", {"text": ["a", "b", "c"], "label": [1.0, 0.5, 0.0]})
    fails(BadRowError, "row 2: the label 0.5 is a number that is not a whole number", floats)
    nulls = write_parquet(tmp_path / "x.parquet", {"text": ["a", None, "c"], "label": ["p", "q", None]})
    fails(BadRowError, "row 2: no text", nulls)
    assert read_labeled(nulls, skip_bad_rows=True, labels=["p", "q"], require_all_labels=False).skipped_counts == {
        "missing_label": 1, "missing_text": 1}
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1" + b"\0" * 100)
    fails(LabeledDataError, "not a readable Parquet file", broken)


def test_parquet_without_pyarrow(tmp_path, monkeypatch):
    path = write_parquet(tmp_path / "r.parquet", {"text": ["a", "b"], "label": [0, 1]})
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(MissingExtraError, match=r"pyarrow.*pip install '\.\[score\]' in the sentilite repository"):
        read_labeled(path)


def test_a_parquet_file_under_another_name(tmp_path):
    path = write_parquet(tmp_path / "r.bin", {"text": ["a", "b"], "label": [0, 1]})
    assert read_labeled(path).texts == ("a", "b")
    fails(LabeledDataError, "is a Parquet file, not csv", path, data_format="csv")


def test_folder_without_label_subfolders(tmp_path):
    write(tmp_path / "loose.txt", "a text")
    (tmp_path / "empty").mkdir()
    message = fails(LabeledDataError, "no label sub-folders", tmp_path)
    assert "one sub-folder per class" in message and "'empty'" in message
    fails(LabelSetError, "no sub-folder with .txt files for 'neg', 'pos'", tmp_path, labels=["neg", "pos"])
    fails(LabeledDataError, "is a folder", tmp_path, data_format="csv")


def test_malformed_json_lines(tmp_path):
    path = write(tmp_path / "r.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": 0\n'
                                       '[1, 2]\n' + "[" * 100_000 + "\n" + '{"text": "c", "label": 0}\n')
    fails(BadRowError, "line 2: not valid JSON", path)
    data = read_labeled(path, skip_bad_rows=True)
    assert data.texts == ("a", "c") and data.skipped_counts == {"malformed_json": 3}
    assert "jq" in data.skipped_examples[1].problem
    typed = write(tmp_path / "t.jsonl", '{"text": "a", "label": 1}\n{"text": 5, "label": 0}\n')
    fails(BadRowError, "line 2: the text is 5, not a string", typed)
    fails(LabeledDataError, "give the text field by name", typed, text_column=0)


def test_fasttext_line_without_a_label(tmp_path):
    path = write(tmp_path / "r.txt", "__label__a fine\nno label here\n__label__b ok\n__label__a __label__b two\n")
    fails(BadRowError, "line 2: does not start with __label__", path)
    data = read_labeled(path, skip_bad_rows=True)
    assert data.texts == ("fine", "ok") and data.skipped_counts == {"no_label_prefix": 1, "several_labels": 1}
    fails(LabeledDataError, "no columns", path, text_column="text")


def test_corrupt_gzip_and_zip(tmp_path):
    truncated = tmp_path / "r.csv.gz"
    truncated.write_bytes(gzip.compress(("text,label\n" + "a,1\nb,0\n" * 5000).encode())[:-100])
    fails(LabeledDataError, "corrupt, truncated or unreadable near line", truncated)
    fake = write(tmp_path / "r.zip", "not a zip at all")
    fails(LabeledDataError, "not a readable zip file", fake)
    fails(LabeledDataError, "no such file", tmp_path / "missing.csv")


def test_reading_needs_neither_tensorflow_nor_pyarrow():
    code = ("import sys, sentilite.train.readers; "
            "assert not {m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras', 'pyarrow'}")
    subprocess.run([sys.executable, "-c", code], check=True)


# -- the shared real sets, read in place --------------------------------------------------------------------
def shared(relative: str) -> Path:
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"{path} is not here (the shared data sets sit in ../shared/data/ beside the repository)")
    return path


def timed(path, **kwargs):
    started = time.perf_counter()
    data = read_labeled(path, **kwargs)
    return data, time.perf_counter() - started


def test_sst2():
    data, seconds = timed(shared("sst2/train_full.tsv"))
    assert len(data) == 67_349 and data.class_counts() == {"0": 29_780, "1": 37_569}
    assert seconds < 5
    assert len(read_labeled(shared("sst2/dev.tsv"))) == 872
    assert read_labeled(shared("sst2/test-labeled.tsv")).class_counts() == {"0": 917, "1": 904}


def test_sst5():
    data = read_labeled(shared("sst5/sst_train.txt"))
    assert data.label_names == ("1", "2", "3", "4", "5")
    assert len(data) == 8_544 and list(data.class_counts().values()) == [1_092, 2_218, 1_624, 2_322, 1_288]
    assert len(read_labeled(shared("sst5/sst_dev.txt"))) == 1_101
    assert len(read_labeled(shared("sst5/sst_test.txt"))) == 2_210


def test_airline():
    data, seconds = timed(shared("airline/Tweets.csv"))
    assert (data.text_column, data.label_column) == ("text", "airline_sentiment")
    assert len(data) == 14_640 and data.class_counts() == {"negative": 9_178, "neutral": 3_099, "positive": 2_363}
    assert any("\n" in text for text in data.texts)  # newlines inside quoted tweets
    assert seconds < 5


def test_zh_shopping():
    path = shared("zh-shopping/online_shopping_10_cats.zip")
    with pytest.raises(BadRowError, match=r"online_shopping_10_cats\.csv\): line 36427: the text is empty"):
        read_labeled(path)
    data = read_labeled(path, skip_bad_rows=True)
    assert (data.text_column, data.label_column) == ("review", "label")
    assert len(data) == 62_773 and data.class_counts() == {"0": 31_046, "1": 31_727}  # the empty review is a 1
    assert data.skipped_counts == {"empty_text": 1} and data.skipped_examples[0].location == "line 36427"
    assert data.texts[0].startswith("做父母") and not any(text.startswith("\ufeff") for text in data.texts)
