/**
 * The metadata every model file carries about itself (runtime/embedded.py), read as hostile data.
 *
 * Every field is checked when the file is loaded, so a bad file is refused
 * by load() with a ModelFileError, not at predict time. The embedded
 * tokenizer is inflated with a size cap, so a zlib bomb costs bounded time
 * and memory.
 */
import { readAllCapped } from "./bytes.js";
import { ModelFileError, TokenizerFileError } from "./errors.js";
import { parseJson } from "./json.js";
import { sha256Hex } from "./sha256.js";
import { Tokenizer } from "./tokenizer.js";

export const KEY_PREFIX = "sentilite";
export const METADATA_VERSION = 1;
// Far above what sentilite writes (a 20,000-word tokenizer is ~0.4 MB, its JSON keys < 1 KB).
export const MAX_TOKENIZER_BYTES = 16 << 20;
export const MAX_FIELD_BYTES = 1 << 20;
// The labels a model may have (runtime/architecture.py MIN_CLASSES, MAX_CLASSES, MAX_LABEL_CHARS).
export const MIN_LABELS = 2;
export const MAX_LABELS = 50;
export const MAX_LABEL_CHARS = 100;
export const MAX_MAXLEN = 100_000;
export const MAX_VOCAB = 10_000_000;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** @typedef {{maxlen: number, vocab_size: number, variable_length: boolean}} DeclaredInput */

export const key = (name) => `${KEY_PREFIX}.${name}`;

export function hasMetadata(meta) {
  return Object.hasOwn(meta, key("metadata_version"));
}

export function checkVersion(meta, source) {
  const version = meta[key("metadata_version")];
  if (version === undefined) {
    throw new ModelFileError(`${source}: carries no sentilite metadata (not exported by sentilite?)`);
  }
  if (version !== String(METADATA_VERSION)) {
    throw new ModelFileError(`${source}: unknown sentilite metadata version '${version.slice(0, 40)}' `
      + `(this sentilite reads ${METADATA_VERSION}); upgrade sentilite`);
  }
}

/**
 * zlib-inflate at most `maxBytes`; a bomb is refused after that much work, not after all of it.
 * @param {Uint8Array} packed
 * @returns {Promise<Uint8Array>}
 */
export async function inflateLimited(packed, source, maxBytes) {
  const reader = new Blob([packed]).stream().pipeThrough(new DecompressionStream("deflate")).getReader();
  try {
    return await readAllCapped(reader, maxBytes, () => {
      throw new ModelFileError(`${source}: compressed data expands beyond the `
        + `${maxBytes.toLocaleString("en-US")}-byte limit`);
    });
  } catch (error) {
    if (error instanceof ModelFileError) throw error;
    throw new ModelFileError(`${source}: corrupt compressed data (${error.message})`);
  }
}

/**
 * The embedded tokenizer and the sha256 of its tokenizer.json bytes.
 * @returns {Promise<{tokenizer: Tokenizer, sha256: string}>}
 */
export async function readTokenizer(meta, source) {
  checkVersion(meta, source);
  const blob = meta[key("tokenizer.zlib_base64")];
  const expected = meta[key("tokenizer.sha256")];
  for (const [name, value] of [["tokenizer.zlib_base64", blob], ["tokenizer.sha256", expected]]) {
    if (value === undefined) throw new ModelFileError(`${source}: metadata lacks '${key(name)}'`);
  }
  if (blob.length > MAX_TOKENIZER_BYTES) {
    throw new ModelFileError(`${source}: embedded tokenizer of ${blob.length.toLocaleString("en-US")} bytes `
      + "is over the limit");
  }
  if (!BASE64.test(blob)) throw new ModelFileError(`${source}: embedded tokenizer is corrupt (not base64)`);
  const binary = atob(blob);
  const packed = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) packed[i] = binary.charCodeAt(i);
  const raw = await inflateLimited(packed, `${source}: embedded tokenizer`, MAX_TOKENIZER_BYTES);
  const actual = await sha256Hex(raw);
  if (actual !== expected) {
    throw new ModelFileError(`${source}: embedded tokenizer sha256 ${actual} does not match the recorded `
      + `${String(expected).slice(0, 64)}`);
  }
  try {
    return { tokenizer: Tokenizer.fromJSON(raw, `${source} (embedded tokenizer)`), sha256: actual };
  } catch (error) {
    if (error instanceof TokenizerFileError) throw new ModelFileError(error.message);
    throw error;
  }
}

