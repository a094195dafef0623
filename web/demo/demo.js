// The demo: a sentilite ONNX file in the page, a label and a bar per label as you type.
// The model is ?model=URL, else model.onnx beside the page, else the file the user picks or drops.
import { load } from "../src/index.js";

const $ = (selector) => document.querySelector(selector);
const text = $("#text");
const state = { model: null, running: false, pending: false, lastPredictedText: null, predictions: 0 };
window.demo = state; // read by the test in test/browser/run.mjs

function showError(message) {
  $("#error").textContent = message;
  $("#error").hidden = !message;
}

function describe(model) {
  const { info } = model;
  const kib = (info.bytes / 1024).toFixed(0);
  return `${info.file.split("/").pop()}: ${info.cell ?? "?"} cell, ${info.precision ?? "?"}, ${kib} KiB`
    + `${info.sealed ? ", seal checked" : ""}; labels ${model.labels.join(", ")}`;
}

async function useModel(source, name) {
  $("#model").textContent = `Loading ${name}…`;
  try {
    const model = await load(source, { name });
    const previous = state.model;
    state.model = model;
    previous?.release();
    showError("");
    $("#model").textContent = describe(model);
    document.body.dataset.state = "ready";
    text.disabled = false;
    text.focus();
    renderBars(model.labels);
    predictSoon();
  } catch (error) {
    showError(`${name}: cannot be used (${error.message})`);
    $("#model").textContent = state.model ? describe(state.model) : "No model loaded: choose a sentilite .onnx file.";
    document.body.dataset.state = state.model ? "ready" : "error";
  }
}

function renderBars(labels) {
  $("#bars").replaceChildren(...labels.map((label) => {
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.dataset.label = label;
    bar.innerHTML = '<span class="name"></span><span class="track"><span class="fill"></span></span><span class="value"></span>';
    bar.querySelector(".name").textContent = label;
    return bar;
  }));
}

/** One prediction at a time; typing during one asks for one more, on the text as it is then. */
async function predictSoon() {
  if (!state.model) return;
  if (state.running) {
    state.pending = true;
    return;
  }
  state.running = true;
  try {
    do {
      state.pending = false;
      const current = text.value;
      const [prediction] = await state.model.predict([current]);
      render(prediction, current);
    } while (state.pending);
  } catch (error) {
    showError(error.message);
  } finally {
    state.running = false;
  }
}

function render(prediction, forText) {
  const label = $("#label");
  label.className = `label ${prediction.label}`;
  label.replaceChildren(prediction.label);
  const score = document.createElement("small");
  score.textContent = `${(prediction.score * 100).toFixed(1)}%`;
  label.append(score);
  label.dataset.label = prediction.label;
  for (const bar of document.querySelectorAll(".bar")) {
    const p = prediction.probabilities[bar.dataset.label];
    bar.querySelector(".fill").style.width = `${(p * 100).toFixed(2)}%`;
    bar.querySelector(".value").textContent = `${(p * 100).toFixed(1)}%`;
    bar.dataset.probability = String(p);
  }
  state.lastPredictedText = forText;
  state.predictions++;
}

text.addEventListener("input", predictSoon);
$("#file").addEventListener("change", (event) => {
  const [file] = event.target.files;
  if (file) useModel(file, file.name);
});
document.addEventListener("dragover", (event) => {
  event.preventDefault();
  document.body.classList.add("dragging");
});
document.addEventListener("dragleave", () => document.body.classList.remove("dragging"));
document.addEventListener("drop", (event) => {
  event.preventDefault();
  document.body.classList.remove("dragging");
  const [file] = event.dataTransfer.files;
  if (file) useModel(file, file.name);
});

const requested = new URLSearchParams(location.search).get("model");
if (requested) {
  useModel(new URL(requested, location.href).href, requested);
} else {
  const beside = new URL("model.onnx", location.href).href;
  const found = await fetch(beside, { method: "HEAD" }).then((r) => r.ok, () => false);
  if (found) {
    useModel(beside, "model.onnx");
  } else {
    $("#model").textContent = "No model.onnx beside the page: choose a sentilite .onnx file.";
    document.body.dataset.state = "error";
  }
}
