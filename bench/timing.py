"""How the bench times things: one text at a time, engines in turns, batches, fresh processes."""
from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np

# Peak memory is VmHWM from /proc: it starts afresh at exec, while ru_maxrss
# keeps the forking parent's peak (here a process with TensorFlow loaded).
PEAK_RSS = "int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) / 1024"


def latencies(predict_one: Callable, texts: Sequence) -> np.ndarray:
    """ms of each call, one text at a time."""
    out = np.empty(len(texts))
    for i, text in enumerate(texts):
        t0 = time.perf_counter()
        predict_one(text)
        out[i] = time.perf_counter() - t0
    return out * 1000.0


def interleaved_latencies(engines: dict, texts: Sequence, warm_texts: Sequence, rounds: int) -> dict:
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
            out[name][start:stop] = latencies(engines[name], texts[start:stop])
    return out


def p50(ms) -> float:
    return round(float(np.median(ms)), 4)


def split_latencies(encode_one: Callable, engine: Callable, texts: Sequence, suffix: str = "") -> dict:
    """p50 of tokenizing alone and of the engine alone on what it made, timed apart.

    Together they show what bounds a speed-up: the engine's share of a
    text cannot fall under its time here however fast the tokenizer gets.
    (Timed apart, each runs with warm caches, so the two add up to a little
    less than the whole call.)
    """
    encoded = [encode_one(t) for t in texts]
    return {f"latency_ms_p50_tokenize{suffix}": p50(latencies(encode_one, texts)),
            f"latency_ms_p50_engine{suffix}": p50(latencies(engine, encoded))}


def throughput(predict_batch: Callable, texts: Sequence, batch: int) -> float:
    """Texts per second, in batches."""
    t0 = time.perf_counter()
    for i in range(0, len(texts), batch):
        predict_batch(texts[i: i + batch])
    return len(texts) / (time.perf_counter() - t0)


def cold_start(code: str, args: list[str], runs: int) -> tuple[float, float, list[float]]:
    """(median seconds, median peak RSS MB, every run's seconds) of a fresh process running ``code``.

    ``code`` prints its own seconds and peak RSS last; the wall time of the
    whole process, interpreter start included, is what counts.
    """
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
