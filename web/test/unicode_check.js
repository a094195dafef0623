/**
 * Python's answers for every code point against the JavaScript tokenizer's, in Node or in a browser.
 *
 * The Python side (tests/test_web.py) lists, for each of the 1,114,112 code
 * points, what unicodedata.normalize gives in the four forms and what
 * str.lower gives where they change it, which characters let a capital sigma
 * become final (before it and after it), which are words, and which the HTML
 * line break rule takes for a space or a "b", and which the "cjk" rule makes
 * a word alone (between two "a"s: three words). The JavaScript engine's ICU may
 * follow another Unicode version; every difference is listed.
 *
 * Code points are probed 4,096 to a call, each probe between two private-use
 * separators (U+E000; U+F8FF in the block holding U+E000): a private-use
 * character has no decomposition, no case, is not case-ignorable, no word
 * and no space, so no rule reaches across it and every probe reads as it
 * would alone.
 */
import { findWords, lowerCase, normalizeForm, stripHtmlBreaks } from "../src/tokenizer.js";

const LAST_CODE_POINT = 0x10ffff;
const BLOCK = 4096;
const FORMS = ["NFC", "NFD", "NFKC", "NFKD"];
const SIGMA = "\u03a3";
const FINAL_SIGMA = "\u03c2";

const hex = (code) => `U+${code.toString(16).toUpperCase().padStart(4, "0")}`;
const units = (text) => Array.from(text, (c) => hex(c.codePointAt(0))).join(" ");

/** Per probe: how a probe string is made of a character, and what is read off its result. */
const PROBES = {
  lower: { make: (c) => c, run: lowerCase },
  sigma_after_cased: { make: (c) => `A${c}${SIGMA}`, run: lowerCase, read: (out) => out.endsWith(FINAL_SIGMA) },
  sigma_first: { make: (c) => `${c}${SIGMA}`, run: lowerCase, read: (out) => out.endsWith(FINAL_SIGMA) },
  sigma_before: { make: (c) => `A${SIGMA}${c}A`, run: lowerCase, read: (out) => out[1] === FINAL_SIGMA },
  html_space: { make: (c) => `<${c}br>`, run: stripHtmlBreaks, read: (out, probe) => out !== probe },
  html_b: { make: (c) => `<${c}r>`, run: stripHtmlBreaks, read: (out, probe) => out !== probe },
};
for (const form of FORMS) PROBES[form] = { make: (c) => c, run: (text) => normalizeForm(text, form) };

/**
 * @param {object} python the tables tests/test_web.py writes
 * @returns {{checked: number, mismatches: Record<string, number>, examples: string[], seconds: number}}
 */
export function unicodeMismatches(python) {
  const started = performance.now();
  const mismatches = {};
  const examples = [];
  const note = (check, code, got, expected) => {
    mismatches[check] = (mismatches[check] ?? 0) + 1;
    if (examples.length < 40) examples.push(`${check} ${hex(code)}: ${got} != Python ${expected}`);
  };
  const mapped = Object.fromEntries([...FORMS, "lower"].map((name) => [name, new Map(python[name])]));
  const member = {};
  for (const name of ["sigma_after_cased", "sigma_first", "sigma_before", "word", "html_space", "html_b",
    "character_word"]) {
    member[name] = new Uint8Array(LAST_CODE_POINT + 1);
    for (const [start, end] of python[name]) member[name].fill(1, start, end + 1);
  }
  for (let start = 0; start <= LAST_CODE_POINT; start += BLOCK) {
    const separator = start === 0xe000 ? "\uf8ff" : "\ue000";
    const chars = [];
    for (let code = start; code < start + BLOCK; code++) chars.push(String.fromCodePoint(code));
    for (const [name, probe] of Object.entries(PROBES)) {
      const probes = chars.map(probe.make);
      const outs = probe.run(probes.join(separator)).split(separator);
      if (outs.length !== probes.length) throw new Error(`${name}: a separator was changed near ${hex(start)}`);
      outs.forEach((out, i) => {
        const code = start + i;
        if (probe.read) {
          const yes = probe.read(out, probes[i]);
          if (yes !== (member[name][code] === 1)) note(name, code, yes ? "yes" : "no", member[name][code] ? "yes" : "no");
        } else {
          const want = mapped[name].get(code) ?? chars[i];
          if (out !== want) note(name, code, units(out), units(want));
        }
      });
    }
    const words = new Set(findWords(chars.join(separator)).map((word) => word.codePointAt(0)));
    for (let code = start; code < start + BLOCK; code++) {
      if (words.has(code) !== (member.word[code] === 1)) {
        note("word", code, words.has(code) ? "yes" : "no", member.word[code] ? "yes" : "no");
      }
      const alone = findWords(`a${chars[code - start]}a`, "cjk").length === 3;
      if (alone !== (member.character_word[code] === 1)) {
        note("character_word", code, alone ? "yes" : "no", member.character_word[code] ? "yes" : "no");
      }
    }
  }
  return { checked: LAST_CODE_POINT + 1, mismatches, examples, seconds: (performance.now() - started) / 1000 };
}
