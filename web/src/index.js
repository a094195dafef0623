/**
 * sentilite in JavaScript: `load()` a sentilite ONNX file, then `predict()` raw texts, in a browser or in Node.
 *
 * The file is the one the Python package exports (model.fp32.onnx, and the
 * fp16 and 8-bit ones), byte for byte: it carries its tokenizer, labels and
 * settings, so one file is enough. It is hostile until checked: its size is
 * capped, its seal verified and its metadata read and checked before
 * onnxruntime-web sees a byte of it.
 *
 *     import { load } from "sentilite";
 *     const model = await load("model.fp32.onnx");
 *     const [result] = await model.predict(["A wonderful film."]);
 *     // {label: "positive", score: 0.97, probabilities: {negative: 0.03, positive: 0.97}}
 */
import * as ort from "onnxruntime-web";

import { readAllCapped } from "./bytes.js";
import { readDeclaredInput, readLabels, readTokenizer, key } from "./embedded.js";
import { ModelFileError } from "./errors.js";
import { readOnnx, ELEMENT_TYPES } from "./onnx_file.js";
import { checkSeal } from "./seal.js";
import { asText, cutRow, cutWidths } from "./tokenizer.js";

export { ConfigError, ModelFileError, SentiliteError, TokenizerFileError } from "./errors.js";
export { Tokenizer, LENGTH_BUCKET, cutRow, cutWidths, padIds } from "./tokenizer.js";
export { ort };

/** Read into memory whole: far above any sentilite file (the default fp32 file is 1.6 MB), far below a tab's memory. */
export const MAX_MODEL_BYTES = 512 << 20;
const INT32 = 6;

const isNode = typeof globalThis.process?.versions?.node === "string";

/**
 * @typedef {{label: string, score: number, probabilities: Record<string, number>}} Prediction
 * @typedef {object} LoadOptions
 * @property {number} [batchSize] texts a run, 64 as in Python
 * @property {number} [numThreads] onnxruntime-web's wasm threads (set before its first session); 1 by default
 * @property {string} [name] what errors call the file when it is given as bytes
 * @property {number} [maxBytes] the largest file accepted, MAX_MODEL_BYTES by default
 */

/** The bytes of a model given as bytes, a Blob or File, a URL, or (in Node) a file path. */
async function readModelBytes(source, name, limit) {
  if (source instanceof Uint8Array) return { bytes: source, name: name ?? "model bytes" };
  if (source instanceof ArrayBuffer) return { bytes: new Uint8Array(source), name: name ?? "model bytes" };
  if (typeof Blob !== "undefined" && source instanceof Blob) {
    const shown = name ?? source.name ?? "model file";
    checkSize(source.size, shown, limit);
    return { bytes: new Uint8Array(await source.arrayBuffer()), name: shown };
  }
  if (typeof source !== "string" && !(source instanceof URL)) {
    throw new TypeError("load expects a URL, a file path (Node), a File or Blob, or the file's bytes");
  }
  const where = String(source);
  if (isNode && !/^(https?|blob|data):/i.test(where)) {
    return { bytes: await readNodeFile(where, limit), name: name ?? where };
  }
  let response;
  try {
    response = await fetch(source);
  } catch (error) {
    throw new ModelFileError(`${where}: cannot fetch the model file (${error.message})`);
  }
  if (!response.ok) throw new ModelFileError(`${where}: cannot fetch the model file (HTTP ${response.status})`);
  const declared = Number(response.headers.get("content-length"));
  if (declared) checkSize(declared, where, limit);
  return { bytes: await readCapped(response.body, where, limit), name: name ?? where };
}

async function readNodeFile(path, limit) {
  const fs = await import("node:fs/promises");
  const target = path.startsWith("file:") ? new URL(path) : path;
  let status;
  try {
    status = await fs.stat(target);
  } catch {
    throw new ModelFileError(`${path}: no such model file`);
  }
  if (!status.isFile()) throw new ModelFileError(`${path}: is not a regular file`);
  checkSize(status.size, path, limit);
  return new Uint8Array(await fs.readFile(target));
}

