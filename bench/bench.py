"""`sentilite bench`: speed, size, memory and start-up of every file against its Keras model.

Everything is measured in one run on one machine, and the report leads with
ratios to the Keras baseline measured in the same run: absolute times on a
shared machine are noisy, ratios much less so, and less still when the
baseline and the files take turns on the same stretch of time.
"""
from __future__ import annotations

import importlib.metadata as md
import logging
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sentilite.runtime.model import MANIFEST_FILE, read_manifest, run_batches
from sentilite.shared.charts import grouped_bars
from sentilite.shared.config import check_int
from sentilite.shared.files import atomic_write_json, atomic_write_text


@dataclass(frozen=True)
class BenchConfig:
    latency_reviews: int = 1000  # single reviews timed one by one, after the warm-up
    warmup_reviews: int = 50
    throughput_reviews: int = 2048
    throughput_batch: int = 256
    cold_start_runs: int = 5
    whole_row_reviews: int = 300  # latency also timed on whole (padded) rows, for the breakdown
    # The one-review latencies of a cell's Keras model and files are timed in turns: the reviews in
    # this many blocks, every engine on each block before the next. This machine's pace drifts
    # (stretches of 20-30% faster reviews were seen); in turns, a drift reaches Keras and files alike.
    latency_rounds: int = 5
    cells: tuple[str, ...] | None = None  # None = every package found

    def __post_init__(self) -> None:
        for name in ("latency_reviews", "throughput_reviews", "throughput_batch", "cold_start_runs",
                     "whole_row_reviews", "latency_rounds"):
            check_int("BenchConfig", name, getattr(self, name), 1)
        check_int("BenchConfig", "warmup_reviews", self.warmup_reviews, 0)


# Peak memory is VmHWM from /proc: it starts afresh at exec, while ru_maxrss
# keeps the forking parent's peak (here a process with TensorFlow loaded).
_PEAK_RSS = "int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) / 1024"

_COLD_RUNTIME = """
import sys, time
start = time.perf_counter()
from sentilite.runtime import load
model = load(sys.argv[1], backend=sys.argv[2] or None, num_threads=1)
model.predict(["A wonderful film."])
print(time.perf_counter() - start, PEAK_RSS)
""".replace("PEAK_RSS", _PEAK_RSS)

_COLD_KERAS = """
import os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
start = time.perf_counter()
import sentilite.train.model as m
from sentilite.runtime import Tokenizer
model = m.load_keras_model(sys.argv[1])
tok = Tokenizer.from_file(sys.argv[2])
model(tok.encode_batch(["A wonderful film."]), training=False)
print(time.perf_counter() - start, PEAK_RSS)
""".replace("PEAK_RSS", _PEAK_RSS)


def _cold_start(code: str, args: list[str], runs: int) -> tuple[float, float, list[float]]:
    times, rss = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)
        wall = time.perf_counter() - t0
        if result.returncode != 0:
            raise RuntimeError(f"cold start failed: {result.stderr[-1500:]}")
        _, peak = result.stdout.split()[-2:]
        times.append(wall)
        rss.append(float(peak))
    return statistics.median(times), statistics.median(rss), times


def _latencies(predict_one, texts) -> np.ndarray:
    out = np.empty(len(texts))
    for i, text in enumerate(texts):
        t0 = time.perf_counter()
        predict_one(text)
        out[i] = time.perf_counter() - t0
    return out * 1000.0


def _interleaved_latencies(engines: dict, texts, warm_texts, rounds: int) -> dict:
    """ms per text for each engine (name -> one-text callable), timed in turns.

    The texts are cut into ``rounds`` blocks; each block is timed on every
    engine before the next block starts, the engines' order turning by one
    each round. Every engine sees every text once, and a slow or fast
    stretch of the machine falls on all of them. Before its turn an engine
    answers a few ``warm_texts`` untimed, so the switch from another engine
    does not land in its timings.
    """
    names = list(engines)
    out = {name: np.empty(len(texts)) for name in names}
    bounds = np.linspace(0, len(texts), max(1, min(rounds, len(texts))) + 1).astype(int)
    for round_index, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            for text in warm_texts:
                engines[name](text)
            out[name][start:stop] = _latencies(engines[name], texts[start:stop])
    return out


