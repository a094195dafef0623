"""The JavaScript runtime (web/) against the Python one: the same ids, the same probabilities, in Node and Chromium.

Python writes the golden numbers (ids, rows, probabilities, the Unicode
answers of every code point) into a temporary folder; the Node tests
(web/test/*.test.mjs) and the headless Chromium checks (web/test/browser/)
run as subprocesses on them and report what they measured, which is judged
here. The tooling is Node >= 20, web/node_modules (`make web-install`) and
Debian's /usr/bin/chromium; without it these tests are skipped, unless
SENTILITE_WEB_REQUIRED=1 (CI), where that is a failure. Set
SENTILITE_WEB_FIGURES to a path to get the figures as JSON.
"""
import base64
import csv
import dataclasses
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import unicodedata
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, TEST_REVIEWS, imdb_source
from sentilite.runtime.model import cut_row, load
from sentilite.runtime.tokenizer import HTML_BREAK, WORD, Tokenizer, TokenizerConfig, find_words, split_words
from test_runtime import HOSTILE

WEB = ROOT / "web"
CHROMIUM = os.environ.get("SENTILITE_CHROMIUM", "/usr/bin/chromium")
REQUIRED = os.environ.get("SENTILITE_WEB_REQUIRED") == "1"
NODE_PACKAGES = ("onnxruntime-web", "@mediapipe/tasks-text", "puppeteer-core")
CELLS = ("rnn", "lstm", "gru")
ONNX_FILES = ("fp32", "fp16", "dynamic-int8", "int8")
EIGHT_BIT = ("dynamic-int8", "int8")
FIGURES: dict = {}


