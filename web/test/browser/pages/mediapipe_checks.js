// model.mediapipe.tflite in @mediapipe/tasks-text's TextClassifier (CPU, wasm), served from node_modules: what an app
// that uses MediaPipe's own client gets, one text a call.
import { FilesetResolver, TextClassifier } from "/node_modules/@mediapipe/tasks-text/text_bundle.mjs";

const WASM = "/node_modules/@mediapipe/tasks-text/wasm";

async function classifier(file) {
  const fileset = await FilesetResolver.forTextTasks(WASM);
  return TextClassifier.createFromOptions(fileset, { baseOptions: { modelAssetPath: file, delegate: "CPU" } });
}

/** P(positive) per text and per file, the category names seen, and the largest |sum of scores - 1|. */
export async function probabilities({ files, texts }) {
  const reviews = await (await fetch(texts)).json();
  const out = {};
  for (const file of files) {
    const started = performance.now();
    const model = await classifier(file);
    const loaded = performance.now() - started;
    const positive = [];
    const names = new Set();
    let worstSum = 0;
    for (const text of reviews) {
      const categories = model.classify(text).classifications[0].categories;
      let sum = 0;
      for (const c of categories) {
        names.add(c.categoryName);
        sum += c.score;
      }
      worstSum = Math.max(worstSum, Math.abs(sum - 1));
      positive.push(categories.find((c) => c.categoryName === "positive").score);
    }
    out[file] = { positive, categories: [...names].sort(), max_sum_error: worstSum, load_ms: loaded,
      classify_ms: performance.now() - started - loaded };
    model.close();
  }
  return out;
}

// Timing in turns, as runtime_checks.js: set up once, then blocks of reviews.
const timed = { models: {}, reviews: [] };

export async function timingSetup({ files, texts, warmup = 20 }) {
  timed.reviews = await (await fetch(texts)).json();
  for (const file of files) {
    timed.models[file] = await classifier(file);
    for (const text of timed.reviews.slice(0, warmup)) timed.models[file].classify(text);
  }
  return timed.reviews.length;
}

/** Per file, milliseconds of each classify(text) on reviews start..end, one review a call. */
export async function timingBlock({ start, end }) {
  const out = {};
  for (const [file, model] of Object.entries(timed.models)) {
    out[file] = [];
    for (const text of timed.reviews.slice(start, end)) {
      const started = performance.now();
      model.classify(text);
      out[file].push(performance.now() - started);
    }
  }
  return out;
}

export const engine = "MediaPipe TextClassifier (wasm, CPU)";