/** A response body read to its end, refused once it passes MAX_MODEL_BYTES. */
async function readCapped(body, where, limit) {
  return readAllCapped(body.getReader(), limit, (total) => checkSize(total, where, limit));
}

function checkSize(size, where, limit) {
  if (size > limit) {
    throw new ModelFileError(`${where}: ${size.toLocaleString("en-US")} bytes is over the `
      + `${limit.toLocaleString("en-US")}-byte limit for a model file`);
  }
}

/** What a file that is not an ONNX model looks like, for a clear refusal before anything parses it. */
function refuseOtherFormats(bytes, name) {
  const ascii = (start, end) => String.fromCharCode(...bytes.subarray(start, end));
  if (bytes.length === 0) throw new ModelFileError(`${name}: the model file is empty`);
  if (bytes.length >= 8 && ascii(4, 8) === "TFL3") {
    throw new ModelFileError(`${name}: is a TFLite file; this runtime runs sentilite's .onnx files `
      + "(model.mediapipe.tflite runs in MediaPipe's TextClassifier, @mediapipe/tasks-text)");
  }
  if (bytes.length >= 4 && ascii(0, 4) === "PK\x03\x04") {
    throw new ModelFileError(`${name}: is a zip archive (a .npz file?); this runtime runs sentilite's .onnx files`);
  }
}

/**
 * Load a sentilite ONNX file. Everything is checked before inference: the seal, the metadata, the
 * embedded tokenizer against its sha256, and the model's input against the tokenizer.
 * @param {string|URL|Uint8Array|ArrayBuffer|Blob} source
 * @param {LoadOptions} [options]
 * @returns {Promise<SentimentModel>}
 */
export async function load(source, options = {}) {
  const limit = options.maxBytes ?? MAX_MODEL_BYTES;
  const { bytes, name } = await readModelBytes(source, options.name, limit);
  checkSize(bytes.length, name, limit);
  refuseOtherFormats(bytes, name);
  const sealed = await checkSeal(bytes, name, ModelFileError);
  const file = readOnnx(bytes, name);
  const meta = file.metadata;
  const { tokenizer } = await readTokenizer(meta, name);
  const labels = readLabels(meta, name);
  const declared = readDeclaredInput(meta, name);
  if (file.inputs.length !== 1 || file.outputs.length !== 1) {
    throw new ModelFileError(`${name}: expected one input and one output, found ${file.inputs.length} `
      + `and ${file.outputs.length}`);
  }
  const [input] = file.inputs;
  const [output] = file.outputs;
  if (!input.dims || input.dims.length !== 2) {
    throw new ModelFileError(`${name}: expected an input of shape (batch, ids), got ${JSON.stringify(input.dims)}`);
  }
  if (input.elementType !== INT32) {
    throw new ModelFileError(`${name}: expected int32 ids, the input is `
      + `${ELEMENT_TYPES[input.elementType] ?? `element type ${input.elementType}`}`);
  }
  const maxlen = tokenizer.config.maxlen;
  if (input.dims[1] !== null && input.dims[1] !== maxlen) {
    throw new ModelFileError(`${name}: the model reads ${input.dims[1]} ids per text but the tokenizer pads to ${maxlen}`);
  }
  if (declared.maxlen !== maxlen) {
    throw new ModelFileError(`${name}: the model reads ${declared.maxlen} ids per text but the tokenizer pads to ${maxlen}`);
  }
  if (declared.vocab_size !== tokenizer.config.vocab_size) {
    throw new ModelFileError(`${name}: the model has ${declared.vocab_size} ids but the tokenizer has `
      + `${tokenizer.config.vocab_size}`);
  }
  const width = output.dims?.at(-1);
  if (width !== undefined && width !== null) checkWidth(width, labels, name);
  // One thread unless the app asks for more: more need a cross-origin isolated page in a browser, and Python's
  // runtime runs one by default too. onnxruntime-web reads this when it starts, at its first session.
  if (options.numThreads !== undefined) ort.env.wasm.numThreads = options.numThreads;
  else if (!ort.env.wasm.numThreads) ort.env.wasm.numThreads = 1;
  let session;
  try {
    session = await ort.InferenceSession.create(bytes, {
      executionProviders: ["wasm"], graphOptimizationLevel: "all", logSeverityLevel: 3,
    });
  } catch (error) {
    throw new ModelFileError(`${name}: onnxruntime cannot load the file (${firstLine(error)})`);
  }
  const info = {
    file: name, bytes: bytes.length, sealed, format: "onnx", backend: "onnxruntime-web",
    cell: meta[key("cell")], precision: meta[key("precision")], name: meta[key("name")],
  };
  const model = new SentimentModel(session, tokenizer, labels, {
    variableLength: input.dims[1] === null && declared.variable_length,
    batchSize: options.batchSize ?? 64,
    info,
  });
  try {
    await model.probe(); // a file that cannot run fails here, not at the first prediction
  } catch (error) {
    await session.release();
    throw error;
  }
  return model;
}

