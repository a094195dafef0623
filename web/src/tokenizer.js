/**
 * The tokenizer of sentilite.runtime.tokenizer, ported: the same ids for every text.
 *
 * Python's `re` and `str` follow the Unicode version of the Python that runs
 * them (14.0.0 for 3.11); a JavaScript engine follows its own ICU. So the
 * character classes of the word rule and of the HTML line break come from
 * Python (unicode_tables.js), and the characters Python's Unicode does not
 * assign are kept out of normalization and lower-casing, as Python keeps
 * them. Lengths are counted in code points, as Python's `len` counts them
 * (a JavaScript string's length counts UTF-16 units).
 */
import { ConfigError, TokenizerFileError } from "./errors.js";
import { parseJson, MAX_JSON_BYTES } from "./json.js";
import {
  B_LETTER, CJK_CHARACTER, R_LETTER, SIGMA_CASED, SIGMA_SKIPPED, SPACE, UNASSIGNED, WORD,
} from "./unicode_tables.js";

export const FORMAT_VERSION = 1;
export const PAD_TOKEN = "<pad>";
export const PAD_ID = 0;
export const OOV_TOKEN = "<oov>";
export const OOV_ID = 1;
/** A variable-length file's row is cut to its length rounded up to a multiple of this (runtime/model.py). */
export const LENGTH_BUCKET = 16;

const SIDES = ["pre", "post"];
const UNICODE_FORMS = ["NFC", "NFKC", "NFD", "NFKD"];
/** Which characters are words of their own (CHARACTER_WORDS): none, or each Han, Hiragana and Katakana one. */
export const CHARACTER_WORDS = ["none", "cjk"];

/**
 * @typedef {object} TokenizerConfig
 * @property {number} vocab_size ids 0..vocab_size-1, <pad> and <oov> included
 * @property {number} maxlen
 * @property {"pre"|"post"} padding
 * @property {"pre"|"post"} truncating
 * @property {boolean} lowercase
 * @property {"NFC"|"NFKC"|"NFD"|"NFKD"} unicode_form
 * @property {boolean} strip_html_breaks
 * @property {number} max_chars longer texts are cut to this many code points first, on the truncating side
 * @property {"none"|"cjk"} character_words "cjk": each character of CJK_CHARACTER is a word of its own
 */

/** @type {Readonly<TokenizerConfig>} */
export const DEFAULT_CONFIG = Object.freeze({
  vocab_size: 20000,
  maxlen: 200,
  padding: "pre",
  truncating: "pre",
  lowercase: true,
  unicode_form: "NFKC",
  strip_html_breaks: true,
  max_chars: 100_000,
  character_words: "none",
});

/** A regex character class body from generated ranges ("41-5a,61-7a,..."). */
function characterClass(ranges) {
  return ranges.split(",").map((range) => {
    const [start, end] = range.split("-");
    return end === undefined ? `\\u{${start}}` : `\\u{${start}}-\\u{${end}}`;
  }).join("");
}

const IS_WORD = 1;
const IS_UNASSIGNED = 2;
const IS_SIGMA_CASED = 4;
const IS_SIGMA_SKIPPED = 8;
const IS_CJK = 16;
/**
 * One byte a code point: whether Python's [^\W_] matches it, whether Python's Unicode leaves it unassigned,
 * what it is to the final sigma rule of Python's str.lower, and whether the "cjk" rule makes it a word alone.
 * A table, not a regex: V8 matches a class of 733 explicit ranges 4 to 9 times slower than \p{L}, and a
 * lookup is faster than either.
 */
const CLASSES = new Uint8Array(0x110000);
for (const [bit, ranges] of [[IS_WORD, WORD], [IS_UNASSIGNED, UNASSIGNED], [IS_SIGMA_CASED, SIGMA_CASED],
  [IS_SIGMA_SKIPPED, SIGMA_SKIPPED], [IS_CJK, CJK_CHARACTER]]) {
  for (const range of ranges.split(",")) {
    const [start, end = start] = range.split("-").map((h) => parseInt(h, 16));
    for (let code = start; code <= end; code++) CLASSES[code] |= bit;
  }
}

