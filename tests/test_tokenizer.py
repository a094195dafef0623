"""The one tokenizer: exact ids for hand-written texts, and strict loading."""
import json
import unicodedata

import numpy as np
import pytest

from sentilite.runtime import Tokenizer, TokenizerConfig, TokenizerFileError, pad_ids
from sentilite.shared.errors import ConfigError
from sentilite.train.vocab import build_tokenizer

VOCAB = ["<pad>", "<oov>", "the", "movie", "was", "great", "don't", "café", "i", "loved", "it", "не", "плохо"]


def make(**overrides) -> Tokenizer:
    cfg = dict(vocab_size=len(VOCAB), maxlen=6)
    cfg.update(overrides)
    return Tokenizer(TokenizerConfig(**cfg), VOCAB)


def ids(text, **overrides):
    return make(**overrides).encode_batch([text])[0].tolist()


def test_empty_and_whitespace_texts_are_all_padding():
    assert ids("") == [0, 0, 0, 0, 0, 0]
    assert ids("   \n\t ") == [0, 0, 0, 0, 0, 0]


def test_capitals_are_lowered():
    assert ids("The MOVIE was GREAT") == [0, 0, 2, 3, 4, 5]


def test_apostrophes_stay_inside_words_and_unknown_words_are_oov():
    assert ids("I don't like it") == [0, 0, 8, 6, 1, 10]
    # typographic apostrophe is the same word; quotes around a word are dropped
    assert ids("I don\u2019t") == [0, 0, 0, 0, 8, 6]
    assert ids("'great'") == [0, 0, 0, 0, 0, 5]


def test_html_breaks_separate_words():
    assert ids("great<br />movie<br/>the<BR>was") == [0, 0, 5, 3, 2, 4]


def test_longer_than_maxlen_truncates_at_the_front_by_default():
    text = "i loved it the movie was great"
    assert ids(text) == [9, 10, 2, 3, 4, 5]
    assert ids(text, truncating="post") == [8, 9, 10, 2, 3, 4]


def test_padding_side_is_a_setting():
    assert ids("the movie", padding="post") == [2, 3, 0, 0, 0, 0]


def test_non_ascii_words_keep_their_script():
    assert ids("Не плохо!") == [0, 0, 0, 0, 11, 12]


def test_nfc_and_nfd_give_the_same_ids():
    nfc = unicodedata.normalize("NFC", "Café")
    nfd = unicodedata.normalize("NFD", "Café")
    assert nfc != nfd
    assert ids(nfc) == ids(nfd) == [0, 0, 0, 0, 0, 7]


def test_compatibility_forms_control_characters_and_emoji():
    assert ids("\uff27\uff32\uff25\uff21\uff34") == [0, 0, 0, 0, 0, 5]  # fullwidth GREAT
    assert ids("great\x00movie \U0001F600 the_movie") == [0, 0, 5, 3, 2, 3]


def test_bytes_are_decoded_and_non_text_is_a_type_error():
    assert ids("great movie".encode()) == [0, 0, 0, 0, 5, 3]
    assert ids(b"great \xff\xfe movie") == [0, 0, 0, 0, 5, 3]
    with pytest.raises(TypeError, match="index 1"):
        make().encode_batch(["ok", 42])
    with pytest.raises(TypeError, match="single text"):
        make().encode_batch("not a list")


def test_huge_text_is_capped_on_the_truncating_side():
    tok = make(max_chars=1000)
    text = "the " * 100_000 + "movie was great"
    assert tok.encode_batch([text])[0].tolist() == [2, 2, 2, 3, 4, 5]


def test_pad_ids_matches_keras_pad_sequences_semantics():
    rows = [[1, 2, 3], [4, 5, 6, 7, 8], []]
    assert pad_ids(rows, 4).tolist() == [[0, 1, 2, 3], [5, 6, 7, 8], [0, 0, 0, 0]]
    assert pad_ids(rows, 4, padding="post", truncating="post").tolist() == [[1, 2, 3, 0], [4, 5, 6, 7], [0, 0, 0, 0]]
    assert pad_ids(rows, 4).dtype == np.int32