/**
 * Values a text the file may give for its labels: P(positive) alone (today's files, two labels), or one
 * probability a label ((batch, N) files).
 */
function checkWidth(width, labels, name) {
  if (width !== labels.length && !(width === 1 && labels.length === 2)) {
    throw new ModelFileError(`${name}: the model gives ${width} values per text for ${labels.length} labels`);
  }
}

function firstLine(error) {
  return String(error?.message ?? error).split("\n")[0].slice(0, 300);
}

/** Raw text in, sentiment out. */
export class SentimentModel {
  constructor(session, tokenizer, labels, { variableLength, batchSize, info }) {
    this.session = session;
    this.tokenizer = tokenizer;
    this.labels = labels;
    /** true when the file reads rows shorter than maxlen as if they were left-padded (runtime/model.py) */
    this.variableLength = variableLength;
    this.batchSize = batchSize;
    this.info = info;
    this.inputName = session.inputNames[0];
    this.outputName = session.outputNames[0];
    /** values the file gives a text: 1 (P of the second of two labels) or one a label; read off its output */
    this.width = 0;
    this._queue = Promise.resolve(); // one run at a time: a wasm session is not reentrant
  }

  /**
   * Label, its probability, and the probability of every label, per text, in input order.
   * @param {Iterable<string|Uint8Array>} texts
   * @returns {Promise<Prediction[]>}
   */
  async predict(texts) {
    const rows = await this.predictProba(texts);
    return rows.map((row) => {
      let best = 0;
      if (this.width === 1) best = row[1] >= 0.5 ? 1 : 0; // as Python: positive from P = 0.5 up
      else for (let k = 1; k < row.length; k++) if (row[k] > row[best]) best = k;
      const probabilities = Object.fromEntries(this.labels.map((label, k) => [label, row[k]]));
      return { label: this.labels[best], score: row[best], probabilities };
    });
  }

  /**
   * One array of probabilities a text, in the order of `labels` (Python's predict_proba).
   * @returns {Promise<number[][]>}
   */
  async predictProba(texts) {
    const out = await this.scores(texts);
    const n = out.length / this.width;
    return Array.from({ length: n }, (_, r) => {
      if (this.width === 1) {
        const p = out[r];
        return [Math.fround(1 - p), p]; // float32's 1 - p, as the Python runtime gives it
      }
      return Array.from(out.subarray(r * this.width, (r + 1) * this.width));
    });
  }

