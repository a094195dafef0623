/**
 * A file's own checksum (core/shared/seal.py): checked before any engine parses the bytes.
 *
 * ONNX and TFLite files carry `sentilite.seal`: the sha256 of the whole file
 * as written with 64 zeros in the seal's place.
 */
import { sha256Hex } from "./sha256.js";

export const SEAL_KEY = "sentilite.seal";
const MARKER = new TextEncoder().encode(SEAL_KEY);
const PLACEHOLDER = new TextEncoder().encode("0".repeat(64));
const MAX_GAP = 4; // bytes between the key and its value: '":"' in JSON, a tag and a length in protobuf

/** The first index of `needle` in `haystack`, or -1. */
function indexOfBytes(haystack, needle) {
  const first = needle[0];
  const last = haystack.length - needle.length;
  for (let i = haystack.indexOf(first); i >= 0 && i <= last; i = haystack.indexOf(first, i + 1)) {
    let j = 1;
    while (j < needle.length && haystack[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}

const isHexDigit = (byte) => (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x66);

/**
 * True when the file carries a seal and it matches; `ErrorType` when it does not; false for unsealed files.
 * @param {Uint8Array} content
 * @param {string} source
 * @param {new (message: string) => Error} ErrorType
 * @returns {Promise<boolean>}
 */
export async function checkSeal(content, source, ErrorType) {
  const at = indexOfBytes(content, MARKER);
  if (at < 0) return false; // written before seals (sentilite 0.1), or by another tool
  const after = at + MARKER.length;
  let start = -1;
  for (let p = after; p <= after + MAX_GAP && p + 64 <= content.length; p++) {
    let n = 0;
    while (n < 64 && isHexDigit(content[p + n])) n++;
    if (n === 64) {
      start = p;
      break;
    }
  }
  if (start < 0) throw new ErrorType(`${source}: the file is damaged: its ${SEAL_KEY} value is not a sha256`);
  const recorded = new TextDecoder().decode(content.subarray(start, start + 64));
  if (recorded === "0".repeat(64)) return false; // written with the key but never sealed
  const zeroed = content.slice();
  zeroed.set(PLACEHOLDER, start);
  if (await sha256Hex(zeroed) !== recorded) {
    throw new ErrorType(`${source}: the file is damaged: its content does not match the sha256 it was sealed with`);
  }
  return true;
}