def _split_latencies(encode_one, engine, texts) -> dict:
    """p50 of tokenizing alone and of the engine alone on the rows it made, timed apart.

    Together they show what bounds a speed-up: the engine's share of a
    review cannot fall under its time here however fast the tokenizer gets.
    (Timed apart, each runs with warm caches, so the two add up to a little
    less than the whole call.)
    """
    encoded = [encode_one(t) for t in texts]
    return {"latency_ms_p50_tokenize": round(float(np.median(_latencies(encode_one, texts))), 4),
            "latency_ms_p50_engine": round(float(np.median(_latencies(engine, encoded))), 4)}


def _throughput(predict_batch, texts, batch: int) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(texts), batch):
        predict_batch(texts[i: i + batch])
    return len(texts) / (time.perf_counter() - t0)


def _dist_closure(names: list[str]) -> set[str]:
    seen, todo = set(), list(names)
    while todo:
        name = re.split(r"[ ;<>=!~\[]", todo.pop(), maxsplit=1)[0].lower().replace("_", "-")
        if not name or name in seen:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        seen.add(name)
        for req in dist.requires or []:
            if "extra ==" not in req:
                todo.append(req)
    return seen


def install_mb(names: list[str]) -> float:
    """Installed size of these distributions and everything they require, in MB."""
    total = 0
    for name in _dist_closure(names):
        dist = md.distribution(name)
        for f in dist.files or []:
            try:
                total += os.path.getsize(dist.locate_file(f))
            except OSError:
                pass
    return round(total / 1e6, 1)


