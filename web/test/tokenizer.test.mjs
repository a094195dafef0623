// The tokenizer against Python's: hand-written cases (tests/test_tokenizer.py), and the fixtures of tests/test_web.py.
import assert from "node:assert/strict";
import { test } from "node:test";

import { TokenizerFileError } from "../src/errors.js";
import { parseJson } from "../src/json.js";
import { sha256Hex, sha256HexSync } from "../src/sha256.js";
import { DEFAULT_CONFIG, Tokenizer, cutRow, findWords, normalizeText, padIds, splitWords } from "../src/tokenizer.js";
import { fixture, readJson, report } from "./fixtures.js";
import { hostileMismatches } from "./ids_check.js";
import { unicodeMismatches } from "./unicode_check.js";

const VOCAB = ["<pad>", "<oov>", "the", "movie", "was", "great", "don't", "café", "i", "loved", "it", "не", "плохо"];
const make = (overrides = {}) => new Tokenizer({ ...DEFAULT_CONFIG, vocab_size: VOCAB.length, maxlen: 6, ...overrides },
  VOCAB);
const ids = (text, overrides) => Array.from(make(overrides).encodeBatch([text]));

test("the hand-written cases of tests/test_tokenizer.py", () => {
  assert.deepEqual(ids(""), [0, 0, 0, 0, 0, 0]);
  assert.deepEqual(ids("   \n\t "), [0, 0, 0, 0, 0, 0]);
  assert.deepEqual(ids("The MOVIE was GREAT"), [0, 0, 2, 3, 4, 5]);
  assert.deepEqual(ids("I don't like it"), [0, 0, 8, 6, 1, 10]);
  assert.deepEqual(ids("I don\u2019t"), [0, 0, 0, 0, 8, 6]);
  assert.deepEqual(ids("'great'"), [0, 0, 0, 0, 0, 5]);
  assert.deepEqual(ids("great<br />movie<br/>the<BR>was"), [0, 0, 5, 3, 2, 4]);
  assert.deepEqual(ids("i loved it the movie was great"), [9, 10, 2, 3, 4, 5]);
  assert.deepEqual(ids("i loved it the movie was great", { truncating: "post" }), [8, 9, 10, 2, 3, 4]);
  assert.deepEqual(ids("the movie", { padding: "post" }), [2, 3, 0, 0, 0, 0]);
  assert.deepEqual(ids("Не плохо!"), [0, 0, 0, 0, 11, 12]);
  assert.deepEqual(ids("Cafe\u0301"), ids("Café"));
  assert.deepEqual(ids("\uff27\uff32\uff25\uff21\uff34"), [0, 0, 0, 0, 0, 5]);
  assert.deepEqual(ids("great\x00movie \u{1F600} the_movie"), [0, 0, 5, 3, 2, 3]);
  assert.deepEqual(ids(new TextEncoder().encode("great movie")), [0, 0, 0, 0, 5, 3]);
  assert.deepEqual(ids(Uint8Array.from([...new TextEncoder().encode("great "), 0xff, 0xfe, 0x20, 0x6d, 0x6f, 0x76,
    0x69, 0x65])), [0, 0, 0, 0, 5, 3]);
  assert.throws(() => make().encodeBatch(["ok", 42]), { name: "TypeError", message: /index 1/ });
  assert.throws(() => make().encodeBatch("not a list"), { name: "TypeError", message: /single text/ });
  assert.deepEqual(Array.from(make({ max_chars: 1000 }).encodeBatch(["the ".repeat(100_000) + "movie was great"])),
    [2, 2, 2, 3, 4, 5]);
  for (const [text, words] of [
    ["rock'n'roll isn't 'quoted' here", ["rock'n'roll", "isn't", "quoted", "here"]],
    ["it''s a''b 'x' ' ''", ["it", "s", "a", "b", "x"]],
    ["snake_case 42nd__word", ["snake", "case", "42nd", "word"]],
    ["end'. start' 'mid'dle", ["end", "start", "mid'dle"]],
    ["café's naïve it’s", ["café's", "naïve", "it's"]],
  ]) assert.deepEqual(findWords(normalizeText(text, DEFAULT_CONFIG)), words);
});

test("character words: the cases of tests/test_tokenizer.py", () => {
  const cjk = { ...DEFAULT_CONFIG, character_words: "cjk" };
  assert.deepEqual(splitWords("这部电影太好看了，我很喜欢。", cjk), [..."这部电影太好看了我很喜欢"]);
  assert.deepEqual(splitWords("这部电影太好看了，我很喜欢。", DEFAULT_CONFIG), ["这部电影太好看了", "我很喜欢"]);
  assert.deepEqual(splitWords("「東京タワー」は高い々！ジョン・スミスｶﾀｶﾅ iPhone15を買った", cjk), [
    "東", "京", "タ", "ワ", "ー", "は", "高", "い", "々", "ジ", "ョ", "ン", "ス", "ミ", "ス", "カ", "タ", "カ", "ナ",
    "iphone15", "を", "買", "っ", "た"]);
  assert.deepEqual(splitWords("電'x don't x'電 한국어 영화", cjk), ["電", "x", "don't", "x", "電", "한국어", "영화"]);
  assert.deepEqual(splitWords("\u{20000}\u{2ebe0}a\u{2ebe1}b", cjk), ["\u{20000}", "\u{2ebe0}", "a", "b"]);
  const vocab = ["<pad>", "<oov>", "电", "影", "好", "看", "the", "movie", "was", "great", "タ", "ー", "東", "京", "々",
    "don't", "電影", "東京タワー", "iphone", "x"];
  for (const [text, none, cjkIds] of [
    ["这部电影太好看了", [1], [1, 1, 2, 3, 1, 4, 5, 1]],
    ["The movie was great, 電影! 好看", [6, 7, 8, 9, 16, 1], [6, 7, 8, 9, 1, 3, 4, 5]],
    ["東京タワー don't 々", [17, 15, 14], [12, 13, 10, 1, 11, 15, 14]],
    ["iPhone X: 好", [18, 19, 4], [18, 19, 4]],
    ["GREAT movie", [9, 7], [9, 7]],
  ]) {
    for (const [rule, want] of [["none", none], ["cjk", cjkIds]]) {
      const config = { ...DEFAULT_CONFIG, vocab_size: vocab.length, maxlen: 12, character_words: rule };
      const tokenizer = new Tokenizer(config, vocab);
      assert.deepEqual(tokenizer.encode(text), want, `${text} under ${rule}`);
    }
  }
});

