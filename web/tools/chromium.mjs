/**
 * Headless Chromium for the tests and the benchmark: Debian's /usr/bin/chromium driven by puppeteer-core,
 * offline, with a fresh profile; every request to anything but the local server is refused and recorded.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import puppeteer from "puppeteer-core";

export const CHROMIUM = process.env.SENTILITE_CHROMIUM ?? "/usr/bin/chromium";
export const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--disable-dev-shm-usage", "--no-default-browser-check", "--disable-extensions",
];

/**
 * @param {string} origin the local server's, the one address pages may reach
 * @returns {Promise<{browser: import("puppeteer-core").Browser, open: (url: string) => Promise<import("puppeteer-core").Page>,
 *   refused: {page: string, url: string}[], logs: string[], version: string, close: () => Promise<void>}>}
 */
export async function launch(origin) {
  const profile = await mkdtemp(path.join(tmpdir(), "sentilite-chromium-"));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    ignoreDefaultArgs: true,
    args: [...FLAGS, `--user-data-dir=${profile}`, "about:blank"],
    pipe: true,
    protocolTimeout: 600_000,
  });
  const refused = [];
  const logs = [];

  /** A new tab that may reach `origin` alone, at `url`. */
  async function open(url) {
    const page = await browser.newPage();
    await page.setRequestInterception(true);
    page.on("request", (request) => {
      const target = request.url();
      if (target.startsWith(`${origin}/`) || target.startsWith("data:") || target.startsWith("blob:")) {
        request.continue();
      } else {
        refused.push({ page: url.replace(origin, ""), url: target });
        request.abort("blockedbyclient");
      }
    });
    page.on("console", (message) => logs.push(`${message.type()}: ${message.text()}`));
    page.on("pageerror", (error) => logs.push(`pageerror: ${error.message}`));
    await page.goto(url, { waitUntil: "load" });
    return page;
  }

  return {
    browser,
    open,
    refused,
    logs,
    version: await browser.version(),
    close: async () => {
      await browser.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}
