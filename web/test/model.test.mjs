// load() and predict() in Node: Python's numbers on the same file, and hostile files refused with a clear error.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { deflateSync } from "node:zlib";

import { ModelFileError, load } from "../src/index.js";
import { readOnnx } from "../src/onnx_file.js";
import { fixture, readJson, report } from "./fixtures.js";

const MODEL = fixture("model.fp32.onnx");
const skip = !MODEL && "no fixture";

// -- a ModelProto written by hand, for files no exporter would write ---------------------------------------------
const varint = (n) => {
  const out = [];
  for (; n >= 0x80; n = Math.floor(n / 128)) out.push((n % 128) | 0x80);
  out.push(n);
  return out;
};
const bytesOf = (value) => (typeof value === "string" ? [...new TextEncoder().encode(value)] : [...value]);
const field = (number, value) => (typeof value === "number" ? [...varint(number * 8), ...varint(value)]
  : [...varint(number * 8 + 2), ...varint(bytesOf(value).length), ...bytesOf(value)]);
const valueInfo = (name, elementType, dims) => [...field(1, name), ...field(2, field(1, [...field(1, elementType),
  ...field(2, dims.flatMap((d) => field(1, typeof d === "number" ? field(1, d) : field(2, d))))]))];

const node = (op, inputs, outputs, attributes = []) => field(1, [...inputs.flatMap((n) => field(1, n)),
  ...outputs.flatMap((n) => field(2, n)), ...field(4, op), ...attributes.flatMap((a) => field(5, a))]);
const intAttribute = (name, value) => [...field(1, name), ...field(20, 2), ...field(3, value)];
const intsAttribute = (name, values) => [...field(1, name), ...field(20, 7), ...values.flatMap((v) => field(8, v))];
const floats = (name, dims, values) => field(5, [...dims.flatMap((d) => field(1, d)), ...field(2, 1), ...field(8, name),
  ...field(9, new Uint8Array(Float32Array.from(values).buffer))]);

/**
 * An ONNX file with these metadata. By default a graph of one node `op` from ids (int32 [batch, time]) to
 * positive ([batch, 1]); with `classes`, a small real model: softmax(mean(ids) x classes) as (batch, N).
 */
function onnxFile(metadata, { op = "Identity", inputs = 1, ir = 8, classes } = {}) {
  const output = classes ? "probabilities" : "positive";
  const nodes = classes
    ? [...node("Cast", ["ids"], ["idsf"], [intAttribute("to", 1)]),
      ...node("ReduceMean", ["idsf"], ["mean"], [intsAttribute("axes", [1]), intAttribute("keepdims", 1)]),
      ...node("Mul", ["mean", "classes"], ["logits"]), ...node("Softmax", ["logits"], [output])]
    : node(op, ["ids"], [output]);
  const graph = [...nodes, ...field(2, "g"), ...(classes ? floats("classes", [1, classes.length], classes) : []),
    ...(inputs ? field(11, valueInfo("ids", 6, ["batch", "time"])) : []),
    ...field(12, valueInfo(output, 1, ["batch", classes ? classes.length : 1]))];
  const props = Object.entries(metadata).flatMap(([k, v]) => field(14, [...field(1, k), ...field(2, v)]));
  return Uint8Array.from([...field(1, ir), ...field(7, graph), ...field(8, field(2, 17)), ...props]);
}

/** The real file's metadata, without its seal (a hand-written file is unsealed), changed by `change`. */
function metadataOf(change = (m) => m) {
  const meta = { ...readOnnx(new Uint8Array(readFileSync(MODEL)), "m").metadata };
  delete meta["sentilite.seal"];
  return change(meta);
}

async function refused(source, message, options) {
  await assert.rejects(load(source, options), (error) => {
    assert.ok(error instanceof ModelFileError, `${error.name}: ${error.message}`);
    assert.match(error.message, message);
    return true;
  });
}