def test_vocabulary_is_by_frequency_then_alphabetical_and_reproducible():
    texts = ["b a c", "a b", "c d", "zeta alpha"]
    tok = build_tokenizer(texts, TokenizerConfig(vocab_size=6, maxlen=4))
    # a, b, c appear twice (alphabetical among ties), then alpha before d and zeta
    assert tok.vocabulary == ["<pad>", "<oov>", "a", "b", "c", "alpha"]
    again = build_tokenizer(list(reversed(texts)), TokenizerConfig(vocab_size=6, maxlen=4))
    assert again.to_json() == tok.to_json()


def test_small_corpus_shrinks_vocab_size():
    tok = build_tokenizer(["one two"], TokenizerConfig(vocab_size=100, maxlen=4))
    assert tok.config.vocab_size == 4 and len(tok) == 4


def test_save_and_load_round_trip(tmp_path):
    tok = make(padding="post")
    path = tok.save(tmp_path / "tokenizer.json")
    loaded = Tokenizer.from_file(path)
    assert loaded.vocabulary == VOCAB and loaded.config == tok.config
    assert loaded.encode_batch(["the movie"]).tolist() == [[2, 3, 0, 0, 0, 0]]


def _write(tmp_path, mutate):
    data = make().to_dict()
    mutate(data)
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.update(format_version=99), "unknown tokenizer format_version 99"),
        (lambda d: d.pop("format_version"), "format_version None"),
        (lambda d: d["vocabulary"].update({"great": 2}), "duplicate id 2"),
        (lambda d: d["vocabulary"].pop("movie"), "missing id"),
        (lambda d: d["vocabulary"].pop("<oov>"), "missing id"),
        (lambda d: d.update(vocabulary={"<pad>": 0, "x": 1, "the": 2}), "must map '<pad>' to 0 and '<oov>' to 1"),
        (lambda d: d["vocabulary"].update({"the": "2"}), "not an integer"),
        (lambda d: d["config"].update(maxlen=0), "maxlen must be an integer >= 1"),
        (lambda d: d["config"].update(padding="middle"), "padding must be one of"),
        (lambda d: d["config"].update(surprise=1), "unknown TokenizerConfig setting"),
        (lambda d: d["config"].update(vocab_size=5), "vocab_size is 5 but the vocabulary holds 13"),
    ],
)
def test_malformed_files_are_refused_with_the_path_and_reason(tmp_path, mutate, message):
    path = _write(tmp_path, mutate)
    with pytest.raises(TokenizerFileError, match=message) as info:
        Tokenizer.from_file(path)
    assert str(path) in str(info.value)


def test_not_json_and_missing_file(tmp_path):
    bad = tmp_path / "tokenizer.json"
    bad.write_bytes(b"\x00\x01 not json")
    with pytest.raises(TokenizerFileError, match="not valid JSON"):
        Tokenizer.from_file(bad)
    with pytest.raises(TokenizerFileError, match="not found"):
        Tokenizer.from_file(tmp_path / "absent.json")


def test_config_validation():
    with pytest.raises(ConfigError, match="truncating"):
        TokenizerConfig(truncating="both")


@pytest.mark.parametrize("text, words", [
    ("rock'n'roll isn't 'quoted' here", ["rock'n'roll", "isn't", "quoted", "here"]),
    ("it''s a''b 'x' ' ''", ["it", "s", "a", "b", "x"]),
    ("snake_case 42nd__word", ["snake", "case", "42nd", "word"]),
    ("end'. start' 'mid'dle", ["end", "start", "mid'dle"]),
    ("café's naïve it’s", ["café's", "naïve", "it's"]),  # not ASCII: the regex path
])
def test_ascii_fast_path_gives_the_regex_words(text, words):
    from sentilite.runtime.tokenizer import WORD, find_words, normalize_text

    normalized = normalize_text(text, TokenizerConfig())
    assert find_words(normalized) == words
    assert WORD.findall(normalized) == words


