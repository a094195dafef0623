/**
 * A static HTTP server on 127.0.0.1 (an ephemeral port) for the pages and their files, counting what it sends.
 *
 * It serves web/ (the pages, src/, node_modules/) and named mounts (a folder
 * or one file, such as the fixtures a test wrote or a model beside the demo),
 * never a path that leaves them.
 */
import { createReadStream } from "node:fs";
import { realpath, stat } from "node:fs/promises";
import { createServer } from "node:http";
import path from "node:path";

const TYPES = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript",
  ".css": "text/css", ".json": "application/json", ".wasm": "application/wasm", ".png": "image/png",
  ".svg": "image/svg+xml", ".txt": "text/plain; charset=utf-8", ".map": "application/json",
};

/**
 * @param {{root: string, mounts?: Record<string, string>, port?: number}} options mounts: URL prefix -> folder,
 *   or exact URL path -> file; port 0 (the default) takes a free one
 * @returns {Promise<{url: string, served: {path: string, bytes: number, gzip_bytes: number}[], missing: string[],
 *   close: () => Promise<void>}>}
 */
export async function serve({ root, mounts = {}, port = 0 }) {
  const served = [];
  const missing = [];
  const roots = [["/", await realpath(root)]];
  for (const [prefix, target] of Object.entries(mounts)) roots.push([prefix, await realpath(target)]);
  roots.sort((a, b) => b[0].length - a[0].length); // the longest prefix first

  async function resolve(urlPath) {
    for (const [prefix, target] of roots) {
      if (urlPath === prefix && !prefix.endsWith("/")) return target; // a mounted file
      if (!prefix.endsWith("/") || !urlPath.startsWith(prefix)) continue;
      const file = path.join(target, decodeURIComponent(urlPath.slice(prefix.length)));
      const real = await realpath(file).catch(() => null);
      if (real === null || (real !== target && !real.startsWith(target + path.sep))) return null;
      const status = await stat(real);
      if (status.isDirectory()) return resolve(`${urlPath.replace(/\/?$/, "/")}index.html`);
      return real;
    }
    return null;
  }

  const server = createServer(async (request, response) => {
    const urlPath = new URL(request.url, "http://127.0.0.1").pathname;
    const file = await resolve(urlPath).catch(() => null);
    if (file === null || (request.method !== "GET" && request.method !== "HEAD")) {
      missing.push(`${request.method} ${urlPath}`);
      response.writeHead(file === null ? 404 : 405, { "content-type": "text/plain" }).end("not here\n");
      return;
    }
    const { size } = await stat(file);
    response.writeHead(200, {
      "content-type": TYPES[path.extname(file)] ?? "application/octet-stream",
      "content-length": size,
      "cache-control": "no-store",
    });
    if (request.method === "HEAD") {
      response.end();
      return;
    }
    served.push({ path: urlPath, bytes: size, file });
    createReadStream(file).pipe(response);
  });
  await new Promise((done) => server.listen(port, "127.0.0.1", done));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    served,
    missing,
    close: () => new Promise((done) => {
      server.closeAllConnections?.();
      server.close(() => done());
    }),
  };
}

/** `node tools/server.mjs [--model FILE] [--port N]`: serves web/ for the demo (FILE as its model.onnx) until stopped. */
async function main() {
  const args = process.argv.slice(2);
  const option = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
  const webRoot = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
  const model = option("--model");
  const { url } = await serve({ root: webRoot, mounts: model ? { "/demo/model.onnx": model } : {},
    port: Number(option("--port") ?? 0) });
  console.log(`sentilite demo: ${url}/demo/${model ? ` (model.onnx: ${model})` : " (no model.onnx: pick a file)"}`);
  console.log("Ctrl-C stops it.");
}

if (process.argv[1] && path.resolve(process.argv[1]) === new URL(import.meta.url).pathname) await main();
