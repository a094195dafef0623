/**
 * Runs the browser checks a plan names in one headless Chromium, and writes what they measured.
 *
 *     node test/browser/run.mjs --plan plan.json --out results.json
 *
 * tests/test_web.py writes the plan and its fixtures (model files, reviews,
 * Python's numbers) and judges the results; web/bench/web_bench.py uses the
 * timing checks. Pages are served from 127.0.0.1 alone, and every request to
 * any other address is refused and listed in the results.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";

import { launch } from "../../tools/chromium.mjs";
import { serve } from "../../tools/server.mjs";

const WEB = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const POSITIVE = "What a wonderful film! The acting is superb, the story moving, and I loved every minute of it.";
const NEGATIVE = "A dull, boring mess. The plot makes no sense, the acting is awful and it was a waste of time.";

async function openChecks(chrome, url) {
  const page = await chrome.open(url);
  await page.waitForSelector("body[data-ready=yes]");
  return page;
}

const inPage = (page, name, args) => page.evaluate((n, a) => window.checks[n](a), name, args);

async function timed(results, name, run) {
  const started = performance.now();
  results[name] = await run();
  results.seconds[name] = (performance.now() - started) / 1000;
}

/**
 * One review a call, in turns: the ONNX files in the runtime's page and model.mediapipe.tflite in MediaPipe's,
 * every engine on a block of reviews before the next block (`rounds` blocks).
 * @returns {Promise<Record<string, {engine: string, ms: number[]}>>}
 */
async function timing(chrome, server, { files = [], mediapipe_files: mediapipeFiles = [], texts, warmup, rounds = 5 }) {
  const pages = [];
  for (const [page, list] of [["runtime", files], ["mediapipe", mediapipeFiles]]) {
    if (!list.length) continue;
    const opened = await openChecks(chrome, `${server.url}/test/browser/pages/${page}.html`);
    const count = await inPage(opened, "timingSetup", { files: list, texts, warmup });
    pages.push({ page: opened, count, engine: await opened.evaluate(() => window.checks.engine) });
  }
  const out = {};
  const count = pages[0].count;
  for (let round = 0; round < rounds; round++) {
    const block = { start: Math.floor((round * count) / rounds), end: Math.floor(((round + 1) * count) / rounds) };
    for (const { page, engine } of pages) {
      await page.bringToFront(); // a tab in the background may have its timers throttled
      for (const [file, ms] of Object.entries(await inPage(page, "timingBlock", block))) {
        out[file] ??= { engine, ms: [] };
        out[file].ms.push(...ms);
      }
    }
  }
  for (const { page } of pages) await page.close();
  return out;
}

/** The demo page opened until its model answers: the time, and every file it fetched (as served and gzipped). */
async function openDemo(chrome, server) {
  const firstRequest = server.served.length;
  const started = performance.now();
  const page = await chrome.open(`${server.url}/demo/`);
  await page.waitForSelector("body[data-state=ready]", { timeout: 120_000 });
  const out = { ready_ms: performance.now() - started };
  out.download = server.served.slice(firstRequest).map(({ path: where, bytes, file }) => ({
    path: where, bytes, gzip_bytes: gzipSync(readFileSync(file), { level: 9 }).length,
  }));
  out.download_bytes = out.download.reduce((sum, r) => sum + r.bytes, 0);
  out.download_gzip_bytes = out.download.reduce((sum, r) => sum + r.gzip_bytes, 0);
  out.model_line = await page.$eval("#model", (e) => e.textContent);
  return { page, out };
}

async function download(chrome, server) {
  const { page, out } = await openDemo(chrome, server);
  await page.close();
  return out;
}