def test_ascii_fast_path_matches_the_regex_on_random_texts():
    import random

    from sentilite.runtime.tokenizer import WORD, find_words, normalize_text

    rng = random.Random(0)
    alphabet = "ab1'_ -.,`\u2019\t<>/é"
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        normalized = normalize_text(text, TokenizerConfig())
        assert find_words(normalized) == WORD.findall(normalized), repr(text)


# -- character words: "cjk" -------------------------------------------------------------------------------------
CJK = TokenizerConfig(character_words="cjk")
MIXED_VOCAB = ["<pad>", "<oov>", "电", "影", "好", "看", "the", "movie", "was", "great", "タ", "ー", "東", "京", "々",
               "don't", "電影", "東京タワー", "iphone", "x"]


def cjk_ids(text, rule):
    tok = Tokenizer(TokenizerConfig(vocab_size=len(MIXED_VOCAB), maxlen=12, character_words=rule), MIXED_VOCAB)
    return tok.encode(text)


def test_each_han_hiragana_katakana_character_is_a_word_and_punctuation_still_separates():
    from sentilite.runtime.tokenizer import split_words

    text = "这部电影太好看了，我很喜欢。"
    assert split_words(text, CJK) == list("这部电影太好看了我很喜欢")
    assert split_words(text, TokenizerConfig()) == ["这部电影太好看了", "我很喜欢"]
    # Hiragana, Katakana (the prolonged sound mark too), an iteration mark, the middle dot and brackets separate;
    # halfwidth Katakana is fullwidth after NFKC; Latin letters and digits between them stay whole words
    assert split_words("「東京タワー」は高い々！ジョン・スミスｶﾀｶﾅ iPhone15を買った", CJK) == [
        "東", "京", "タ", "ワ", "ー", "は", "高", "い", "々", "ジ", "ョ", "ン", "ス", "ミ", "ス", "カ", "タ", "カ", "ナ",
        "iphone15", "を", "買", "っ", "た"]
    # an apostrophe between a character word and a letter separates them; Hangul and Thai are read as before
    assert split_words("電'x don't x'電 한국어 영화", CJK) == ["電", "x", "don't", "x", "電", "한국어", "영화"]
    assert split_words("한국어 영화 สวัสดี", CJK) == split_words("한국어 영화 สวัสดี", TokenizerConfig())


@pytest.mark.parametrize("text, none, cjk", [
    ("这部电影太好看了", [1], [1, 1, 2, 3, 1, 4, 5, 1]),
    ("The movie was great, 電影! 好看", [6, 7, 8, 9, 16, 1], [6, 7, 8, 9, 1, 3, 4, 5]),
    ("東京タワー don't 々", [17, 15, 14], [12, 13, 10, 1, 11, 15, 14]),
    ("iPhone X: 好", [18, 19, 4], [18, 19, 4]),
    ("GREAT movie", [9, 7], [9, 7]),
])
def test_exact_ids_of_mixed_texts_under_both_rules(text, none, cjk):
    assert cjk_ids(text, "none") == none
    assert cjk_ids(text, "cjk") == cjk


def test_cjk_ranges_are_the_named_letters_of_han_hiragana_and_katakana():
    """CJK_CHARACTER_RANGES are the word characters named as the rule says, derived again from unicodedata."""
    import re

    from sentilite.runtime.tokenizer import CJK_CHARACTER_RANGES

    prefixes = ("CJK UNIFIED IDEOGRAPH", "CJK COMPATIBILITY IDEOGRAPH", "HIRAGANA", "KATAKANA", "HALFWIDTH KATAKANA",
                "HENTAIGANA", "VERTICAL KANA REPEAT")
    marks = {"IDEOGRAPHIC ITERATION MARK", "VERTICAL IDEOGRAPHIC ITERATION MARK", "IDEOGRAPHIC CLOSING MARK",
             "IDEOGRAPHIC NUMBER ZERO", "OLD CHINESE ITERATION MARK"}
    word = re.compile(r"[^\W_]")
    in_ranges = {code for start, end in CJK_CHARACTER_RANGES for code in range(start, end + 1)}
    named = set()
    for code in range(0x110000):
        name = unicodedata.name(chr(code), "")
        if (name.startswith(prefixes) or name in marks) and word.match(chr(code)):
            named.add(code)
    if unicodedata.unidata_version == "14.0.0":  # the Unicode the ranges were fixed in (Python 3.11)
        assert in_ranges == named
    else:  # a later Unicode may add ideographs; the ranges, part of the saved rule, stay as they are
        assert in_ranges <= named
    assert {0x4E00, 0x9FFF, 0x3400, 0x20000, 0xF900, 0x3042, 0x30A2, 0x30FC, 0xFF71, 0x3005} <= in_ranges
    assert not {0x3001, 0x3002, 0x30FB, 0xFF65, 0x300C, 0x309B, 0xAC00, 0x0E01, 0x41} & in_ranges