const S = characterClass(SPACE);
// <br />, <br/>, <BR> ... in any case and spacing: HTML_BREAK, <\s*br\s*/?\s*> ignoring case.
const HTML_BREAK = new RegExp(
  `<[${S}]*[${characterClass(B_LETTER)}][${characterClass(R_LETTER)}][${S}]*\\/?[${S}]*>`, "gu");
/** WORD, [^\W_]+(?:'[^\W_]+)*, on ASCII text, where [^\W_] is [A-Za-z0-9]. */
const ASCII_WORD_RULE = /[A-Za-z0-9]+(?:'[A-Za-z0-9]+)*/g;
const NOT_ASCII = /[^\x00-\x7f]/;
const APOSTROPHE = 0x27;
/** Typographic apostrophes become ASCII, so "don’t" and "don't" are one word. */
const APOSTROPHES = ["\u2019", "\u2018", "\u02bc", "\uff07", "`"];

const utf8 = new TextDecoder("utf-8", { ignoreBOM: true }); // Python's bytes.decode keeps a leading U+FEFF

/**
 * A string, or UTF-8 bytes decoded with U+FFFD for invalid bytes (as_text).
 * @param {string|ArrayBufferView|ArrayBuffer} text
 * @param {number} [index]
 * @returns {string}
 */
export function asText(text, index) {
  if (typeof text === "string") return text;
  if (ArrayBuffer.isView(text) || text instanceof ArrayBuffer) return utf8.decode(text);
  const where = index === undefined ? "" : ` at index ${index}`;
  const kind = text === null ? "null" : Array.isArray(text) ? "array" : typeof text;
  throw new TypeError(`expected a text (string or UTF-8 bytes)${where}, got ${kind}`);
}

/** The first or last `maxChars` code points of `text`. */
function cutCodePoints(text, maxChars, keepEnd) {
  if (text.length <= maxChars) return text; // never more code points than UTF-16 units
  let count = 0;
  let i = keepEnd ? text.length : 0;
  if (keepEnd) {
    while (i > 0 && count < maxChars) {
      i -= isPairEnd(text, i - 1) ? 2 : 1;
      count++;
    }
    return i === 0 ? text : text.slice(i);
  }
  while (i < text.length && count < maxChars) {
    i += isPairEnd(text, i + 1) ? 2 : 1;
    count++;
  }
  return text.slice(0, i);
}

/** True when the unit at `at` is a low surrogate that completes a pair with the unit before it. */
function isPairEnd(text, at) {
  if (at <= 0 || at >= text.length) return false;
  const low = text.charCodeAt(at);
  const high = text.charCodeAt(at - 1);
  return low >= 0xdc00 && low <= 0xdfff && high >= 0xd800 && high <= 0xdbff;
}

/** `transform` applied to the text between characters Python does not assign; those kept as they are. */
function outsideUnassigned(text, transform) {
  if (!NOT_ASCII.test(text)) return transform(text);
  let out = "";
  let kept = 0; // text[kept:i] is not yet in out
  let i = 0;
  while (i < text.length) {
    const code = text.codePointAt(i);
    const width = code > 0xffff ? 2 : 1;
    if (CLASSES[code] & IS_UNASSIGNED) {
      let end = i + width;
      while (end < text.length && CLASSES[text.codePointAt(end)] & IS_UNASSIGNED) {
        end += text.codePointAt(end) > 0xffff ? 2 : 1;
      }
      out += transform(text.slice(kept, i)) + text.slice(i, end);
      kept = i = end;
    } else {
      i += width;
    }
  }
  return kept === 0 ? transform(text) : out + transform(text.slice(kept));
}

/** Python's unicodedata.normalize(form, text). */
export function normalizeForm(text, form) {
  return outsideUnassigned(text, (part) => part.normalize(form));
}

const lower = (part) => part.toLowerCase();
const CAPITAL_SIGMA = "\u03a3";

/**
 * Python's text.lower(): full case mapping, on the characters Python knows.
 *
 * Each capital sigma is decided here, by Python's classes: the engine's ICU
 * may count other characters as cased or case-ignorable (Unicode 16 made
 * U+0295 uncased and U+1171E a spacing mark). The text between two sigmas
 * has no other context-dependent mapping, so it is lowered on its own.
 */
export function lowerCase(text) {
  if (!text.includes(CAPITAL_SIGMA)) return outsideUnassigned(text, lower);
  const parts = text.split(CAPITAL_SIGMA);
  let out = outsideUnassigned(parts[0], lower);
  let at = parts[0].length; // where the sigma before parts[k] is in text
  for (let k = 1; k < parts.length; k++) {
    out += (isFinalSigma(text, at) ? "\u03c2" : "\u03c3") + outsideUnassigned(parts[k], lower);
    at += 1 + parts[k].length;
  }
  return out;
}

/** Final_Sigma as CPython's handle_capital_sigma reads it: cased, case-ignorable*, sigma, not (case-ignorable*, cased). */
function isFinalSigma(text, at) {
  let before = -1;
  for (let j = at; j > 0;) {
    j -= isPairEnd(text, j - 1) ? 2 : 1;
    const code = text.codePointAt(j);
    if (!(CLASSES[code] & IS_SIGMA_SKIPPED)) {
      before = code;
      break;
    }
  }
  if (before < 0 || !(CLASSES[before] & IS_SIGMA_CASED)) return false;
  for (let j = at + 1; j < text.length;) {
    const code = text.codePointAt(j);
    if (!(CLASSES[code] & IS_SIGMA_SKIPPED)) return !(CLASSES[code] & IS_SIGMA_CASED);
    j += code > 0xffff ? 2 : 1;
  }
  return true;
}

/** Python's HTML_BREAK.sub(" ", text). */
export function stripHtmlBreaks(text) {
  return text.replace(HTML_BREAK, " ");
}

/**
 * Unicode-normalize, drop HTML line breaks, lower-case and unify apostrophes (normalize_text).
 * @param {string} text
 * @param {TokenizerConfig} config
 */
export function normalizeText(text, config) {
  text = normalizeForm(cutCodePoints(text, config.max_chars, config.truncating === "pre"), config.unicode_form);
  if (config.strip_html_breaks) text = stripHtmlBreaks(text);
  if (config.lowercase) text = lowerCase(text);
  for (const apostrophe of APOSTROPHES) {
    if (text.includes(apostrophe)) text = text.replaceAll(apostrophe, "'");
  }
  return text;
}

/**
 * The words of a normalized text (find_words): WORD.findall, or CJK_WORD.findall under "cjk", where each
 * character of CJK_CHARACTER is a word alone and ends the run of letters before it.
 * @param {string} normalized
 * @param {"none"|"cjk"} [characterWords]
 * @returns {string[]}
 */
export function findWords(normalized, characterWords = "none") {
  if (!NOT_ASCII.test(normalized)) return normalized.match(ASCII_WORD_RULE) ?? [];
  const words = [];
  const n = normalized.length;
  // in a run: a word character, not one of the words alone
  const runMask = characterWords === "cjk" ? IS_WORD | IS_CJK : IS_WORD;
  const isWord = (at) => at < n && (CLASSES[normalized.codePointAt(at)] & runMask) === IS_WORD;
  const step = (at) => (normalized.codePointAt(at) > 0xffff ? 2 : 1);
  let i = 0;
  while (i < n) {
    if (!isWord(i)) {
      const width = step(i);
      if (runMask !== IS_WORD && CLASSES[normalized.codePointAt(i)] & IS_CJK) {
        words.push(normalized.slice(i, i + width));
      }
      i += width;
      continue;
    }
    const start = i;
    for (;;) { // a run of word characters, then another after a single apostrophe, and so on
      while (isWord(i)) i += step(i);
      if (normalized.charCodeAt(i) !== APOSTROPHE || !isWord(i + 1)) break;
      i += 1;
    }
    words.push(normalized.slice(start, i));
  }
  return words;
}

/** The words of one text, after normalization (split_words). */
export function splitWords(text, config) {
  return findWords(normalizeText(text, config), config.character_words);
}

/**
 * Rows of ids -> one flat Int32Array (n x maxlen), as Keras pad_sequences (pad_ids).
 * @param {ArrayLike<number>[]} sequences
 * @returns {Int32Array}
 */
export function padIds(sequences, maxlen, padding = "pre", truncating = "pre", value = PAD_ID) {
  if (!SIDES.includes(padding) || !SIDES.includes(truncating)) {
    throw new RangeError(`padding and truncating must be one of ${SIDES.join(", ")}`);
  }
  const out = new Int32Array(sequences.length * maxlen).fill(value);
  sequences.forEach((sequence, row) => {
    const kept = keptIds(sequence, maxlen, truncating);
    out.set(kept, row * maxlen + (padding === "pre" ? maxlen - kept.length : 0));
  });
  return out;
}

function keptIds(ids, maxlen, truncating) {
  if (ids.length <= maxlen) return ids;
  return truncating === "pre" ? Array.prototype.slice.call(ids, ids.length - maxlen)
    : Array.prototype.slice.call(ids, 0, maxlen);
}

/** A length rounded up to a multiple of LENGTH_BUCKET, at least one bucket, at most maxlen. */
export function bucketWidth(length, maxlen) {
  return Math.min(maxlen, Math.max(1, Math.ceil(length / LENGTH_BUCKET)) * LENGTH_BUCKET);
}

/**
 * One text's unpadded ids as the row a variable-length file reads (runtime/model.py cut_row):
 * its pre-padded row to maxlen, with the leading padding cut to a bucket width.
 * @returns {Int32Array}
 */
export function cutRow(ids, config) {
  const kept = keptIds(ids, config.maxlen, config.truncating);
  const row = new Int32Array(bucketWidth(kept.length, config.maxlen));
  row.set(kept, row.length - kept.length);
  return row;
}

/**
 * How many trailing columns of each padded row a variable-length file is given (cut_widths).
 * @param {Int32Array} ids flat rows of `width` ids
 * @returns {number[]}
 */
export function cutWidths(ids, width) {
  const widths = [];
  for (let start = 0; start < ids.length; start += width) {
    let first = 0;
    while (first < width && ids[start + first] === PAD_ID) first++;
    widths.push(bucketWidth(first === width ? 0 : width - first, width));
  }
  return widths;
}

/**
 * A TokenizerConfig from JSON: defaults for missing settings, unknown ones refused (TokenizerConfig.from_dict).
 * @returns {TokenizerConfig}
 */
export function tokenizerConfig(data, source = "config") {
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new ConfigError(`${source}: TokenizerConfig must be a JSON object, got ${kindOf(data)}`);
  }
  const unknown = Object.keys(data).filter((name) => !Object.hasOwn(DEFAULT_CONFIG, name)).sort();
  if (unknown.length) throw new ConfigError(`${source}: unknown TokenizerConfig setting(s): ${unknown.join(", ")}`);
  const config = { ...DEFAULT_CONFIG, ...data };
  const fail = (message) => { throw new ConfigError(`${source}: TokenizerConfig.${message}`); };
  for (const [name, minimum] of [["vocab_size", 3], ["maxlen", 1], ["max_chars", 1]]) {
    if (!Number.isSafeInteger(config[name]) || config[name] < minimum) {
      fail(`${name} must be an integer >= ${minimum}, got ${shown(config[name])}`);
    }
  }
  for (const name of ["padding", "truncating"]) {
    if (!SIDES.includes(config[name])) fail(`${name} must be one of ${SIDES.join(", ")}, got ${shown(config[name])}`);
  }
  if (!UNICODE_FORMS.includes(config.unicode_form)) {
    fail(`unicode_form must be one of ${UNICODE_FORMS.join(", ")}, got ${shown(config.unicode_form)}`);
  }
  for (const name of ["lowercase", "strip_html_breaks"]) {
    if (typeof config[name] !== "boolean") fail(`${name} must be true or false`);
  }
  if (!CHARACTER_WORDS.includes(config.character_words)) {
    fail(`character_words must be one of ${CHARACTER_WORDS.join(", ")}, got ${shown(config.character_words)}: `
      + "a rule this sentilite does not know (written by a newer one?)");
  }
  return Object.freeze(config);
}