test("Python's probabilities on the same fp32 file", { skip }, async () => {
  const { texts, positive } = readJson(fixture("node_parity.json"));
  const model = await load(MODEL);
  const predictions = await model.predict(texts);
  const single = await Promise.all(texts.slice(0, 20).map(async (t) => (await model.predict([t]))[0]));
  let worst = 0;
  predictions.forEach((p, i) => { worst = Math.max(worst, Math.abs(p.probabilities.positive - positive[i])); });
  single.forEach((p, i) => assert.equal(p.probabilities.positive, predictions[i].probabilities.positive));
  report("node_parity", { texts: texts.length, max_abs_diff: worst, info: model.info });
  assert.ok(worst <= 1e-5, `max |diff| ${worst}`);
  for (const p of predictions) {
    assert.deepEqual(Object.keys(p.probabilities), model.labels);
    assert.equal(p.score, p.probabilities[p.label]);
    assert.equal(p.label, p.probabilities.positive >= 0.5 ? "positive" : "negative");
  }
  await assert.rejects(model.predict("one text"), /single text/);
  await assert.rejects(model.predict(["fine", 3]), /index 1, got number/);
  await model.release();
});

test("damaged and foreign files get a ModelFileError, never an engine crash", { skip }, async () => {
  const good = new Uint8Array(readFileSync(MODEL));
  const flipped = good.slice();
  flipped[Math.floor(flipped.length / 3)] ^= 0x01;
  await refused(flipped, /damaged: its content does not match the sha256/);
  const sealAt = Buffer.from(good).indexOf("sentilite.seal") + 16;
  const badSeal = good.slice();
  badSeal[sealAt + 10] = "z".charCodeAt(0);
  await refused(badSeal, /its sentilite.seal value is not a sha256/);
  await refused(good.slice(0, good.length >> 1), /not an ONNX model file/);
  await refused(new Uint8Array(0), /empty/);
  await refused(new TextEncoder().encode("<!doctype html><p>not a model</p>"), /not an ONNX model file/);
  await refused(new TextEncoder().encode('{"format_version": 1}'), /not an ONNX model file/);
  await refused(Uint8Array.from({ length: 5000 }, (_, i) => (i * 2654435761) >>> 24), /not an ONNX model file/);
  await refused(Uint8Array.from([0x50, 0x4b, 3, 4, 0, 0]), /zip archive/);
  const tflite = fixture("model.mediapipe.tflite");
  if (tflite) await refused(new Uint8Array(readFileSync(tflite)), /is a TFLite file/);
  await refused(good, /over the 1,000-byte limit/, { maxBytes: 1000 });
  await refused(`${MODEL}.absent`, /no such model file/);
});

test("hand-written files: every metadata field is checked before the engine", { skip }, async () => {
  await refused(onnxFile({ author: "someone" }), /carries no sentilite metadata/);
  await refused(onnxFile(metadataOf((m) => ({ ...m, "sentilite.metadata_version": "2" }))), /unknown sentilite metadata version/);
  await refused(onnxFile(metadataOf((m) => ({ ...m, "sentilite.labels": "[".repeat(5000) + "]".repeat(5000) }))),
    /nested more than 64 levels/);
  await refused(onnxFile(metadataOf((m) => ({ ...m, "sentilite.labels": '["good", "good"]' }))), /labels must be/);
  await refused(onnxFile(metadataOf((m) => ({ ...m, "sentilite.tokenizer.zlib_base64": "@@@@" }))), /corrupt \(not base64\)/);
  const bomb = deflateSync(Buffer.alloc(64 << 20, 0x20), { level: 9 }).toString("base64");
  await refused(onnxFile(metadataOf((m) => ({ ...m, "sentilite.tokenizer.zlib_base64": bomb }))), /expands beyond the 16,777,216-byte limit/);
  await refused(onnxFile(metadataOf((m) => ({ ...m, "sentilite.tokenizer.zlib_base64": "eJzLSM3JyQcABiwCFQ==" }))),
    /embedded tokenizer sha256 .* does not match/);
  const truncated = deflateSync(Buffer.from("x".repeat(1000))).subarray(0, 8).toString("base64");
  await refused(onnxFile(metadataOf((m) => ({ ...m, "sentilite.tokenizer.zlib_base64": truncated }))), /corrupt compressed data/);
  await refused(onnxFile(metadataOf((m) => ({ ...m, "sentilite.input": '{"maxlen": 7, "vocab_size": 2000}' }))),
    /reads 7 ids per text but the tokenizer pads to/);
  await refused(onnxFile(metadataOf(), { inputs: 0 }), /expected one input and one output, found 0 and 1/);
  await refused(onnxFile(metadataOf(), { op: "NoSuchOperator" }), /onnxruntime cannot load the file/);
});

/**
 * The real file's metadata for a model of these labels: sentilite.labels, and the labels of sentilite.model
 * (`modelLabels`; null: a model JSON without labels, as sentilite 0.3 wrote it).
 */