test("padding and the cut row", () => {
  const rows = [[1, 2, 3], [4, 5, 6, 7, 8], []];
  assert.deepEqual(Array.from(padIds(rows, 4)), [0, 1, 2, 3, 5, 6, 7, 8, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(padIds(rows, 4, "post", "post")), [1, 2, 3, 0, 4, 5, 6, 7, 0, 0, 0, 0]);
  const config = { ...DEFAULT_CONFIG, maxlen: 40 };
  assert.equal(cutRow([], config).length, 16);
  assert.equal(cutRow(new Array(17).fill(5), config).length, 32);
  assert.equal(cutRow(new Array(60).fill(5), config).length, 40);
  assert.deepEqual(Array.from(cutRow([7, 8], config)).slice(13), [0, 7, 8]);
});

test("malformed tokenizer documents are refused with the reason", () => {
  const good = () => ({
    format_version: 1, type: "sentilite.word_tokenizer", config: { ...DEFAULT_CONFIG, vocab_size: VOCAB.length },
    vocabulary: Object.fromEntries(VOCAB.map((w, i) => [w, i])),
  });
  for (const [mutate, message] of [
    [(d) => { d.format_version = 99; }, /unknown tokenizer format_version 99/],
    [(d) => { delete d.format_version; }, /format_version null/],
    [(d) => { d.vocabulary.great = 2; }, /duplicate id 2/],
    [(d) => { delete d.vocabulary.movie; }, /missing id/],
    [(d) => { d.vocabulary = { "<pad>": 0, x: 1, the: 2 }; }, /must map '<pad>' to 0 and '<oov>' to 1/],
    [(d) => { d.vocabulary.the = "2"; }, /not an integer/],
    [(d) => { d.config.maxlen = 0; }, /maxlen must be an integer >= 1/],
    [(d) => { d.config.padding = "middle"; }, /padding must be one of/],
    [(d) => { d.config.surprise = 1; }, /unknown TokenizerConfig setting/],
    [(d) => { d.config.vocab_size = 5; }, /vocab_size is 5 but the vocabulary holds 13/],
    [(d) => { d.config.character_words = "thai"; }, /character_words must be one of none, cjk, got 'thai': a rule/],
    [(d) => { d.config.character_words = null; }, /character_words must be one of none, cjk, got null/],
  ]) {
    const doc = good();
    mutate(doc);
    assert.throws(() => Tokenizer.fromJSON(JSON.stringify(doc), "tok.json"),
      (error) => error instanceof TokenizerFileError && message.test(error.message) && error.message.includes("tok.json"));
  }
  assert.throws(() => Tokenizer.fromJSON(new Uint8Array([0, 1, 0x20]), "t"), /not valid JSON/);
  // JSON.parse makes "__proto__" an own key; a Map makes "constructor" a word like any other
  const doc = '{"format_version": 1, "config": {"vocab_size": 5}, "vocabulary": '
    + '{"<pad>": 0, "<oov>": 1, "constructor": 2, "__proto__": 3, "proto": 4}}';
  const tricky = Tokenizer.fromJSON(doc);
  assert.equal(tricky.config.character_words, "none"); // a tokenizer.json without the setting: as before it
  assert.deepEqual(tricky.vocabulary, ["<pad>", "<oov>", "constructor", "__proto__", "proto"]);
  assert.deepEqual(tricky.encode("constructor __proto__ valueOf"), [2, 4, 1]);
});

test("JSON nesting and size are capped before JSON.parse", () => {
  assert.throws(() => parseJson("[".repeat(100_000) + "]".repeat(100_000), "deep", TokenizerFileError),
    /nested more than 64 levels/);
  assert.deepEqual(parseJson('{"a": "[[[[[[["}', "strings do not count", TokenizerFileError, 100, 1), { a: "[[[[[[[" });
  assert.throws(() => parseJson("[1]".padEnd(200), "big", TokenizerFileError, 100), /over the 100-byte limit/);
});

test("SHA-256 in JavaScript equals Web Crypto's", async () => {
  for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 100_003]) {
    const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 31 + 7) & 0xff);
    assert.equal(sha256HexSync(bytes), await sha256Hex(bytes), `${n} bytes`);
  }
  assert.equal(sha256HexSync(new TextEncoder().encode("abc")),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
});

test("Python's ids on the hostile texts", { skip: !fixture("hostile.json") && "no fixture" }, () => {
  const result = hostileMismatches(readJson(fixture("hostile.json")));
  report("hostile", result);
  assert.deepEqual(result.mismatches, []);
});

test("Python's Unicode on every code point", { skip: !fixture("unicode.json") && "no fixture" }, () => {
  const result = unicodeMismatches(readJson(fixture("unicode.json")));
  report("unicode", { ...result, engine: `node ${process.version}, unicode ${process.versions.unicode}` });
  assert.deepEqual(result.mismatches, {}, result.examples.join("\n"));
});
