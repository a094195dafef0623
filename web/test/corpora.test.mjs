// Every text of every data set (tests/test_web.py writes them with Python's ids): the same ids, text for text.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { Tokenizer } from "../src/tokenizer.js";
import { fixture, readJson, report } from "./fixtures.js";

function int32s(file) {
  const bytes = readFileSync(file);
  return new Int32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** The texts of one fixture (`${prefix}_texts.json`, ...) against Python's ids; the figures go to `report`. */
function compare(prefix, reportName) {
  const started = performance.now();
  const tokenizer = Tokenizer.fromJSON(readFileSync(fixture(`${prefix}_tokenizer.json`)), `${prefix}_tokenizer.json`);
  const texts = readJson(fixture(`${prefix}_texts.json`));
  const sets = readJson(fixture(`${prefix}_sets.json`));
  const ids = int32s(fixture(`${prefix}_ids.i32`));
  const offsets = int32s(fixture(`${prefix}_offsets.i32`));
  assert.equal(offsets.length, texts.length + 1);
  const perSet = {};
  const examples = [];
  let mismatched = 0;
  let index = 0;
  for (const [name, count] of Object.entries(sets)) {
    let bad = 0;
    for (let end = index + count; index < end; index++) {
      const got = tokenizer.encode(texts[index]);
      const want = ids.subarray(offsets[index], offsets[index + 1]);
      if (got.length !== want.length || got.some((id, k) => id !== want[k])) {
        bad++;
        if (examples.length < 10) {
          const at = got.findIndex((id, k) => id !== want[k]);
          examples.push({ set: name, text: index, at, js: tokenizer.vocabulary[got[at]],
            python: tokenizer.vocabulary[want[at]] });
        }
      }
    }
    perSet[name] = { texts: count, mismatches: bad };
    mismatched += bad;
  }
  report(reportName, { texts: texts.length, ids: ids.length, mismatched_texts: mismatched, per_set: perSet, examples,
    seconds: (performance.now() - started) / 1000, character_words: tokenizer.config.character_words });
  assert.equal(mismatched, 0, JSON.stringify(examples));
}

test("Python's ids on every text of every data set", { skip: !fixture("corpus_texts.json") && "no fixture" },
  () => compare("corpus", "corpora"));

test("Python's ids under the \"cjk\" rule on the Chinese set",
  { skip: !fixture("cjk_corpus_texts.json") && "no fixture" }, () => compare("cjk_corpus", "cjk_corpora"));