function labelledMetadata(labels, modelLabels = labels) {
  return metadataOf((m) => {
    const { labels: _, ...model } = JSON.parse(m["sentilite.model"]);
    return { ...m, "sentilite.labels": JSON.stringify(labels),
      "sentilite.model": JSON.stringify(modelLabels === null ? model : { ...model, labels: modelLabels }) };
  });
}

test("a file of N labels answers (batch, N): one probability a label, the label of the largest", { skip }, async () => {
  const three = labelledMetadata(["negative", "neutral", "positive"]);
  const model = await load(onnxFile(three, { classes: [-0.01, 0.0, 0.01] }), { name: "three.onnx" });
  const predictions = await model.predict(["the the the", "zzz qqq", "", "A wonderful film, the best of the year."]);
  assert.equal(model.width, 3);
  for (const p of predictions) {
    const values = Object.values(p.probabilities);
    assert.deepEqual(Object.keys(p.probabilities), ["negative", "neutral", "positive"]);
    assert.ok(Math.abs(values.reduce((a, b) => a + b) - 1) < 1e-6);
    assert.equal(p.score, Math.max(...values));
    assert.equal(p.probabilities[p.label], p.score);
  }
  const two = await load(onnxFile(metadataOf(), { classes: [0.01, -0.01] }), { name: "two-columns.onnx" });
  const [p] = await two.predict(["the movie"]);
  assert.equal(two.width, 2);
  assert.equal(p.label, p.probabilities.negative >= p.probabilities.positive ? "negative" : "positive");
  await refused(onnxFile(three, { classes: [0.1, 0.2] }), /gives 2 values per text for 3 labels/);
});

test("labels are checked as Python checks them: 2 to 50, as the model JSON names them", { skip }, async () => {
  const classes = [-0.01, 0.0, 0.01];
  await refused(onnxFile(labelledMetadata(["a", "b", "c"], null), { classes }),
    /names 3 labels, but its sentilite.model carries no labels: a model of two/);
  await refused(onnxFile(labelledMetadata(["a", "b", "c"], ["a", "c", "b"]), { classes }),
    /sentilite.labels \["a","b","c"\] differs from the labels of its sentilite.model \["a","c","b"\]/);
  const many = Array.from({ length: 51 }, (_, k) => `label${k}`);
  await refused(onnxFile(labelledMetadata(many), { classes: new Array(51).fill(0) }),
    /labels must be 2 to 50 distinct non-empty strings of at most 100 characters \(51 labels\)/);
  await refused(onnxFile(labelledMetadata(["a", "\u{1F600}".repeat(101), "c"]), { classes }),
    /label 1 has 101 characters/);
  const fifty = Array.from({ length: 50 }, (_, k) => `label${k}`);
  const spread = Array.from({ length: 50 }, (_, k) => k / 100);
  const model = await load(onnxFile(labelledMetadata(fifty), { classes: spread }));
  const [p] = await model.predict(["the movie"]);
  assert.deepEqual(model.labels, fifty);
  assert.equal(Object.keys(p.probabilities).length, 50);
  await model.release();
  // one hundred astral characters are one hundred characters, as in Python (two hundred UTF-16 units)
  const astral = await load(onnxFile(labelledMetadata(["a", "\u{1F600}".repeat(100), "c"]), { classes }));
  await astral.release();
});

test("files of three labels: every label's probability, for tests/test_web.py to judge against Python's",
  { skip: !fixture("three_labels.json") && "no fixture" }, async () => {
    const { files, texts } = readJson(fixture("three_labels.json"));
    const out = {};
    for (const file of Object.keys(files)) {
      const model = await load(fixture(file));
      const predictions = await model.predict(texts);
      const [single] = await model.predict([texts[0]]); // one text, its cut row: the batch's answer, to rounding
      assert.equal(single.label, predictions[0].label);
      for (const label of model.labels) {
        assert.ok(Math.abs(single.probabilities[label] - predictions[0].probabilities[label]) < 1e-6, label);
      }
      for (const p of predictions) {
        assert.deepEqual(Object.keys(p.probabilities), model.labels);
        assert.equal(p.score, p.probabilities[p.label]);
      }
      out[file] = {
        labels: model.labels,
        width: model.width,
        probabilities: predictions.map((p) => model.labels.map((label) => p.probabilities[label])),
        chosen: predictions.map((p) => p.label),
      };
      await model.release();
    }
    report("three_labels", out);
  });
