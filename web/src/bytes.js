/**
 * A stream read to its end into one byte array, with a cap: a hostile file or a zlib bomb is refused after
 * `limit` bytes of work, not after all of it.
 * @param {ReadableStreamDefaultReader<Uint8Array>} reader
 * @param {number} limit
 * @param {(total: number) => never} tooLarge called (and must throw) once the bytes read pass `limit`
 * @returns {Promise<Uint8Array>}
 */
export async function readAllCapped(reader, limit, tooLarge) {
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > limit) {
      await reader.cancel();
      tooLarge(total);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}
