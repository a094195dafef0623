/** Where tests/test_web.py put the fixtures for the Node tests ($SENTILITE_WEB_FIXTURES), and where figures go back. */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

export const FIXTURES = process.env.SENTILITE_WEB_FIXTURES;

/** The path of a fixture file, or undefined when Python has not written it (the test is then skipped). */
export function fixture(name) {
  if (!FIXTURES) return undefined;
  const file = path.join(FIXTURES, name);
  return existsSync(file) ? file : undefined;
}

export const readJson = (file) => JSON.parse(readFileSync(file, "utf8"));

/** Figures a test measured, for tests/test_web.py to read and report. */
export function report(name, figures) {
  if (!FIXTURES) return;
  const folder = path.join(FIXTURES, "results");
  mkdirSync(folder, { recursive: true });
  writeFileSync(path.join(folder, `${name}.json`), JSON.stringify(figures, null, 1));
}