/** The demo as a user meets it: load, type two reviews, paste a long text, drop a file that is not a model. */
async function demo(chrome, server, plan) {
  const { page, out } = await openDemo(chrome, server);
  await page.setOfflineMode(true); // from here on the page must not need the network

  const predicted = () => page.waitForFunction(() => window.demo.lastPredictedText === document.querySelector("#text").value
    && !window.demo.running, { timeout: 120_000 });
  const read = () => page.evaluate(() => ({
    label: document.querySelector("#label").dataset.label,
    shown: document.querySelector("#label").textContent,
    bars: Object.fromEntries([...document.querySelectorAll(".bar")].map((b) => [b.dataset.label, Number(b.dataset.probability)])),
  }));
  const clear = () => page.evaluate(() => {
    const text = document.querySelector("#text");
    text.value = "";
    text.dispatchEvent(new Event("input"));
  });

  await page.click("#text");
  await page.keyboard.type(plan.positive ?? POSITIVE);
  await predicted();
  out.positive = { text: plan.positive ?? POSITIVE, ...(await read()) };
  if (plan.screenshot) {
    await page.setViewport({ width: 900, height: 700, deviceScaleFactor: 1 });
    await new Promise((done) => setTimeout(done, 400)); // the bars' transition
    const box = await (await page.$("main")).boundingBox();
    const margin = 24;
    await page.screenshot({ path: plan.screenshot, clip: { x: box.x - margin, y: box.y - margin,
      width: box.width + 2 * margin, height: box.height + 2 * margin } });
    out.screenshot = plan.screenshot;
  }
  await clear();
  await predicted();
  await page.keyboard.type(plan.negative ?? NEGATIVE);
  await predicted();
  out.negative = { text: plan.negative ?? NEGATIVE, ...(await read()) };

  // A 100,000-character paste, then one more key: both answered, the paste in bounded time.
  const pasted = await page.evaluate(() => {
    const text = document.querySelector("#text");
    text.value = "I hated it, a boring and dull film. ".repeat(3000).slice(0, 100_000);
    const started = performance.now();
    text.dispatchEvent(new Event("input"));
    return { chars: text.value.length, started };
  });
  await predicted();
  out.paste = { chars: pasted.chars, ms: await page.evaluate((t) => performance.now() - t, pasted.started), ...(await read()) };
  await page.keyboard.type("!");
  await predicted();
  out.after_paste = await read();

  // A file that is not a model, dropped on the page: a clear error, and the loaded model still answers.
  await page.evaluate((name, content) => {
    const transfer = new DataTransfer();
    transfer.items.add(new File([content], name, { type: "text/plain" }));
    document.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
  }, "notes.txt", "These are my notes, not a model.");
  await page.waitForSelector("#error:not([hidden])", { timeout: 60_000 });
  out.dropped_error = await page.$eval("#error", (e) => e.textContent);
  await clear();
  await page.keyboard.type(plan.positive ?? POSITIVE);
  await predicted();
  out.after_drop = await read();

  // The file picker, offline: a model file read from disk.
  if (plan.pick) {
    const input = await page.$("#file");
    await input.uploadFile(plan.pick);
    await page.waitForFunction((name) => document.querySelector("#model").textContent.startsWith(`${name}:`),
      { timeout: 120_000 }, path.basename(plan.pick));
    await predicted();
    out.picked = { model_line: await page.$eval("#model", (e) => e.textContent), ...(await read()) };
  }
  await page.close();
  return out;
}

async function main() {
  const args = process.argv.slice(2);
  const option = (name) => args[args.indexOf(name) + 1];
  const plan = JSON.parse(readFileSync(option("--plan"), "utf8"));
  const mounts = { ...(plan.mounts ?? {}) };
  const server = await serve({ root: WEB, mounts });
  const results = { seconds: {} };
  const started = performance.now();
  const chrome = await launch(server.url);
  results.chromium = chrome.version;
  results.seconds.launch = (performance.now() - started) / 1000;
  try {
    const checks = plan.checks;
    const runtimeNames = ["unicode", "hostile", "rows", "probabilities", "labelled", "long_text"]
      .filter((n) => checks[n]);
    if (runtimeNames.length) {
      const page = await openChecks(chrome, `${server.url}/test/browser/pages/runtime.html`);
      for (const name of runtimeNames) {
        await timed(results, name, () => inPage(page, name === "long_text" ? "longText" : name, checks[name]));
      }
      await page.close();
    }
    if (checks.mediapipe) {
      const page = await openChecks(chrome, `${server.url}/test/browser/pages/mediapipe.html`);
      await timed(results, "mediapipe", () => inPage(page, "probabilities", checks.mediapipe));
      await page.close();
    }
    if (checks.timing) await timed(results, "timing", () => timing(chrome, server, checks.timing));
    if (checks.demo) await timed(results, "demo", () => demo(chrome, server, checks.demo));
    if (checks.download) await timed(results, "download", () => download(chrome, server));
  } finally {
    results.refused_requests = chrome.refused;
    results.not_found = server.missing;
    results.console = chrome.logs.filter((line) => !line.startsWith("debug:")).slice(0, 200);
    await chrome.close();
    await server.close();
    results.seconds.total = (performance.now() - started) / 1000;
    writeFileSync(option("--out"), JSON.stringify(results));
  }
}

await main();