def _load_unicode_tables():
    spec = importlib.util.spec_from_file_location("unicode_tables", WEB / "tools" / "unicode_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


unicode_tables = _load_unicode_tables()


# -- tooling -----------------------------------------------------------------------------------------------------
def _missing_node() -> str | None:
    node = shutil.which("node")
    if node is None:
        return "node is not installed (Node >= 20; `make web-install` installs the rest)"
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 20:
        return f"node {version} is older than 20"
    for package in NODE_PACKAGES:
        if not (WEB / "node_modules" / package / "package.json").exists():
            return f"web/node_modules lacks {package}: run `make web-install`"
    return None


def _need(reason: str | None) -> None:
    if reason:
        (pytest.fail if REQUIRED else pytest.skip)(reason)


@pytest.fixture(scope="session")
def node_ready():
    _need(_missing_node())


@pytest.fixture(scope="session")
def chromium_ready(node_ready):
    _need(None if os.access(CHROMIUM, os.X_OK) else f"{CHROMIUM} is missing: run `make web-install` as root")


def run_node(args: list[str], fixtures: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "SENTILITE_WEB_FIXTURES": str(fixtures)}
    proc = subprocess.run(["node", *args], cwd=WEB, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"node {' '.join(args)} failed:\n{proc.stdout[-8000:]}\n{proc.stderr[-4000:]}"
    return proc


def node_results(fixtures: Path, name: str) -> dict:
    return json.loads((fixtures / "results" / f"{name}.json").read_text(encoding="utf-8"))


def figure(name: str, value) -> None:
    FIGURES[name] = value
    target = os.environ.get("SENTILITE_WEB_FIGURES")
    if target:
        Path(target).write_text(json.dumps(FIGURES, indent=1, default=float) + "\n", encoding="utf-8")


def as_js_string(text: str) -> str:
    """The text a JavaScript string holds for it: UTF-16, so two surrogate code points in a row are one character.

    A Python str can hold U+D83D U+DE00 as two code points; JavaScript cannot
    tell them from U+1F600. The golden ids are those of the text as it is
    joined here (lone surrogates stay lone).
    """
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def write_json(path: Path, value) -> Path:
    path.write_text(json.dumps(value, ensure_ascii=True), encoding="ascii")  # lone surrogates as \\udXXX escapes
    return path


# -- what Python makes of every code point -----------------------------------------------------------------------
def python_unicode_answers() -> dict:
    """For each of the 1,114,112 code points: Python's normalization and lower-casing where they change it, and the
    characters that let a capital sigma be final, that are words, that the "cjk" rule makes words alone, and that
    the HTML line break rule takes for a space or a "b" (web/test/unicode_check.js asks the JavaScript tokenizer the
    same)."""
    chars = [chr(code) for code in range(unicode_tables.LAST_CODE_POINT + 1)]
    out = {"unicode_version": unicodedata.unidata_version}
    for form in ("NFC", "NFD", "NFKC", "NFKD"):
        out[form] = [[ord(c), r] for c in chars if (r := unicodedata.normalize(form, c)) != c]
    out["lower"] = [[ord(c), r] for c in chars if (r := c.lower()) != c]
    probes = {
        "sigma_after_cased": lambda c: ("A" + c + "\u03a3").lower()[-1] == "\u03c2",
        "sigma_first": lambda c: (c + "\u03a3").lower()[-1] == "\u03c2",
        "sigma_before": lambda c: ("A\u03a3" + c + "A").lower()[1] == "\u03c2",
        "word": lambda c: bool(WORD.findall(c)),
        "character_word": lambda c: len(find_words("a" + c + "a", "cjk")) == 3,
        "html_space": lambda c: HTML_BREAK.search("<" + c + "br>") is not None,
        "html_b": lambda c: HTML_BREAK.search("<" + c + "r>") is not None,
    }
    for name, probe in probes.items():
        out[name] = [list(r) for r in unicode_tables.code_point_ranges(probe)]
    return out


# -- the hostile texts -------------------------------------------------------------------------------------------
HANDWRITTEN_VOCAB = ["<pad>", "<oov>", "the", "movie", "was", "great", "don't", "café", "i", "loved", "it", "не",
                     "плохо"]


def hostile_texts() -> list[tuple[str, str | bytes]]:
    """(name, text or UTF-8 bytes): the texts the Python tests use (tests/test_runtime.py HOSTILE and the cases of
    tests/test_tokenizer.py), and more of each kind: control characters, emoji, RTL scripts, lone surrogates,
    100,000-character lines, apostrophes, case and normalization edges, characters Python's Unicode lacks."""
    texts = [(f"test_runtime.HOSTILE[{i}]", t) for i, t in enumerate(HOSTILE)]
    texts += [(f"test_tokenizer {i}", t) for i, t in enumerate([
        "", "   \n\t ", "The MOVIE was GREAT", "I don't like it", "I don\u2019t", "'great'",
        "great<br />movie<br/>the<BR>was", "i loved it the movie was great", "Не плохо!", "Caf\u00e9", "Cafe\u0301",
        "\uff27\uff32\uff25\uff21\uff34", "great\x00movie \U0001F600 the_movie", "the " * 100_000 + "movie was great",
        "rock'n'roll isn't 'quoted' here", "it''s a''b 'x' ' ''", "snake_case 42nd__word", "end'. start' 'mid'dle",
        "caf\u00e9's na\u00efve it\u2019s"])]
    texts += [
        ("C0 and C1 controls", " ".join(f"a{chr(c)}b" for c in [*range(0x20), *range(0x7f, 0xa0)])),
        ("format characters", "don\u200bt re\u00adview zero\u200dwidth \ufeffbom \u2060joiner a\u061cb"),
        ("emoji", "loved it \U0001F44D\U0001F3FD \U0001F468\u200d\U0001F469\u200d\U0001F467 \U0001F1EB\U0001F1F7 "
                  "1\ufe0f\u20e3 \u2764\ufe0f great\U0001F600movie \U0001F600\U0001F600"),
        ("RTL", "\u05d6\u05d4 \u05e1\u05e8\u05d8 \u202e\u05de\u05e6\u05d5\u05d9\u05df\u202c \u200f\u0641\u064a\u0644\u0645 "
                "\u0631\u0627\u0626\u0639\u200e \ufefb \ufdfa \u0661\u0662\u0663 \u06f1\u06f2 \u0627\u0644\u0652\u0641\u0650"),
        ("lone surrogates", "a\ud800b \udc00x \ud83d end \ude00y \ud800\ud800 great\udfffmovie"),
        ("surrogate code points that JavaScript reads as one character", "x\ud83d\ude00y"),
        ("100,000 letters", "a" * 100_000),
        ("100,000 characters of words", ("great movie " * 10_000)[:100_000]),
        ("100,001 emoji", "\U0001F600" * 100_001),
        ("astral characters across the cut", "x" * 99_990 + "\U0001F600" * 20 + " great end"),
        ("decomposed letters past the cut", "cafe\u0301 " * 25_000),
        ("ligatures past the cut", "\ufb01ne " * 40_000),
        ("100,000 apostrophes", "'" * 100_000),
        ("100,000 apostrophes between letters", "a'" * 50_000),
        ("20,000 line breaks", "<br />" * 20_000 + "great"),
        ("html breaks", "a<br>b< BR / >c<\tbr\x1c/\x85>d<br\u3000/>e<b r>f<br//>g<BR>h<\u212a>i<\ufeffbr>j"),
        ("apostrophes", "don\u2019t don\u2018t don\u02bct don\uff07t don`t don''t 'tis rock'n'roll' o'clock' "
                        "l'\u00e9t\u00e9 \u0645'\u0646 \u4e2d'\u6587 1'000 _a'b_ a'_b"),
        ("final sigma", "\u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3 \u03a3\u0391\u03a3 \u03a3\u0391\u03a3. "
                        "a\u03a3'b \u03a3 A\u03a3\u0345 A\u0345\u03a3 \u0295\u03a3 A\U0001171e\u03a3 A\u03a3\U0001171eb "
                        "\U0001D6BA\U0001D6BA \u1f08\u03a3 \u03a3\u03a3\u03a3"),
        ("case", "\u0130STANBUL I\u0307 STRASSE stra\u00dfe \u1e9e \u212a\u212b \u01c5 \u1f88 \u0149 \ufb00 \u2160\u216b"),
        ("compatibility forms", "x\u00b2 \u00bd \u2460\u2461 \u337f \u2474 \u2116 \u3392 \uff76\uff9e \u1d43 "
                                "\U0001d400\U0001d401 \u2024 \u2025"),
        ("Chinese", "\u8fd9\u4e2a\u9152\u5e97\u7684\u4f4d\u7f6e\u5f88\u597d\uff0c\u670d\u52a1\u4e5f\u4e0d\u9519\uff01"
                    "\u4e0b\u6b21\u8fd8\u4f1a\u518d\u6765\u3002100\u5206\uff01"),
        ("Hangul and Japanese", "\ud55c\uad6d\uc5b4 \u1112\u1161\u11ab \u3071\u309a \uff8a\uff9f \u30ac\u30a6"),
        ("Indic and Thai", "\u0928\u092e\u0938\u094d\u0924\u0947 \u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35 "
                           "\u0d15\u0d4d\u200d\u0d15 \u0f00"),
        ("unassigned in Python's Unicode", "a\U0001e030b \U00031350 \U0001ccf0 \ua7cb\ua7cc \U00010d50\U00010d70 "
                                           "\u0897x \U0001e4d0 \U0001f6dc great"),
        ("noncharacters and private use", "a\ufffeb \uffff \U0010fffe \ue000x\uf8ff \U000f0000"),
        # the "cjk" character rule: each Han, Hiragana, Katakana character a word; their punctuation separates
        ("Han sentence", "\u8fd9\u90e8\u7535\u5f71\u592a\u597d\u770b\u4e86\uff0c\u6211\u5f88\u559c\u6b22\u3002"),
        ("Japanese", "\u300c\u6771\u4eac\u30bf\u30ef\u30fc\u300d\u306f\u9ad8\u3044\u3005\uff01\u30b8\u30e7\u30f3"
                     "\u30fb\u30b9\u30df\u30b9 iPhone15\u3092\u8cb7\u3063\u305f\u3002"
                     "\u3086\u309d\u3086\u309e \u30fd\u30fe"),
        ("halfwidth and compatibility Katakana, radicals", "\uff76\uff9e\uff8a\uff9f\uff71\uff70 \uff65 \u32d0\u32fe "
                                                          "\u2f00\u2f08\u2e80 \u3099\u309b\u309c \u30a0 \u31f0\u31ff"),
        ("ideographs at the range ends", "\u3400\u4dbf\u4dc0\u4e00\u9fff\ua000 \uf900\ufa6d\ufa6e\ufa70\ufad9\ufada "
                                         "\U00020000\U0002a6df\U0002a6e0\U0002ebe0\U0002ebe1\U0002f800\U0002fa1d "
                                         "\U00030000\U0003134a\U0003134b\U00031350 \U0001b000\U0001b122\U0001b123 "
                                         "\U0001aff0\U0001aff4\U00016fe3\U00016fe2 "
                                         "\u3005\u3006\u3007\u3008\u303b\u3031"),
        ("scripts side by side", "abc\u4e2d\u6587def \u0434\u0430\u4e2d \ud55c\uad6d\uc5b4\u4e2d\u6587 100\u5206 "
                                 "\u4e2d'\u6587 a'\u4e2d \u4e2d'a don't\u4e2d \uff21\uff22\u4e2d\uff11 "
                                 "\u0e2a\u0e27\u0e31\u4e2d caf\u00e9\u4e2d\u0301 \u4e2d_\u6587 \u03a3\u4e2d\u03a3"),
        ("a Chinese shopping review", "\u8863\u670d\u8d28\u91cf\u4e0d\u9519\uff0c\u5c31\u662f\u5feb\u9012\u592a"
                                      "\u6162\u4e86\uff0c\u7b49\u4e863\u5929\u3002\u7269\u6d41\uff1a\u987a\u4e30"
                                      "\uff08SF\uff09\u8fd8\u884c\u2026\u2026 \u597d\u8bc4\uff01\uff01\U0001F44D"),
        ("100,001 ideographs", "\u4e2d" * 100_001),
        ("ideographs and letters alternating past the cut", "\u4e2da" * 50_001 + " \u6587"),
        ("astral ideographs across the cut", "x" * 99_990 + "\U00020000" * 20 + " \u597d end"),
    ]
    texts += [
        ("bytes: invalid", b"bytes \xff\xfe not utf-8 \xc3\x28 great"),
        ("bytes: byte order mark", b"\xef\xbb\xbfgreat \xef\xbb\xbf movie"),
        ("bytes: encoded surrogate, beyond U+10FFFF, overlong", b"a\xed\xa0\x80b \xf4\x90\x80\x80 c\xc0\xafd"),
        ("bytes: truncated sequences", b"great \xe2\x82 movie \xf0\x9f\x98 the \xe2"),
        ("bytes: invalid bytes across the cut", b"\xff" * 60_000 + b" great movie" + b"\xe2\x82" * 30_000 + b" end"),
    ]
    return texts


HOSTILE_SETTINGS = [
    dict(maxlen=40),
    dict(maxlen=40, padding="post", truncating="post"),
    dict(maxlen=40, lowercase=False, unicode_form="NFC", strip_html_breaks=False),
    dict(maxlen=40, unicode_form="NFD", max_chars=50),
    dict(maxlen=40, unicode_form="NFKD", truncating="post", max_chars=1000),
    dict(maxlen=40, character_words="cjk"),
    dict(maxlen=40, lowercase=False, unicode_form="NFC", truncating="post", max_chars=1000, character_words="cjk"),
]
HOSTILE_TOKENIZERS = len(HOSTILE_SETTINGS) + 1  # and the hand-written vocabulary


def hostile_fixture() -> dict:
    """One vocabulary of the texts' own words (a third left out, so <oov> happens) under settings that change every
    step; and the hand-written vocabulary of tests/test_tokenizer.py. Python's ids, row and cut row for each."""
    texts = hostile_texts()
    settings = HOSTILE_SETTINGS
    words = set()
    for _, text in texts:
        text = as_js_string(text) if isinstance(text, str) else text.decode("utf-8", "replace")
        for options in settings:
            words.update(split_words(text, TokenizerConfig(**options)))
    kept = [w for i, w in enumerate(sorted(words)) if i % 3 != 1]
    vocabulary = ["<pad>", "<oov>", *kept]
    tokenizers = [Tokenizer(TokenizerConfig(vocab_size=len(vocabulary), **options), vocabulary) for options in settings]
    tokenizers.append(Tokenizer(TokenizerConfig(vocab_size=len(HANDWRITTEN_VOCAB), maxlen=6), HANDWRITTEN_VOCAB))
    cases = []
    for name, text in texts:
        entry = {"name": name}
        if isinstance(text, bytes):
            entry["bytes"] = base64.b64encode(text).decode("ascii")
        else:
            text = entry["text"] = as_js_string(text)
        expected = []
        for tokenizer in tokenizers:
            ids = tokenizer.encode(text)
            expected.append({"ids": ids, "row": tokenizer.encode_batch([text])[0].tolist(),
                             "cut": cut_row(ids, tokenizer.config)[0].tolist()})
        entry["expected"] = expected
        cases.append(entry)
    return {"tokenizers": [t.to_dict() for t in tokenizers], "cases": cases}


@pytest.fixture(scope="module")
def tokenizer_fixtures(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("web-tokenizer")
    write_json(folder / "unicode.json", python_unicode_answers())
    write_json(folder / "hostile.json", hostile_fixture())
    return folder


# -- the other data sets -----------------------------------------------------------------------------------------
def shared_data_folder() -> Path | None:
    """../shared/data: the folder of the IMDB archive, where the other labeled sets are too."""
    imdb = imdb_source()
    for folder in ([imdb.parent] if imdb else []) + [ROOT.parent / "shared" / "data"]:
        if (folder / "sst2").is_dir():
            return folder
    return None


def other_sets(folder: Path) -> dict[str, list[str]]:
    """The texts of every file of sst2, sst5, airline and zh-shopping (their README gives the formats)."""
    sets = {}
    for name in ("train_full", "dev", "test-labeled"):
        lines = (folder / "sst2" / f"{name}.tsv").read_text(encoding="utf-8").split("\n")[1:]
        sets[f"sst2/{name}"] = [line.split("\t")[0] for line in lines if line]
    for name in ("train", "dev", "test"):
        lines = (folder / "sst5" / f"sst_{name}.txt").read_text(encoding="utf-8").split("\n")
        sets[f"sst5/{name}"] = [line.split("\t", 1)[1] for line in lines if line]
    with open(folder / "airline" / "Tweets.csv", encoding="utf-8", newline="") as handle:
        sets["airline"] = [row["text"] for row in csv.DictReader(handle)]
    with zipfile.ZipFile(folder / "zh-shopping" / "online_shopping_10_cats.zip") as archive:
        raw = archive.read("online_shopping_10_cats.csv").decode("utf-8")
    sets["zh-shopping"] = [row["review"] for row in csv.DictReader(io.StringIO(raw, newline=""))]
    return sets


# -- Node: the tokenizer ---------------------------------------------------------------------------------------
def test_unicode_tables_are_this_pythons():
    """web/src/unicode_tables.js holds this Python's classes (rerun web/tools/unicode_tables.py when it changes)."""
    assert (WEB / "src" / "unicode_tables.js").read_text(encoding="utf-8") == unicode_tables.tables_js()


@pytest.mark.slow
def test_node_tokenizer_matches_python_on_hostile_texts_and_every_code_point(node_ready, tokenizer_fixtures):
    run_node(["--test", "test/tokenizer.test.mjs"], tokenizer_fixtures)
    hostile, unicode = node_results(tokenizer_fixtures, "hostile"), node_results(tokenizer_fixtures, "unicode")
    assert hostile["mismatches"] == [] and hostile["cases"] == len(hostile_texts()) * HOSTILE_TOKENIZERS
    assert unicode["mismatches"] == {} and unicode["checked"] == 0x110000
    figure("node_hostile", {"texts": len(hostile_texts()), "tokenizers": HOSTILE_TOKENIZERS, "mismatches": 0})
    figure("node_unicode", {"code_points": unicode["checked"], "mismatches": 0, "engine": unicode["engine"],
                            "python_unicode": unicodedata.unidata_version, "seconds": round(unicode["seconds"], 1)})


@pytest.mark.integration
def test_node_ids_match_python_on_every_review_of_every_data_set(node_ready, imdb, tmp_path_factory):
    """All 50,000 IMDB reviews and every text of sst2, sst5, airline and zh-shopping: the same ids.

    The vocabulary is every word Python finds in them, less every seventh, so
    a word read differently shows as another id (or as <oov>, or not as it).
    """
    folder = shared_data_folder()
    if folder is None:
        pytest.skip("../shared/data with the other sets is not here")
    sets = {"imdb/train": imdb.train.texts, "imdb/test": imdb.test.texts, **other_sets(folder)}
    out = tmp_path_factory.mktemp("web-corpora")
    corpus = write_corpus(out, "corpus", sets, TokenizerConfig())
    # the Chinese reviews once more under the "cjk" rule, each Han character a word
    chinese = write_corpus(out, "cjk_corpus", {"zh-shopping": sets["zh-shopping"]},
                           TokenizerConfig(character_words="cjk"))
    run_node(["--test", "test/corpora.test.mjs"], out)
    for name, written, figure_name in (("corpora", corpus, "node_ids"), ("cjk_corpora", chinese, "node_ids_cjk")):
        result = node_results(out, name)
        assert result["texts"] == written["texts"] and result["ids"] == written["ids"]
        assert result["mismatched_texts"] == 0, result["examples"]
        figure(figure_name, {**written, "mismatches": 0, "per_set": result["per_set"], "seconds": result["seconds"]})


def write_corpus(out: Path, prefix: str, sets: dict[str, list[str]], config: TokenizerConfig) -> dict:
    """Every text of the sets and Python's ids under a vocabulary of every word found less every seventh."""
    texts = [as_js_string(t) for texts in sets.values() for t in texts]
    words = set()
    for text in texts:
        words.update(split_words(text, config))
    vocabulary = ["<pad>", "<oov>", *(w for i, w in enumerate(sorted(words)) if i % 7 != 3)]
    tokenizer = Tokenizer(dataclasses.replace(config, vocab_size=len(vocabulary)), vocabulary)
    offsets, ids = [0], []
    for text in texts:
        row = tokenizer.encode(text)
        ids.extend(row)
        offsets.append(offsets[-1] + len(row))
    tokenizer.save(out / f"{prefix}_tokenizer.json")
    write_json(out / f"{prefix}_texts.json", texts)
    write_json(out / f"{prefix}_sets.json", {name: len(t) for name, t in sets.items()})
    np.asarray(ids, dtype="<i4").tofile(out / f"{prefix}_ids.i32")
    np.asarray(offsets, dtype="<i4").tofile(out / f"{prefix}_offsets.i32")
    return {"texts": len(texts), "ids": len(ids), "vocabulary": len(vocabulary)}


# -- files of three labels ---------------------------------------------------------------------------------------
THREE_LABELS = ("negative", "neutral", "positive")
THREE_LABEL_FILES = ("three.fp32.onnx", "three.dynamic-int8.onnx")
THREE_LABEL_TEXTS = [
    "这部电影太好看了，我很喜欢。", "衣服质量不错，就是快递太慢了，等了3天。", "一般般吧，没什么特别的。", "太差了！！再也不买了",
    "「東京タワー」は高い々！ジョン・スミス", "この映画はとても良かったです。", "ｶﾀｶﾅ iPhone15を買った",
    "A wonderful film, the best of the year.", "A dull film; the worst I have seen.", "It was fine, I guess.",
    "电影 movie 電影 映画 영화", "",
]


def three_label_folder(folder: Path) -> Path:
    """Two ONNX files (fp32, dynamic-int8) of a GRU of three labels with random weights and a "cjk" tokenizer, written
    by the exporter; three_labels.json holds texts and the Python runtime's probabilities of each file."""
    from sentilite.export.file_metadata import embedded_metadata
    from sentilite.export.onnx import export_onnx
    from sentilite.export.registry import ExportContext
    from sentilite.runtime.architecture import ModelConfig
    from sentilite.train.vocab import build_tokenizer

    texts = THREE_LABEL_TEXTS + [as_js_string(t) for t in HOSTILE if isinstance(t, str)]
    tokenizer = build_tokenizer(texts, TokenizerConfig(vocab_size=400, maxlen=48, character_words="cjk"))
    vocab, units, buckets = tokenizer.config.vocab_size, 8, 101
    config = ModelConfig(cell="gru", embedding_dim=8, units=units, window=16, ngram_buckets=buckets,
                         ngram_lookup="hashed", labels=THREE_LABELS)
    rng = np.random.default_rng(20)
    weights = {"embedding": rng.normal(0, 0.5, (vocab, 8)), "kernel": rng.normal(0, 0.5, (8, 3 * units)),
               "recurrent_kernel": rng.normal(0, 0.25, (units, 3 * units)), "bias": rng.normal(0, 0.1, (2, 3 * units)),
               "dense_kernel": rng.normal(0, 1.0, (units, 3)), "dense_bias": rng.normal(0, 0.1, (3,)),
               "ngram_weights": rng.normal(0, 1.0, (vocab + buckets, 3))}
    weights["ngram_weights"][0] = 0.0
    tokenizer_json = tokenizer.to_json().encode("utf-8")
    context = ExportContext(weights={k: v.astype(np.float32) for k, v in weights.items()}, model=config,
                            maxlen=tokenizer.config.maxlen, vocab_size=vocab, name="three-labels",
                            calibration_ids=tokenizer.encode_batch(texts), tokenizer_json=tokenizer_json,
                            labels=THREE_LABELS)
    files = {}
    for name in THREE_LABEL_FILES:
        precision = name.split(".")[1]
        metadata = embedded_metadata(tokenizer_json, config, precision, "onnx", THREE_LABELS, tokenizer.config.maxlen,
                                     vocab, "three-labels")
        model = load(export_onnx(context, precision, folder / name, metadata=metadata))
        assert model.labels == THREE_LABELS
        files[name] = {"labels": list(THREE_LABELS), "probabilities": model.predict_proba(texts).tolist()}
    write_json(folder / "three_labels.json", {"files": files, "texts": texts})
    write_json(folder / "three_texts.json", texts)
    return folder


@pytest.fixture(scope="module")
def three_label_files(tmp_path_factory) -> Path:
    return three_label_folder(tmp_path_factory.mktemp("web-three-labels"))


def check_three_label_answers(answers: dict, folder: Path) -> dict:
    """fp32: every probability within 1e-5 of Python's; dynamic-int8: the same top label on every text."""
    python = json.loads((folder / "three_labels.json").read_text(encoding="utf-8"))
    table = {}
    for name in THREE_LABEL_FILES:
        got, want = answers[name], python["files"][name]
        js, py = np.asarray(got["probabilities"], np.float64), np.asarray(want["probabilities"], np.float64)
        assert js.shape == py.shape == (len(python["texts"]), 3)
        assert got["labels"] == list(THREE_LABELS) and got["width"] == 3
        assert got["chosen"] == [THREE_LABELS[k] for k in js.argmax(axis=1)]
        table[name] = {"max_abs_diff": float(np.abs(js - py).max()),
                       "label_agreement": float(np.mean(js.argmax(axis=1) == py.argmax(axis=1)))}
    assert table["three.fp32.onnx"]["max_abs_diff"] <= 1e-5, table
    assert table["three.dynamic-int8.onnx"]["label_agreement"] == 1.0, table
    return table


@pytest.mark.slow
def test_node_answers_files_of_three_labels_as_python(node_ready, three_label_files):
    run_node(["--test", "test/model.test.mjs"], three_label_files)
    figure("node_three_labels", check_three_label_answers(node_results(three_label_files, "three_labels"),
                                                          three_label_files))


# -- Node: loading files -------------------------------------------------------------------------------------------
@pytest.mark.integration
def test_node_loads_the_file_and_refuses_hostile_ones(node_ready, exported, imdb, tmp_path_factory):
    from sentilite.train.data import subset

    folder = exported["gru"][0]
    out = tmp_path_factory.mktemp("web-node-model")
    for name in ("model.fp32.onnx", "model.mediapipe.tflite"):
        shutil.copyfile(folder / name, out / name)
    texts = [as_js_string(t) for t in subset(imdb.test, 200, seed=3).texts]
    texts += [as_js_string(t) for t in HOSTILE if isinstance(t, str)]
    positive = load(folder / "model.fp32.onnx").predict_proba(texts)[:, 1]
    write_json(out / "node_parity.json", {"texts": texts, "positive": positive.tolist()})
    run_node(["--test", "test/model.test.mjs"], out)
    result = node_results(out, "node_parity")
    assert result["max_abs_diff"] <= 1e-5
    figure("node_fp32_max_abs_diff", result["max_abs_diff"])


# -- headless Chromium ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def test_reviews(imdb):
    from sentilite.train.data import subset

    return subset(imdb.test, TEST_REVIEWS, seed=0)  # the reviews the export evaluated on


@pytest.fixture(scope="module")
def mediapipe_python(exported, test_reviews):
    """P(positive) of each model.mediapipe.tflite on the reviews, from MediaPipe's Python client in its venv."""
    from sentilite.export.mediapipe import client_venv
    from sentilite.export.mediapipe.client import DEFAULT_VENV, VENV_ENV, run_client

    venv = Path(os.environ.get(VENV_ENV) or ROOT / DEFAULT_VENV)
    if client_venv.read_stamp(venv) is None:
        return None
    files = [str(exported[cell][0] / "model.mediapipe.tflite") for cell in CELLS]
    result = run_client(files, [as_js_string(t) for t in test_reviews.texts], client_venv.venv_python(venv))
    return {cell: result["positive"]["mediapipe"][f] for cell, f in zip(CELLS, files)}


@pytest.fixture(scope="module")
def chromium(chromium_ready, exported, test_reviews, tokenizer_fixtures, mediapipe_python, three_label_files,
             tmp_path_factory):
    """One Chromium launch for every browser check: runs web/test/browser/run.mjs on a plan, returns its results."""
    out = tmp_path_factory.mktemp("web-chromium")
    texts = [as_js_string(t) for t in test_reviews.texts]
    write_json(out / "reviews.json", texts)
    gru = load(exported["gru"][0] / "model.fp32.onnx")
    write_json(out / "rows.json", [gru.encode_one(t)[0].tolist() for t in texts])
    for name in ("unicode.json", "hostile.json"):
        shutil.copyfile(tokenizer_fixtures / name, out / name)
    mounts = {"/fixtures/": str(out), "/demo/model.onnx": str(exported["gru"][0] / "model.fp32.onnx")}
    mounts.update({f"/models/{cell}/": str(exported[cell][0]) for cell in CELLS})
    mounts["/three/"] = str(three_label_files)
    onnx = [f"/models/{cell}/model.{precision}.onnx" for cell in CELLS for precision in ONNX_FILES]
    checks = {
        "unicode": {"tables": "/fixtures/unicode.json"},
        "hostile": {"fixture": "/fixtures/hostile.json"},
        "rows": {"file": "/models/gru/model.fp32.onnx", "texts": "/fixtures/reviews.json", "expected": "/fixtures/rows.json"},
        "probabilities": {"files": onnx, "texts": "/fixtures/reviews.json"},
        "labelled": {"files": [f"/three/{name}" for name in THREE_LABEL_FILES], "texts": "/three/three_texts.json"},
        "long_text": {"file": "/models/gru/model.fp32.onnx"},
        "mediapipe": {"files": [f"/models/{cell}/model.mediapipe.tflite" for cell in CELLS],
                      "texts": "/fixtures/reviews.json"},
        "demo": {"screenshot": str(out / "web-demo.png"), "pick": str(exported["lstm"][0] / "model.int8.onnx")},
    }
    plan = write_json(out / "plan.json", {"mounts": mounts, "checks": checks})
    run_node(["test/browser/run.mjs", "--plan", str(plan), "--out", str(out / "results.json")], out, timeout=1200)
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    figure("chromium", {"version": results["chromium"], "seconds": {k: round(v, 1) for k, v in results["seconds"].items()}})
    results["python"] = {cell: {p: load(exported[cell][0] / f"model.{p}.onnx").predict_proba(texts)[:, 1]
                                for p in ONNX_FILES} for cell in CELLS}
    return results


@pytest.mark.integration
def test_chromium_tokenizer_is_pythons_on_every_code_point_hostile_text_and_review(chromium, test_reviews):
    assert chromium["unicode"]["mismatches"] == {}, chromium["unicode"]["examples"]
    assert chromium["hostile"]["mismatches"] == []
    assert chromium["rows"] == {"texts": len(test_reviews), "mismatches": 0, "examples": []}
    figure("chromium_tokenizer", {"code_points": chromium["unicode"]["checked"], "hostile_cases": chromium["hostile"]["cases"],
                                  "review_rows": chromium["rows"]["texts"], "mismatches": 0})


@pytest.mark.integration
def test_chromium_probabilities_are_pythons_on_the_same_files(chromium, test_reviews):
    """fp32: within 1e-5 of the Python runtime on every review; 8-bit files: the same label on >= 99.9% of them."""
    table = {}
    for cell in CELLS:
        for precision in ONNX_FILES:
            js = np.asarray(chromium["probabilities"][f"/models/{cell}/model.{precision}.onnx"]["positive"], np.float64)
            py = chromium["python"][cell][precision].astype(np.float64)
            assert js.shape == py.shape == (len(test_reviews),)
            table[f"{cell}/{precision}"] = {"max_abs_diff": float(np.abs(js - py).max()),
                                            "label_agreement": float(np.mean((js >= 0.5) == (py >= 0.5)))}
    figure("chromium_probabilities", table)
    for cell in CELLS:
        assert table[f"{cell}/fp32"]["max_abs_diff"] <= 1e-5, table
        for precision in EIGHT_BIT:
            assert table[f"{cell}/{precision}"]["label_agreement"] >= 0.999, table


@pytest.mark.integration
def test_chromium_answers_files_of_three_labels_as_python(chromium, three_label_files):
    """A "cjk" tokenizer and a (batch, 3) output in the page: Python's probabilities, label for label."""
    answers = {name: chromium["labelled"][f"/three/{name}"] for name in THREE_LABEL_FILES}
    figure("chromium_three_labels", check_three_label_answers(answers, three_label_files))


@pytest.mark.integration
def test_mediapipe_in_chromium_agrees_with_the_python_client(chromium, mediapipe_python, test_reviews):
    """MediaPipe's TextClassifier in the page (wasm) against MediaPipe's Python client (x86), same file, same reviews."""
    if mediapipe_python is None:
        pytest.skip("no MediaPipe client venv (`make mediapipe-client`)")
    table = {}
    for cell in CELLS:
        web = chromium["mediapipe"][f"/models/{cell}/model.mediapipe.tflite"]
        js = np.asarray(web["positive"], np.float64)
        py = mediapipe_python[cell].astype(np.float64)
        assert web["categories"] == ["negative", "positive"] and web["max_sum_error"] < 1e-5
        table[cell] = {"max_abs_diff": float(np.abs(js - py).max()), "mean_abs_diff": float(np.abs(js - py).mean()),
                       "label_agreement": float(np.mean((js >= 0.5) == (py >= 0.5))), "identical": int(np.sum(js == py))}
    figure("mediapipe_web_vs_python", table)
    for cell in CELLS:
        assert table[cell]["label_agreement"] >= 0.999 and table[cell]["max_abs_diff"] <= 1e-4, table


@pytest.mark.integration
def test_demo_page_in_chromium(chromium):
    demo = chromium["demo"]
    assert demo["positive"]["label"] == "positive" and demo["negative"]["label"] == "negative"
    for seen in (demo["positive"], demo["negative"]):
        assert set(seen["bars"]) == {"negative", "positive"} and abs(sum(seen["bars"].values()) - 1) < 1e-6
    assert demo["paste"]["chars"] == 100_000 and demo["paste"]["label"] in ("negative", "positive")
    assert demo["after_paste"]["label"] in ("negative", "positive")
    assert "notes.txt" in demo["dropped_error"] and "not an ONNX model file" in demo["dropped_error"]
    assert demo["after_drop"]["label"] == "positive"  # the loaded model still answers, offline
    assert "model.int8.onnx: lstm cell, int8" in demo["picked"]["model_line"]
    assert Path(demo["screenshot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    paths = {r["path"] for r in demo["download"]}
    assert {"/demo/model.onnx", "/node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm"} <= paths
    figure("demo", {"download_bytes": demo["download_bytes"], "download_gzip_bytes": demo["download_gzip_bytes"],
                    "download": demo["download"], "ready_ms": round(demo["ready_ms"]),
                    "paste_100k_ms": round(demo["paste"]["ms"]), "long_text": chromium["long_text"]})


@pytest.mark.integration
def test_nothing_in_the_browser_reached_another_address(chromium):
    """Every request to anything but the test's server was refused; sentilite's pages made none at all.

    MediaPipe's web client posts usage logs to odml.pa.googleapis.com on its
    own; the refusal is the only thing between it and the network here.
    """
    sentilite_pages = [r for r in chromium["refused_requests"] if "mediapipe" not in r["page"]]
    assert sentilite_pages == []
    others = {re.sub(r"^(https?://[^/]+).*", r"\1", r["url"]) for r in chromium["refused_requests"]}
    assert others <= {"https://odml.pa.googleapis.com"}, others
    figure("refused_requests", chromium["refused_requests"])