def run_bench(root: str | os.PathLike, config: BenchConfig = BenchConfig(), data=None, progress: bool = True) -> dict:
    import tensorflow as tf

    from sentilite.runtime import Tokenizer, load
    from sentilite.train.data import load_imdb
    from sentilite.train.model import load_keras_model

    root = Path(root)
    log = logging.getLogger("sentilite.bench").info if progress else (lambda m: None)
    try:  # one thread, like the runtime rows; impossible once TensorFlow has run in this process
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass
    keras_threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    data = data if data is not None else load_imdb(None, progress=progress)
    n_latency = config.latency_reviews + config.warmup_reviews
    texts = data.test.texts[:max(n_latency, config.throughput_reviews)]
    sizes = {
        "keras": install_mb(["tensorflow", "keras"]),
        "onnxruntime": install_mb(["numpy", "onnxruntime"]),
        "litert": install_mb(["numpy", "ai-edge-litert"]),
        "numpy": install_mb(["numpy"]),
    }
    rows = []
    for manifest_path in sorted(root.glob(f"*/{MANIFEST_FILE}")):
        folder = manifest_path.parent
        manifest = read_manifest(folder)
        cell = manifest["cell"]
        if config.cells and cell not in config.cells:
            continue
        tokenizer = Tokenizer.from_file(folder / manifest["tokenizer"]["file"])
        keras_model = load_keras_model(folder / manifest["source"]["file"])
        call = tf.function(lambda ids: keras_model(ids, training=False))
        keras_engines = {"tf.function": lambda ids, call=call: call(ids).numpy(),
                         "model.predict": lambda ids, model=keras_model: model.predict(ids, verbose=0)}

        def keras_encode_one(text, tokenizer=tokenizer):  # the whole padded row Keras reads
            return tokenizer.encode_batch([text])

        def keras_call(batch, engine=keras_engines["tf.function"]):
            return engine(tokenizer.encode_batch(batch))

        # The faster of the two usual Keras paths for one review is the baseline; model.predict is
        # 20x slower, so the choice is made on at most 200 reviews and only the winner is timed in turns.
        timed = texts[config.warmup_reviews: config.warmup_reviews + config.latency_reviews]
        probe = timed[: min(200, len(timed))]
        probe_p50 = {}
        for path_name, engine in keras_engines.items():
            for t in texts[: config.warmup_reviews // 5 + 1]:
                engine(keras_encode_one(t))
            probe_p50[path_name] = float(np.median(
                _latencies(lambda t, engine=engine: engine(keras_encode_one(t)), probe)))
            log(f"{cell} keras {path_name}: p50 {probe_p50[path_name]:.2f} ms over {len(probe)} reviews")
        keras_path = min(probe_p50, key=probe_p50.get)
        keras_one = keras_engines[keras_path]

        files = []
        for artifact in manifest["artifacts"]:
            if artifact.get("client"):  # made for another client (MediaPipe): the runtime does not load it
                continue
            file = folder / artifact["file"]
            backend = {"onnx": "onnxruntime", "tflite": "litert", "numpy": "numpy"}[artifact["format"]]
            model = load(file, backend=backend, batch_size=1, num_threads=1)
            for t in texts[: config.warmup_reviews]:
                model.predict_proba([t])
            files.append((artifact, file, backend, model))
        one_review = {"keras": lambda t: keras_one(keras_encode_one(t))}
        for artifact, _, _, model in files:
            one_review[artifact["file"]] = lambda t, model=model: model.predict_proba([t])
        log(f"{cell}: one review at a time, {len(one_review)} engines in turns, {config.latency_rounds} rounds")
        latencies = _interleaved_latencies(one_review, timed, texts[:3], config.latency_rounds)

        # The same reviews split in two: tokenizing alone, then the engine alone on the rows it made.
        keras_split = _split_latencies(keras_encode_one, keras_one, timed)
        tp1 = _throughput(keras_call, texts[: config.throughput_reviews], config.throughput_batch)
        cold, rss, cold_runs = _cold_start(_COLD_KERAS, [str(folder / manifest["source"]["file"]),
                                                         str(folder / manifest["tokenizer"]["file"])],
                                           config.cold_start_runs)
        rows.append(_row(cell, "keras", "fp32", keras_path, (folder / manifest["source"]["file"]).stat().st_size,
                         latencies["keras"], tp1, None, cold, rss, cold_runs, sizes["keras"]))
        rows[-1].update(keras_split)
        log(f"{cell} keras: p50 {np.median(latencies['keras']):.2f} ms, cold start {cold:.2f} s, "
            f"peak RSS {rss:.0f} MB")
        for artifact, file, backend, model in files:
            lat = latencies[artifact["file"]]
            split = _split_latencies(model.encode_one, model.backend.run, timed)
            # The same reviews as whole rows of maxlen ids, as Keras reads them: how much of the
            # speed-up is the engine and how much is leaving the padding out.
            skips_padding = model.backend.variable_length
            lat_whole = _latencies(lambda t: run_batches(model.backend, model.tokenizer.encode_batch([t]), 1, cut=False),
                                   timed[: config.whole_row_reviews])
            model.batch_size = config.throughput_batch
            tp1 = _throughput(model.predict_proba, texts[: config.throughput_reviews], config.throughput_batch)
            all_cores = load(file, backend=backend, batch_size=config.throughput_batch, num_threads=os.cpu_count())
            tp_all = _throughput(all_cores.predict_proba, texts[: config.throughput_reviews], config.throughput_batch)
            cold, rss, cold_runs = _cold_start(_COLD_RUNTIME, [str(file), backend], config.cold_start_runs)
            rows.append(_row(cell, artifact["format"], artifact["precision"], backend, artifact["bytes"], lat, tp1,
                             tp_all, cold, rss, cold_runs, sizes[backend]))
            rows[-1].update(skips_padding=bool(skips_padding),
                            latency_ms_p50_whole_rows=round(float(np.median(lat_whole)), 4), **split)
            log(f"{cell} {artifact['file']}: p50 {np.median(lat):.3f} ms, {tp1:.0f}/s, cold {cold:.2f} s")
    result = {
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()},
        "install_mb": sizes,
        "keras_intra_op_threads": keras_threads,
        "rows": rows,
    }
    atomic_write_json(root / "bench.json", result)
    write_bench_report(root, result)
    return result


