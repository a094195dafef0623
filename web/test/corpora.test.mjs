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

test("Python's ids on every text of every data set", { skip: !fixture("corpus_texts.json") && "no fixture" }, () => {
  const started = performance.now();
  const tokenizer = Tokenizer.fromJSON(readFileSync(fixture("corpus_tokenizer.json")), "corpus_tokenizer.json");
  const texts = readJson(fixture("corpus_texts.json"));
  const sets = readJson(fixture("corpus_sets.json"));
  const ids = int32s(fixture("corpus_ids.i32"));
  const offsets = int32s(fixture("corpus_offsets.i32"));
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
  report("corpora", { texts: texts.length, ids: ids.length, mismatched_texts: mismatched, per_set: perSet, examples,
    seconds: (performance.now() - started) / 1000 });
  assert.equal(mismatched, 0, JSON.stringify(examples));
});
