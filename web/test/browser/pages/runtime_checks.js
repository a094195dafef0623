// The checks test/browser/run.mjs runs inside the page: the runtime on real files, the tokenizer on Python's fixtures.
import { load, ort } from "../../../src/index.js";
import { hostileMismatches } from "../../ids_check.js";
import { unicodeMismatches } from "../../unicode_check.js";

ort.env.wasm.numThreads = 1;

const getJson = async (url) => (await fetch(url)).json();

/** Each file's P(positive) for every text (all in one predict call, batched as in Python), and the load time. */
export async function probabilities({ files, texts }) {
  const reviews = await getJson(texts);
  const out = {};
  for (const file of files) {
    const started = performance.now();
    const model = await load(file);
    const loaded = performance.now() - started;
    const predictions = await model.predict(reviews);
    out[file] = {
      positive: predictions.map((p) => p.probabilities.positive),
      labels: predictions.map((p) => p.label),
      load_ms: loaded,
      predict_ms: performance.now() - started - loaded,
      info: model.info,
    };
    await model.release();
  }
  return out;
}

/** Each file's labels, and every label's probability (in the file's label order) and the chosen label per text. */
export async function labelled({ files, texts }) {
  const reviews = await getJson(texts);
  const out = {};
  for (const file of files) {
    const model = await load(file);
    const predictions = await model.predict(reviews);
    out[file] = {
      labels: model.labels,
      width: model.width,
      probabilities: predictions.map((p) => model.labels.map((label) => p.probabilities[label])),
      chosen: predictions.map((p) => p.label),
      scores: predictions.map((p) => p.score),
    };
    await model.release();
  }
  return out;
}

/** The row the file reads for each text, against Python's cut rows. */
export async function rows({ file, texts, expected }) {
  const [reviews, want] = [await getJson(texts), await getJson(expected)];
  const model = await load(file);
  let mismatches = 0;
  const examples = [];
  reviews.forEach((text, i) => {
    const row = Array.from(model.encodeOne(text));
    if (row.length !== want[i].length || row.some((id, k) => id !== want[i][k])) {
      mismatches++;
      if (examples.length < 5) examples.push(i);
    }
  });
  await model.release();
  return { texts: reviews.length, mismatches, examples };
}

export const unicode = async ({ tables }) => unicodeMismatches(await getJson(tables));
export const hostile = async ({ fixture }) => hostileMismatches(await getJson(fixture));

// Timing in turns (test/browser/run.mjs): every file loaded and warmed up first, then the reviews in blocks, each
// block timed on every file (and on MediaPipe's page) before the next, so a drift in the machine's pace reaches all.
const timed = { models: {}, reviews: [] };

/** Loads the files and runs `warmup` reviews through each; gives the number of reviews. */
export async function timingSetup({ files, texts, warmup = 20 }) {
  timed.reviews = await getJson(texts);
  for (const file of files) {
    timed.models[file] = await load(file);
    for (const text of timed.reviews.slice(0, warmup)) await timed.models[file].predict([text]);
  }
  return timed.reviews.length;
}

/** Per file, milliseconds of each `predict([text])` on reviews start..end, one review a call. */
export async function timingBlock({ start, end }) {
  const out = {};
  for (const [file, model] of Object.entries(timed.models)) {
    out[file] = [];
    for (const text of timed.reviews.slice(start, end)) {
      const started = performance.now();
      await model.predict([text]);
      out[file].push(performance.now() - started);
    }
  }
  return out;
}

export const engine = "onnxruntime-web (wasm, 1 thread)";

/** A 100,000-character paste: the time to the label, which the tokenizer's bounds keep short. */
export async function longText({ file }) {
  const model = await load(file);
  const text = "This film was wonderful, moving and well acted. ".repeat(2100).slice(0, 100_000);
  const started = performance.now();
  const [prediction] = await model.predict([text]);
  const ms = performance.now() - started;
  const huge = "dull ".repeat(1_000_000); // 5 MB: cut to max_chars before anything else
  const hugeStarted = performance.now();
  const [hugePrediction] = await model.predict([huge]);
  await model.release();
  return { chars: text.length, ms, label: prediction.label, huge_chars: huge.length,
    huge_ms: performance.now() - hugeStarted, huge_label: hugePrediction.label };
}