def test_cjk_rule_is_the_word_rule_with_spaces_around_each_character_word():
    """On random texts of CJK characters, letters, apostrophes and separators: CJK_WORD gives what WORD gives once
    every character word stands between spaces; on text without them it is WORD itself (the fast paths too)."""
    import random
    import re

    from sentilite.runtime.tokenizer import _CJK, CJK_WORD, WORD, find_words

    spaced = re.compile(f"[{_CJK}]")
    rng = random.Random(0)
    alphabet = "a1'_ -.,é\u4e00\u9fff\u3042\u30fc\u30fb\u3002\U00020000\U0002ebe1\u3005\uac00\u0e01"
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        assert find_words(text, "cjk") == CJK_WORD.findall(text) == WORD.findall(spaced.sub(r" \g<0> ", text)), text
        plain = spaced.sub("", text)
        assert find_words(plain, "cjk") == find_words(plain) == WORD.findall(plain), plain


def test_english_ids_are_the_same_under_both_rules(imdb):
    """300 IMDB reviews, 200 of them with non-ASCII characters (the regex path): the same vocabulary, the same ids."""
    non_ascii = [t for t in imdb.test.texts if not t.isascii()][:200]
    texts = non_ascii + [t for t in imdb.test.texts if t.isascii()][:100]
    none, cjk = TokenizerConfig(vocab_size=5000, maxlen=400), TokenizerConfig(vocab_size=5000, maxlen=400,
                                                                              character_words="cjk")
    by_none, by_cjk = build_tokenizer(texts, none), build_tokenizer(texts, cjk)
    assert by_none.vocabulary == by_cjk.vocabulary
    both = Tokenizer(cjk, by_none.vocabulary)
    assert np.array_equal(by_none.encode_batch(texts), both.encode_batch(texts))
    assert sum(len(by_none.encode(t)) for t in texts) > 50_000


def test_the_rule_is_written_only_when_set_and_unknown_rules_are_refused(tmp_path):
    from pathlib import Path

    bundled = Path(__file__).resolve().parents[1] / "runtime" / "models" / "imdb-gru" / "tokenizer.json"
    written = bundled.read_bytes()  # by 0.3, without the setting
    tok = Tokenizer.from_file(bundled)
    assert tok.config.character_words == "none" and tok.to_json().encode("utf-8") == written
    assert "character_words" not in TokenizerConfig().to_dict()
    assert TokenizerConfig.from_dict(CJK.to_dict()) == CJK and CJK.to_dict()["character_words"] == "cjk"
    path = Tokenizer(TokenizerConfig(vocab_size=len(MIXED_VOCAB), character_words="cjk"), MIXED_VOCAB).save(
        tmp_path / "tokenizer.json")
    assert json.loads(path.read_text(encoding="utf-8"))["config"]["character_words"] == "cjk"
    assert Tokenizer.from_file(path).encode("电影") == [2, 3]
    data = json.loads(path.read_text(encoding="utf-8"))
    data["config"]["character_words"] = "thai"
    path.write_text(json.dumps(data), encoding="utf-8")
    refusal = r"character_words must be one of \('none', 'cjk'\), got 'thai'"
    with pytest.raises(TokenizerFileError, match=refusal) as info:
        Tokenizer.from_file(path)
    assert str(path) in str(info.value)