/** Words -> ids with a fixed vocabulary; ids 0 and 1 are padding and out-of-vocabulary. */
export class Tokenizer {
  /**
   * @param {TokenizerConfig} config
   * @param {string[]} vocabulary index == id
   */
  constructor(config, vocabulary, source = "Tokenizer") {
    this.config = tokenizerConfig(config, `${source}: config`);
    this.vocabulary = Array.from(vocabulary);
    /** @type {Map<string, number>} a Map, so "constructor" or "__proto__" are words like any other */
    this.ids = new Map(this.vocabulary.map((word, id) => [word, id]));
    const words = this.vocabulary;
    if (words.length < 2 || words[PAD_ID] !== PAD_TOKEN || words[OOV_ID] !== OOV_TOKEN) {
      throw new TokenizerFileError(`${source}: the vocabulary must map '${PAD_TOKEN}' to ${PAD_ID} `
        + `and '${OOV_TOKEN}' to ${OOV_ID}`);
    }
    if (this.ids.size !== words.length) {
      const seen = new Set();
      const dupes = [...new Set(words.filter((w) => seen.has(w) || !seen.add(w)))].sort().slice(0, 5);
      throw new TokenizerFileError(`${source}: duplicate token(s) in vocabulary: ${JSON.stringify(dupes)}`);
    }
    if (words.length !== this.config.vocab_size) {
      throw new TokenizerFileError(`${source}: config.vocab_size is ${this.config.vocab_size} but the `
        + `vocabulary holds ${words.length} ids`);
    }
  }

