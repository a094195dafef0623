"""`make web-bench`: one review at a time, in headless Chromium and in Python, on the same machine in one run.

Times onnxruntime-web (wasm, one thread) on the package's ONNX files and
MediaPipe's web TextClassifier on model.mediapipe.tflite, both in headless
Chromium (web/test/browser/run.mjs), and the Python runtime
(sentilite.runtime, onnxruntime, one thread) on the same ONNX files and
reviews, half before the browser and half after it, so a drift in the
machine's pace reaches both. Also gives the demo page's download (JavaScript,
wasm and model, in bytes) and the time of a 100,000-character text. Writes
web_bench.json and web_bench.md; nothing here is asserted.

    .venv/bin/python web/bench/web_bench.py --model artifacts/gru --reviews 500 --out artifacts
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WEB = Path(__file__).resolve().parents[1]
ONNX_FILES = ("model.fp32.onnx", "model.dynamic-int8.onnx", "model.int8.onnx")
MEDIAPIPE_FILE = "model.mediapipe.tflite"
WARMUP = 20
ROUNDS = 5  # the browser's engines take turns on blocks of the reviews


def python_latencies(path: Path, texts: list[str]) -> list[float]:
    from sentilite.runtime.model import load

    model = load(path, num_threads=1)
    for text in texts[:WARMUP]:
        model.predict_proba([text])
    out = []
    for text in texts:
        started = time.perf_counter()
        model.predict_proba([text])
        out.append((time.perf_counter() - started) * 1000)
    return out


def summary(ms: list[float]) -> dict:
    values = np.asarray(ms)
    return {"reviews": len(values), "p50_ms": round(float(np.median(values)), 4),
            "p99_ms": round(float(np.percentile(values, 99)), 4), "mean_ms": round(float(values.mean()), 4)}


def run_browser(model: Path, texts: list[str], tmp: Path) -> dict:
    (tmp / "reviews.json").write_text(json.dumps(texts, ensure_ascii=True), encoding="ascii")
    files = [f"/model/{name}" for name in ONNX_FILES if (model / name).exists()]
    mediapipe = [f"/model/{MEDIAPIPE_FILE}"] if (model / MEDIAPIPE_FILE).exists() else []
    checks = {"timing": {"files": files, "mediapipe_files": mediapipe, "texts": "/fixtures/reviews.json",
                         "warmup": WARMUP, "rounds": ROUNDS},
              "long_text": {"file": files[0]}, "download": {}}
    plan = {"mounts": {"/fixtures/": str(tmp), "/model/": str(model.resolve()),
                       "/demo/model.onnx": str((model / ONNX_FILES[0]).resolve())}, "checks": checks}
    (tmp / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
    subprocess.run(["node", "test/browser/run.mjs", "--plan", str(tmp / "plan.json"), "--out", str(tmp / "out.json")],
                   cwd=WEB, check=True, timeout=3600)
    return json.loads((tmp / "out.json").read_text(encoding="utf-8"))


def markdown(result: dict) -> str:
    lines = [f"Headless {result['chromium']} and Python {result['python']} on this machine, one review a call, "
             f"{result['reviews']} IMDB test reviews after {WARMUP} warm-up calls; the browser's engines in turns "
             f"on {ROUNDS} blocks, Python on half of them before the browser and half after.", "",
             "| engine | file | p50 ms | p99 ms | mean ms |", "|---|---|---:|---:|---:|"]
    for row in result["rows"]:
        lines.append(f"| {row['engine']} | {row['file']} | {row['p50_ms']:.3f} | {row['p99_ms']:.3f} | "
                     f"{row['mean_ms']:.3f} |")
    download = result["download"]
    lines += ["", f"Demo page download (HTML, CSS, JavaScript, wasm, {ONNX_FILES[0]}): "
              f"{download['download_bytes']:,} bytes as served, {download['download_gzip_bytes']:,} gzipped.", ""]
    lines += ["| file | bytes | gzip bytes |", "|---|---:|---:|"]
    lines += [f"| {r['path']} | {r['bytes']:,} | {r['gzip_bytes']:,} |" for r in download["download"]]
    long_text = result["long_text"]
    lines += ["", f"A {long_text['chars']:,}-character text: {long_text['ms']:.1f} ms to its label; "
              f"a {long_text['huge_chars']:,}-character one: {long_text['huge_ms']:.1f} ms."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="an exported package folder (artifacts/gru)")
    parser.add_argument("--reviews", type=int, default=500)
    parser.add_argument("--out", type=Path, required=True, help="folder for web_bench.json and web_bench.md")
    args = parser.parse_args(argv)

    from sentilite.train.data import load_imdb, subset

    imdb = load_imdb(os.environ.get("IMDB_DATA"), progress=False)
    texts = subset(imdb.test, args.reviews, seed=5).texts
    half = len(texts) // 2
    python = {name: python_latencies(args.model / name, texts[:half]) for name in ONNX_FILES}
    with tempfile.TemporaryDirectory(prefix="sentilite-web-bench-") as tmp:
        browser = run_browser(args.model, texts, Path(tmp))
    for name in ONNX_FILES:
        python[name] += python_latencies(args.model / name, texts[half:])
    rows = [{"engine": "Python runtime (onnxruntime, 1 thread)", "file": name, **summary(ms)} for name, ms in python.items()]
    for file, timing in browser["timing"].items():
        rows.append({"engine": f"Chromium: {timing['engine']}", "file": file.split("/")[-1], **summary(timing["ms"])})
    result = {"chromium": browser["chromium"], "python": sys.version.split()[0], "reviews": len(texts), "rows": rows,
              "download": browser["download"], "long_text": browser["long_text"], "model": str(args.model),
              "refused_requests": browser["refused_requests"]}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "web_bench.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    (args.out / "web_bench.md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