export function readJsonField(meta, name, source, required = true) {
  const raw = meta[key(name)];
  if (raw === undefined) {
    if (required) throw new ModelFileError(`${source}: metadata lacks ${key(name)}`);
    return undefined;
  }
  return parseJson(raw, `${source}: metadata ${key(name)}`, ModelFileError, MAX_FIELD_BYTES);
}

/**
 * The file's labels, in the order of its outputs (read_labels): `sentilite.labels`, checked, and checked against
 * the labels of its `sentilite.model`. A model JSON without labels (every file of sentilite 0.3 and before) is a
 * model of two labels, so its file must name two.
 * @returns {string[]}
 */
export function readLabels(meta, source) {
  const labels = checkLabels(readJsonField(meta, "labels", source), `${source}: metadata ${key("labels")}`);
  const model = readJsonField(meta, "model", source, false);
  const declared = model !== null && typeof model === "object" && !Array.isArray(model) ? model.labels : undefined;
  if (declared === undefined || declared === null) {
    if (labels.length !== 2) {
      throw new ModelFileError(`${source}: metadata ${key("labels")} names ${labels.length} labels, but its `
        + `${key("model")} carries no labels: a model of two`);
    }
    return labels;
  }
  checkLabels(declared, `${source}: metadata ${key("model")}`);
  if (declared.length !== labels.length || declared.some((label, k) => label !== labels[k])) {
    throw new ModelFileError(`${source}: metadata ${key("labels")} ${short(labels)} differs from the labels `
      + `of its ${key("model")} ${short(declared)}`);
  }
  return labels;
}

/** MIN_LABELS..MAX_LABELS distinct, non-empty, short strings (check_labels). @returns {string[]} */
function checkLabels(labels, source) {
  const problem = labelProblem(labels);
  if (problem !== null) {
    throw new ModelFileError(`${source}: labels must be ${MIN_LABELS} to ${MAX_LABELS} distinct non-empty strings `
      + `of at most ${MAX_LABEL_CHARS} characters (${problem}), got ${short(labels)}`);
  }
  return labels;
}

/** What is wrong with a JSON list of labels, in a few words; null when nothing is (label_problem). */
function labelProblem(labels) {
  if (!Array.isArray(labels)) return `not a list but ${labels === null ? "null" : typeof labels}`;
  if (labels.length < MIN_LABELS || labels.length > MAX_LABELS) {
    return `${labels.length} label${labels.length === 1 ? "" : "s"}`;
  }
  const seen = new Set();
  for (const [index, label] of labels.entries()) {
    if (typeof label !== "string") return `label ${index} is not a string`;
    if (!label) return `label ${index} is empty`;
    const chars = [...label].length; // code points, as Python's len counts them
    if (chars > MAX_LABEL_CHARS) return `label ${index} has ${chars.toLocaleString("en-US")} characters`;
    if (seen.has(label)) return `${short(label)} appears twice`;
    seen.add(label);
  }
  return null;
}

/** The file's `sentilite.input` object, checked; undefined for files without sentilite metadata. */
export function readDeclaredInput(meta, source) {
  const data = readJsonField(meta, "input", source, hasMetadata(meta));
  if (data === undefined) return undefined;
  const where = `${source}: metadata ${key("input")}`;
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new ModelFileError(`${where}: expected a JSON object, got ${short(data)}`);
  }
  for (const [name, high] of [["maxlen", MAX_MAXLEN], ["vocab_size", MAX_VOCAB]]) {
    const value = data[name];
    if (!Number.isSafeInteger(value) || value < 1 || value > high) {
      throw new ModelFileError(`${where}: ${name} must be an integer in 1..${high.toLocaleString("en-US")}, `
        + `got ${short(value)}`);
    }
  }
  const variable = data.variable_length ?? false;
  if (typeof variable !== "boolean") {
    throw new ModelFileError(`${where}: variable_length must be true or false, got ${short(variable)}`);
  }
  return { maxlen: data.maxlen, vocab_size: data.vocab_size, variable_length: variable };
}

function short(value) {
  const text = JSON.stringify(value) ?? String(value);
  return text.length <= 80 ? text : `${text.slice(0, 77)}...`;
}