def _row(cell, fmt, precision, backend, size, lat, tp1, tp_all, cold, rss, cold_runs, install):
    return {"cell": cell, "format": fmt, "precision": precision, "backend": backend, "bytes": int(size),
            "latency_ms_p50": round(float(np.median(lat)), 4), "latency_ms_p99": round(float(np.percentile(lat, 99)), 4),
            "latency_ms_iqr": round(float(np.percentile(lat, 75) - np.percentile(lat, 25)), 4),
            "latency_reviews": int(len(lat)), "throughput_per_s": round(tp1, 1),
            "throughput_all_cores_per_s": None if tp_all is None else round(tp_all, 1),
            "cold_start_s": round(cold, 3), "cold_start_runs_s": [round(t, 3) for t in cold_runs],
            "peak_rss_mb": round(rss, 1), "install_mb": install}


def write_bench_report(root: Path, result: dict) -> None:
    rows = result["rows"]
    keras = {r["cell"]: r for r in rows if r["format"] == "keras"}
    s = result["settings"]
    # a bench.json from before the turns has no latency_rounds: each engine was timed on its own
    turns = (f", a cell's Keras model and files timed in turns ({s['latency_rounds']} rounds, each on a block of "
             f"the reviews) so that a drift in the machine's pace reaches all of them"
             if s.get("latency_rounds", 1) > 1 else "")
    lines = [
        "# sentilite benchmark",
        "",
        f"One run on {result['machine']['processor']} ({result['machine']['cpus']} CPUs), Python "
        f"{result['machine']['python']}. Latency: one review at a time (tokenizing included), one thread, "
        f"{s['latency_reviews']} IMDB test reviews after {s['warmup_reviews']} warm-up{turns}; p50 and p99, spread as "
        f"the interquartile range. Throughput: batches of {s['throughput_batch']} over {s['throughput_reviews']} "
        f"reviews. Cold start: a fresh process that imports, loads and classifies one review, median of "
        f"{s['cold_start_runs']} runs. Ratios are against the Keras model of the same cell in this run "
        "(its faster single-review path); higher is better for speed-ups.",
        "",
        f"Keras reads every review as a whole row of maxlen ids. The exported files read a review's own "
        f"length (they start from the state the padding would have reached), which is part of their "
        f"speed-up; the column *p50 ms, whole rows* times the same file on whole rows ({s['whole_row_reviews']} "
        f"reviews), i.e. the engine alone. The column *p50 ms, tokenizing + engine* times the same reviews in "
        f"two parts, apart: the runtime's tokenizing into the row the file reads, then the engine alone on "
        f"those rows; the engine's part bounds the speed-up however fast the tokenizer gets.",
        "",
        "| cell | format | precision | backend | bytes | p50 ms | p99 ms | IQR ms | latency speed-up | p50 ms, tokenizing + engine | p50 ms, whole rows | reviews/s (1 thread) | reviews/s (all cores) | cold start s | cold start speed-up | peak RSS MB | install MB |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        k = keras[r["cell"]]
        tp_all = "-" if r["throughput_all_cores_per_s"] is None else f"{r['throughput_all_cores_per_s']:,.0f}"
        whole = f"{r['latency_ms_p50_whole_rows']:.3f}" if r.get("latency_ms_p50_whole_rows") else "-"
        apart = f"{r['latency_ms_p50_tokenize']:.3f} + {r['latency_ms_p50_engine']:.3f}" \
            if r.get("latency_ms_p50_engine") else "-"
        lines.append(
            f"| {r['cell']} | {r['format']} | {r['precision']} | {r['backend']} | {r['bytes']:,} | "
            f"{r['latency_ms_p50']:.3f} | {r['latency_ms_p99']:.3f} | {r['latency_ms_iqr']:.3f} | "
            f"{k['latency_ms_p50'] / r['latency_ms_p50']:.1f}x | {apart} | {whole} | {r['throughput_per_s']:,.0f} | {tp_all} | "
            f"{r['cold_start_s']:.2f} | {k['cold_start_s'] / r['cold_start_s']:.1f}x | {r['peak_rss_mb']:.0f} | "
            f"{r['install_mb']:.0f} |")
    lines += ["", "## Best file of each cell", ""]
    for cell, k in keras.items():
        files = [r for r in rows if r["cell"] == cell and r["format"] != "keras"]
        if not files:
            lines.append(f"- {cell}: no exported file")
            continue
        best = min(files, key=lambda r: r["latency_ms_p50"])
        apart = ""
        if best.get("latency_ms_p50_engine") and k.get("latency_ms_p50_engine"):
            apart = (f"; apart, tokenizing {best['latency_ms_p50_tokenize']:.3f} ms and the engine "
                     f"{best['latency_ms_p50_engine']:.3f} ms (Keras's {k['latency_ms_p50_engine']:.2f} ms): with "
                     f"tokenizing free it would be at most {k['latency_ms_p50'] / best['latency_ms_p50_engine']:.0f}x")
        lines.append(f"- {cell}: `{best['format']} {best['precision']}` at {best['latency_ms_p50']:.3f} ms, "
                     f"{k['latency_ms_p50'] / best['latency_ms_p50']:.0f}x faster than Keras ({k['backend']}, "
                     f"{k['latency_ms_p50']:.2f} ms; target 30x){apart}; on whole rows "
                     f"{best['latency_ms_p50_whole_rows']:.3f} ms, "
                     f"{k['latency_ms_p50'] / best['latency_ms_p50_whole_rows']:.0f}x; cold start "
                     f"{k['cold_start_s'] / best['cold_start_s']:.1f}x faster (target 10x)")
    slower = []
    for r in rows:
        if r["format"] in ("keras", "numpy") or r["precision"] == "fp32":
            continue
        twin = next((x for x in rows if x["cell"] == r["cell"] and x["format"] == r["format"]
                     and x["precision"] == "fp32"), None)
        if twin is not None and r["latency_ms_p50"] > twin["latency_ms_p50"] * 1.05:
            slower.append(f"- {r['cell']} {r['format']} {r['precision']}: {r['latency_ms_p50']:.3f} ms vs fp32 "
                          f"{twin['latency_ms_p50']:.3f} ms")
    lines += ["", "## Slower than their float twin", ""] + (slower or ["- none"])
    lines += ["", "![latency](bench_latency.png)", "", "![size](bench_size.png)", ""]
    atomic_write_text(root / "bench.md", "\n".join(lines))
    cells = list(keras)
    variants = []
    for r in rows:
        if (r["format"], r["precision"]) not in variants:
            variants.append((r["format"], r["precision"]))
    for metric, filename, ylabel in (("latency_ms_p50", "bench_latency.png", "ms per review (p50, log)"),
                                     ("bytes", "bench_size.png", "file size, bytes (log)")):
        def value(cell, variant, metric=metric):
            return next((r[metric] for r in rows if r["cell"] == cell and (r["format"], r["precision"]) == variant),
                        None)
        grouped_bars(root / filename, cells, variants, value, ylabel=ylabel, log=True, legend_title="cell",
                     title=ylabel.split(",")[0], category_labels=[f"{f}\n{p}" for f, p in variants])