  /**
   * What the file gives for each text: P(positive) (n) from today's files, one value a label (n x N) from others.
   * @returns {Promise<Float32Array>}
   */
  async scores(texts) {
    if (typeof texts === "string" || texts instanceof Uint8Array) {
      throw new TypeError("expected a list of texts, got a single text; wrap it in a list");
    }
    const list = Array.from(texts, (text, index) => asText(text, index));
    if (list.length === 1) return this._run(this.encodeOne(list[0]), 1);
    return this.scoresOfIds(this.tokenizer.encodeBatch(list), list.length);
  }

  /** The row this model's file reads for one text: the cut row for a variable-length file, else the padded one. */
  encodeOne(text) {
    const { config } = this.tokenizer;
    if (this.variableLength && config.padding === "pre") return cutRow(this.tokenizer.encode(text), config);
    return this.tokenizer.encodeBatch([text]);
  }

  /**
   * Scores of padded ids (n x maxlen), batch by batch (runtime/model.py run_batches): on a variable-length
   * file each row is cut to its bucketed length and rows of one width share batches.
   * @param {Int32Array} ids
   */
  async scoresOfIds(ids, n) {
    const maxlen = this.tokenizer.config.maxlen;
    if (ids.length !== n * maxlen) throw new RangeError(`ids must hold ${n} rows of ${maxlen}`);
    const out = new Float32Array(n * this.width);
    const widths = this.variableLength ? cutWidths(ids, maxlen) : new Array(n).fill(maxlen);
    const order = Array.from(widths.keys()).sort((a, b) => widths[a] - widths[b] || a - b);
    for (let start = 0; start < n;) {
      const kept = widths[order[start]];
      let end = start;
      while (end < n && end - start < this.batchSize && widths[order[end]] === kept) end++;
      const rows = order.slice(start, end);
      const batch = new Int32Array(rows.length * kept);
      rows.forEach((row, i) => batch.set(ids.subarray(row * maxlen + maxlen - kept, (row + 1) * maxlen), i * kept));
      const scores = await this._run(batch, rows.length);
      rows.forEach((row, i) => out.set(scores.subarray(i * this.width, (i + 1) * this.width), row * this.width));
      start = end;
    }
    return out;
  }

  /** Runs the file once on the row of an empty text, and learns from its output how many values a text gets. */
  async probe() {
    const row = this.encodeOne("");
    await this._run(row, 1);
  }

  /** One run of the engine on `n` rows; an answer of the wrong size or with NaN is refused (Backend.run). */
  _run(ids, n) {
    const run = async () => {
      const feeds = { [this.inputName]: new ort.Tensor("int32", ids, [n, ids.length / n]) };
      let result;
      try {
        result = await this.session.run(feeds);
      } catch (error) {
        throw new ModelFileError(`${this.info.file}: onnxruntime failed to run the file (${firstLine(error)})`);
      }
      const tensor = result[this.outputName];
      const values = floats(tensor);
      const width = tensor.dims.length >= 2 ? tensor.dims.at(-1) : 1;
      tensor.dispose?.();
      if (this.width === 0) {
        checkWidth(width, this.labels, this.info.file);
        this.width = width;
      }
      if (width !== this.width || values.length !== n * this.width) {
        throw new ModelFileError(`${this.info.file}: the file gives ${values.length} values for ${n} rows`);
      }
      if (!values.every(Number.isFinite)) {
        throw new ModelFileError(`${this.info.file}: the file computed a non-finite probability (damaged weights?)`);
      }
      return values;
    };
    const next = this._queue.then(run, run);
    this._queue = next.catch(() => {});
    return next;
  }

  /** Frees the engine's memory. */
  async release() {
    await this.session.release();
  }
}

/** A float tensor's values as float32 (fp16 outputs are widened, as numpy's astype(float32)). */
function floats(tensor) {
  if (tensor.type === "float32") return tensor.data;
  if (tensor.type === "float16" && tensor.data instanceof Uint16Array) return Float32Array.from(tensor.data, half);
  return Float32Array.from(tensor.data, Number);
}

function half(bits) {
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  const sign = bits & 0x8000 ? -1 : 1;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}
