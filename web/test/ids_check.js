/**
 * The ids Python's tokenizer gave for hand-picked hostile texts, against this tokenizer's, in Node or a browser.
 *
 * tests/test_web.py writes the fixture: tokenizer documents (one vocabulary
 * under several settings, and a hand-written one) and cases, each a text
 * (or UTF-8 bytes, base64) with Python's unpadded ids, padded row and cut row
 * for every tokenizer.
 */
import { Tokenizer, cutRow } from "../src/tokenizer.js";

function fromBase64(text) {
  const binary = atob(text);
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

const same = (a, b) => a.length === b.length && Array.prototype.every.call(a, (x, i) => x === b[i]);

/**
 * @param {{tokenizers: object[], cases: {name: string, text?: string, bytes?: string,
 *   expected: {ids: number[], row: number[], cut: number[]}[]}[]}} fixture
 * @returns {{cases: number, mismatches: string[]}}
 */
export function hostileMismatches(fixture) {
  const tokenizers = fixture.tokenizers.map((doc, i) => Tokenizer.fromObject(doc, `tokenizer ${i}`));
  const mismatches = [];
  let cases = 0;
  for (const c of fixture.cases) {
    const input = c.bytes === undefined ? c.text : fromBase64(c.bytes);
    tokenizers.forEach((tokenizer, t) => {
      const want = c.expected[t];
      const ids = tokenizer.encode(input);
      const got = { ids, row: tokenizer.encodeBatch([input]), cut: cutRow(ids, tokenizer.config) };
      for (const what of ["ids", "row", "cut"]) {
        if (!same(got[what], want[what])) {
          mismatches.push(`${c.name} (tokenizer ${t}): ${what} ${JSON.stringify(Array.from(got[what]).slice(0, 12))}`
            + ` != Python ${JSON.stringify(want[what].slice(0, 12))}`);
        }
      }
      cases++;
    });
  }
  return { cases, mismatches };
}