  /** @returns {string[]} */
  words(text) {
    return splitWords(asText(text), this.config);
  }

  /** Ids of one text, not padded. @returns {number[]} */
  encode(text) {
    const ids = this.ids;
    return this.words(text).map((word) => ids.get(word) ?? OOV_ID);
  }

  /** Texts -> a flat Int32Array (n x maxlen), padded and truncated per the config. */
  encodeBatch(texts) {
    if (typeof texts === "string" || texts instanceof Uint8Array) {
      throw new TypeError("encodeBatch expects a list of texts, got a single text; wrap it in a list");
    }
    const rows = Array.from(texts, (text, index) => this.encode(asText(text, index)));
    return padIds(rows, this.config.maxlen, this.config.padding, this.config.truncating);
  }

  get size() {
    return this.vocabulary.length;
  }

  /** A tokenizer.json document (text or UTF-8 bytes). */
  static fromJSON(text, source = "tokenizer.json") {
    return Tokenizer.fromObject(parseJson(text, source, TokenizerFileError, MAX_JSON_BYTES), source);
  }

  /** A parsed tokenizer.json (Tokenizer.from_dict). */
  static fromObject(data, source = "tokenizer.json") {
    if (data === null || typeof data !== "object" || Array.isArray(data)) {
      throw new TokenizerFileError(`${source}: expected a JSON object at the top level`);
    }
    const version = data.format_version;
    if (version !== FORMAT_VERSION) {
      throw new TokenizerFileError(`${source}: unknown tokenizer format_version ${shown(version ?? null)} `
        + `(this sentilite reads ${FORMAT_VERSION})`);
    }
    let config;
    try {
      config = tokenizerConfig(data.config, `${source}: config`);
    } catch (error) {
      if (error instanceof ConfigError) throw new TokenizerFileError(error.message);
      throw error;
    }
    const vocabulary = data.vocabulary;
    if (vocabulary === null || typeof vocabulary !== "object" || Array.isArray(vocabulary)
        || Object.keys(vocabulary).length === 0) {
      throw new TokenizerFileError(`${source}: 'vocabulary' must be a non-empty object of token -> id`);
    }
    const byId = new Map();
    for (const [word, id] of Object.entries(vocabulary)) {
      if (!Number.isSafeInteger(id)) {
        throw new TokenizerFileError(`${source}: id of token ${shown(word)} is not an integer: ${shown(id)}`);
      }
      if (byId.has(id)) {
        throw new TokenizerFileError(`${source}: duplicate id ${id} for tokens ${shown(byId.get(id))} and ${shown(word)}`);
      }
      byId.set(id, word);
    }
    const words = [];
    const missing = [];
    for (let id = 0; id < byId.size; id++) {
      if (byId.has(id)) words.push(byId.get(id));
      else if (missing.push(id) >= 5) break;
    }
    if (missing.length) {
      throw new TokenizerFileError(`${source}: ids must run 0..${byId.size - 1} without gaps; `
        + `missing id(s) [${missing.join(", ")}]`);
    }
    try {
      return new Tokenizer(config, words, source);
    } catch (error) {
      if (error instanceof ConfigError) throw new TokenizerFileError(error.message);
      throw error;
    }
  }
}

function shown(value) {
  const text = typeof value === "string" ? `'${value}'` : JSON.stringify(value) ?? String(value);
  return text.length <= 80 ? text : `${text.slice(0, 77)}...`;
}

function kindOf(value) {
  return value === null ? "null" : Array.isArray(value) ? "list" : typeof value;
}
