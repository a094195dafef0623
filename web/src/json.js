/** JSON from outside, read as hostile data: size and nesting are capped before JSON.parse sees it (core/shared/files.py). */

export const MAX_JSON_BYTES = 64 << 20;
/** Nesting a sentilite document never comes near (a manifest is ~5 levels deep). */
export const MAX_JSON_DEPTH = 64;

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * JSON.parse with caps on size and nesting; every failure is `ErrorType` naming `source`.
 *
 * The nesting is measured on the text first, in one pass, so a deep document
 * never reaches JSON.parse (which would overflow the stack on one).
 * @param {string|Uint8Array} data
 * @param {string} source
 * @param {new (message: string) => Error} ErrorType
 */
export function parseJson(data, source, ErrorType, maxBytes = MAX_JSON_BYTES, maxDepth = MAX_JSON_DEPTH) {
  if (data.length > maxBytes) {
    throw new ErrorType(`${source}: ${data.length.toLocaleString("en-US")} bytes of JSON is over the `
      + `${maxBytes.toLocaleString("en-US")}-byte limit`);
  }
  let text = data;
  if (typeof data !== "string") {
    try {
      text = strictUtf8.decode(data);
    } catch {
      throw new ErrorType(`${source}: not valid JSON (not UTF-8)`);
    }
  }
  if (jsonDepth(text, maxDepth) > maxDepth) {
    throw new ErrorType(`${source}: JSON nested more than ${maxDepth} levels deep`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ErrorType(`${source}: not valid JSON (${String(error.message).slice(0, 200)})`);
  }
}

/** The deepest nesting of brackets outside strings; stops counting past `limit`. */
function jsonDepth(text, limit) {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > deepest && (deepest = depth) > limit) return deepest;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return deepest;
}
