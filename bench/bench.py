"""`sentilite bench`: speed, size, memory and start-up of every file, beside its Keras model and the peers.

Everything is measured in one run on one machine. A cell's Keras model (where
the model came from) and files, and the peers a user would pick instead
(bench.peers), take turns on the same stretch of time: absolute times on a
shared machine are noisy, ratios measured in turns much less so. Every
engine is timed on full IMDB reviews and on short texts (their last words).
"""
from __future__ import annotations

import importlib.metadata as md
import logging
import os
import platform
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from sentilite.runtime.backends import BACKENDS, FORMAT_BACKENDS
from sentilite.runtime.model import MANIFEST_FILE, cut_row, read_manifest, run_batches
from sentilite.runtime.tokenizer import pad_ids
from sentilite.shared.config import check_int
from sentilite.shared.files import atomic_write_json

from .peers import FASTTEXT_GRID, PEERS, check_peers, fasttext_grid_points, require_fasttext
from .report import write_bench_report
from .timing import PEAK_RSS, cold_start, interleaved_latencies, latencies, p50, split_latencies, throughput


@dataclass(frozen=True)
class BenchConfig:
    latency_reviews: int = 1000  # single reviews timed one by one, after the warm-up
    warmup_reviews: int = 50
    throughput_reviews: int = 2048
    throughput_batch: int = 256
    cold_start_runs: int = 5
    whole_row_reviews: int = 300  # latency also timed on whole (padded) rows, for the breakdown
    # The one-text latencies of a cell's Keras model, files and the peers are timed in turns: the
    # texts in this many blocks, every engine on each block before the next: a shared machine's pace
    # drifts, and in turns a drift reaches them all alike.
    latency_rounds: int = 5
    cells: tuple[str, ...] | None = None  # None = every package found
    short_text_words: int = 20  # the short texts: the last this many words of each review (train.evaluate)
    peers: tuple[str, ...] = PEERS
    fasttext_grid: dict = field(default_factory=lambda: dict(FASTTEXT_GRID))  # chosen on the validation reviews
    peer_seed: int = 1234

    def __post_init__(self) -> None:
        for name in ("latency_reviews", "throughput_reviews", "throughput_batch", "cold_start_runs",
                     "whole_row_reviews", "latency_rounds", "short_text_words"):
            check_int("BenchConfig", name, getattr(self, name), 1)
        check_int("BenchConfig", "warmup_reviews", self.warmup_reviews, 0)
        check_int("BenchConfig", "peer_seed", self.peer_seed, 0)
        check_peers(self.peers)
        if "fasttext" in self.peers:
            fasttext_grid_points(self.fasttext_grid)


_COLD_RUNTIME = """
import sys, time
start = time.perf_counter()
from sentilite.runtime import load
model = load(sys.argv[1], backend=sys.argv[2] or None, num_threads=1)
model.predict(["A wonderful film."])
print(time.perf_counter() - start, PEAK_RSS)
""".replace("PEAK_RSS", PEAK_RSS)

_COLD_KERAS = """
import os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
start = time.perf_counter()
import sentilite.train.keras_model as m
from sentilite.runtime import Tokenizer
model = m.load_keras_model(sys.argv[1])
tok = Tokenizer.from_file(sys.argv[2])
model(tok.encode_batch(["A wonderful film."]), training=False)
print(time.perf_counter() - start, PEAK_RSS)
""".replace("PEAK_RSS", PEAK_RSS)


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


def _bench_backend(fmt: str) -> str:
    """The backend a format's files are timed on: the one the runtime prefers for it."""
    return FORMAT_BACKENDS[fmt][0]


def row_maker(model):
    """Unpadded ids of one text -> the row ``model.encode_one`` gives its file (cut, or padded to maxlen)."""
    cfg = model.tokenizer.config
    if model.backend.variable_length and cfg.padding == "pre":
        return lambda ids: cut_row(ids, cfg)
    return lambda ids: pad_ids([ids], cfg.maxlen, cfg.padding, cfg.truncating)


def short_text_breakdown(model, texts, rounds: int) -> dict:
    """p50 ms of each step of one text's call, and of the whole ``predict_proba([text])``, the steps in turns.

    The steps: tokenizing, the row the file reads, the engine call (with its
    checks of the answer), each timed alone, taking turns with the whole
    call on the same blocks of texts. ``rest`` is the whole call minus the
    three: the (1, 2) answer, the call's own steps, and the caches the steps
    warm for each other when timed alone.
    """
    encode, make_row = model.tokenizer.encode, row_maker(model)
    ids = [encode(t) for t in texts]
    rows = [make_row(i) for i in ids]
    steps = {"tokenize": lambda i: encode(texts[i]), "row": lambda i: make_row(ids[i]),
             "engine": lambda i: model.backend.run(rows[i]), "call": lambda i: model.predict_proba([texts[i]])}
    ms = interleaved_latencies(steps, range(len(texts)), range(min(3, len(texts))), rounds)
    parts = {name: p50(ms[name]) for name in steps}
    parts["rest"] = round(parts["call"] - parts["tokenize"] - parts["row"] - parts["engine"], 4)
    parts["row_width_p50"] = int(np.median([r.shape[1] for r in rows]))
    return parts


def one_text_engines(keras_one_text, files, peers) -> dict:
    """name -> one-text callable: "keras", each file's name (its model's ``predict_proba([text])``), each peer's."""
    engines = {"keras": keras_one_text}
    for name, model in files:
        engines[name] = lambda t, model=model: model.predict_proba([t])
    for peer in peers:
        engines[peer.name] = peer.predict_one
    return engines


def time_in_turns(engines: dict, texts, short, warm_texts, warm_short, rounds: int) -> tuple[dict, dict]:
    """ms per text of every engine on the full texts, then on the short ones, each set in turns."""
    return (interleaved_latencies(engines, texts, warm_texts, rounds),
            interleaved_latencies(engines, short, warm_short, rounds))


def _latency_fields(ms: np.ndarray, suffix: str = "") -> dict:
    return {f"latency_ms_p50{suffix}": p50(ms), f"latency_ms_p99{suffix}": round(float(np.percentile(ms, 99)), 4),
            f"latency_ms_iqr{suffix}": round(float(np.percentile(ms, 75) - np.percentile(ms, 25)), 4)}


def _short_accuracy(short_text: dict | None, words: int):
    """The accuracy on the last ``words`` words from an evaluation's short_text entry, or None."""
    if not short_text or words not in short_text.get("words", ()):
        return None
    return short_text["accuracy"][list(short_text["words"]).index(words)]


def _packages(root: Path, cells) -> list[tuple[Path, dict]]:
    out = []
    for manifest_path in sorted(root.glob(f"*/{MANIFEST_FILE}")):
        manifest = read_manifest(manifest_path.parent)
        if not cells or manifest["cell"] in cells:
            out.append((manifest_path.parent, manifest))
    return out


def _peer_reviews(manifest: dict, data):
    """(fit, validation, train) reviews of a package's Keras model: the peers learn from the same ones."""
    from sentilite.shared.errors import ConfigError
    from sentilite.train.config import CONFIG_FORMAT_VERSION, RunConfig, preset_config
    from sentilite.train.data import subset
    from sentilite.train.fit import split_training_reviews

    try:  # the manifest keeps the package's config.json without its format_version
        config = RunConfig.from_dict({"format_version": CONFIG_FORMAT_VERSION, **manifest["config"]},
                                     source=f"{manifest.get('name')}: manifest config")
    except (KeyError, TypeError, ConfigError):  # a hand-made package: the default preset's split
        config = preset_config("default", manifest["cell"])
    fit, validation = split_training_reviews(config, data)
    t = config.training
    train = subset(data.train, t.train_subset, t.seed) if t.train_subset else data.train
    return fit, validation, train


def _accuracy_reviews(manifest: dict, data):
    """The test reviews a package's files were evaluated on (export: all, or a seeded subset of n)."""
    from sentilite.train.data import subset

    n = next((a["eval"]["n"] for a in manifest["artifacts"] if isinstance(a.get("eval"), dict) and "n" in a["eval"]),
             len(data.test))
    return data.test if n >= len(data.test) else subset(data.test, n, seed=0)


def _train_peers(config: BenchConfig, manifest: dict, data, texts, short, workdir: Path, log) -> tuple[list, list]:
    """Each peer fitted on the package's training reviews; its accuracy, throughput, size and cold start."""
    from sentilite.train.evaluate import accuracy, short_texts

    from .peers import train_fasttext, train_tfidf

    fit, validation, train = _peer_reviews(manifest, data)
    test = _accuracy_reviews(manifest, data)
    test_short = short_texts(test.texts, config.short_text_words)
    peers, records = [], []
    for name in config.peers:
        if name == "fasttext":
            peer = train_fasttext(fit, validation, train, config.fasttext_grid, config.peer_seed, workdir, log)
        else:
            peer = train_tfidf(train, log)
        for t in texts[: config.warmup_reviews]:
            peer.predict_one(t)
        file = peer.save(workdir)
        cold, rss, cold_runs = cold_start(peer.cold_start_code.replace("PEAK_RSS", PEAK_RSS), [str(file)],
                                          config.cold_start_runs)
        record = {
            "name": peer.name, "call": peer.call, "model": peer.description, "tokenizing": peer.tokenizing,
            **peer.details,
            "bytes": file.stat().st_size, "install_mb": install_mb(["numpy", *peer.distributions]),
            "accuracy": round(accuracy(peer.positive(test.texts), test.labels), 6),
            "accuracy_short": round(accuracy(peer.positive(test_short), test.labels), 6),
            "accuracy_reviews": len(test),
            "throughput_per_s": round(throughput(peer.predict_batch, texts[: config.throughput_reviews],
                                                 config.throughput_batch), 1),
            "throughput_short_per_s": round(throughput(peer.predict_batch, short[: config.throughput_reviews],
                                                       config.throughput_batch), 1),
            "cold_start_s": round(cold, 3), "cold_start_runs_s": [round(t, 3) for t in cold_runs],
            "peak_rss_mb": round(rss, 1), "cells": {},
        }
        log(f"peer {peer.name}: test accuracy {record['accuracy']:.4f}, last {config.short_text_words} words "
            f"{record['accuracy_short']:.4f}; {record['throughput_per_s']:.0f} reviews/s")
        peers.append(peer)
        records.append(record)
    return peers, records


def run_bench(root: str | os.PathLike, config: BenchConfig = BenchConfig(), data=None, progress: bool = True) -> dict:
    if "fasttext" in config.peers:
        require_fasttext()  # before minutes of loading, not after
    import tensorflow as tf

    from sentilite.train.data import load_imdb
    from sentilite.train.evaluate import short_texts

    root = Path(root)
    load_start = os.getloadavg()
    log = logging.getLogger("sentilite.bench").info if progress else (lambda m: None)
    try:  # one thread, like the runtime rows; impossible once TensorFlow has run in this process
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass
    keras_threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    packages = _packages(root, config.cells)
    data = data if data is not None else load_imdb(None, progress=progress)
    n_latency = config.latency_reviews + config.warmup_reviews
    texts = data.test.texts[:max(n_latency, config.throughput_reviews)]
    short = short_texts(texts, config.short_text_words)
    sizes = {"keras": install_mb(["tensorflow", "keras"])}
    for fmt in FORMAT_BACKENDS:  # the runtime (numpy) and the engine of each format's timed backend
        spec = BACKENDS[_bench_backend(fmt)]
        sizes[spec.name] = install_mb(["numpy", spec.distribution])
    rows, peer_records = [], []
    with tempfile.TemporaryDirectory(prefix="sentilite-bench-") as workdir:
        peers = []
        if packages and config.peers:
            peers, peer_records = _train_peers(config, packages[0][1], data, texts, short, Path(workdir), log)
        for folder, manifest in packages:
            rows += _bench_cell(folder, manifest, config, texts, short, sizes, peers, peer_records, log)
    result = {
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_start": [round(v, 2) for v in load_start],
                    "load_average_end": [round(v, 2) for v in os.getloadavg()]},
        "settings": _as_json(asdict(config)),
        "install_mb": sizes,
        "keras_intra_op_threads": keras_threads,
        "rows": rows,
        "peers": peer_records,
    }
    atomic_write_json(root / "bench.json", result)
    write_bench_report(root, result)
    return result


def _as_json(value):
    """Tuples as lists, nested ones too (the fastText grid): bench.json then reads back equal to the result."""
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_json(v) for v in value]
    return value


def _bench_cell(folder: Path, manifest: dict, config: BenchConfig, texts, short, sizes, peers, peer_records,
                log) -> list[dict]:
    """The rows of one package: its Keras model and every file, the peers timed in the same turns."""
    import tensorflow as tf

    from sentilite.runtime import Tokenizer, load
    from sentilite.train.keras_model import load_keras_model

    cell = manifest["cell"]
    words = config.short_text_words
    tokenizer = Tokenizer.from_file(folder / manifest["tokenizer"]["file"])
    keras_model = load_keras_model(folder / manifest["source"]["file"])
    call = tf.function(lambda ids: keras_model(ids, training=False))
    keras_engines = {"tf.function": lambda ids, call=call: call(ids).numpy(),
                     "model.predict": lambda ids, model=keras_model: model.predict(ids, verbose=0)}

    def keras_encode_one(text):  # the whole padded row Keras reads
        return tokenizer.encode_batch([text])

    def keras_call(batch, engine=keras_engines["tf.function"]):
        return engine(tokenizer.encode_batch(batch))

    # The faster of the two usual Keras paths for one review is the baseline; model.predict is far
    # slower, so the choice is made on at most 200 reviews and only the winner is timed in turns.
    timed = texts[config.warmup_reviews: config.warmup_reviews + config.latency_reviews]
    timed_short = short[config.warmup_reviews: config.warmup_reviews + config.latency_reviews]
    probe = timed[: min(200, len(timed))]
    probe_p50 = {}
    for path_name, engine in keras_engines.items():
        for t in texts[: config.warmup_reviews // 5 + 1]:
            engine(keras_encode_one(t))
        probe_p50[path_name] = float(np.median(
            latencies(lambda t, engine=engine: engine(keras_encode_one(t)), probe)))
        log(f"{cell} keras {path_name}: p50 {probe_p50[path_name]:.2f} ms over {len(probe)} reviews")
    keras_path = min(probe_p50, key=probe_p50.get)
    keras_one = keras_engines[keras_path]

    files = []
    for artifact in manifest["artifacts"]:
        if artifact.get("client"):  # made for another client (MediaPipe): the runtime does not load it
            continue
        file = folder / artifact["file"]
        backend = _bench_backend(artifact["format"])
        model = load(file, backend=backend, batch_size=1, num_threads=1)
        for t in texts[: config.warmup_reviews]:
            model.predict_proba([t])
        files.append((artifact, file, backend, model))
    one_text = one_text_engines(lambda t: keras_one(keras_encode_one(t)), [(a["file"], m) for a, _, _, m in files],
                                peers)
    log(f"{cell}: one text at a time, {len(one_text)} engines in turns, {config.latency_rounds} rounds, "
        f"full reviews then their last {words} words")
    full, brief = time_in_turns(one_text, timed, timed_short, texts[:3], short[:3], config.latency_rounds)

    for peer, record in zip(peers, peer_records):
        record["cells"][cell] = {**_latency_fields(full[peer.name]), **_latency_fields(brief[peer.name], "_short"),
                                 **split_latencies(peer.encode_one, peer.engine, timed),
                                 **split_latencies(peer.encode_one, peer.engine, timed_short, "_short")}
        log(f"{cell} peer {peer.name}: p50 {np.median(full[peer.name]):.3f} ms, "
            f"short {np.median(brief[peer.name]):.3f} ms")

    rows = []
    source = manifest["source"]
    # The same texts split in two: tokenizing alone, then the engine alone on the rows it made.
    keras_split = {**split_latencies(keras_encode_one, keras_one, timed),
                   **split_latencies(keras_encode_one, keras_one, timed_short, "_short")}
    tp1 = throughput(keras_call, texts[: config.throughput_reviews], config.throughput_batch)
    tp_short = throughput(keras_call, short[: config.throughput_reviews], config.throughput_batch)
    cold, rss, cold_runs = cold_start(_COLD_KERAS, [str(folder / source["file"]),
                                                    str(folder / manifest["tokenizer"]["file"])],
                                      config.cold_start_runs)
    rows.append(_row(cell, "keras", "fp32", keras_path, (folder / source["file"]).stat().st_size,
                     full["keras"], tp1, None, cold, rss, cold_runs, sizes["keras"]))
    rows[-1].update(**_latency_fields(brief["keras"], "_short"), throughput_short_per_s=round(tp_short, 1),
                    accuracy=source.get("test_accuracy"),
                    accuracy_short=_short_accuracy(source.get("short_text"), words),
                    accuracy_reviews=source.get("test_reviews"), **keras_split)
    log(f"{cell} keras: p50 {np.median(full['keras']):.2f} ms, cold start {cold:.2f} s, peak RSS {rss:.0f} MB")
    for artifact, file, backend, model in files:
        name = artifact["file"]
        split = {**split_latencies(model.encode_one, model.backend.run, timed),
                 **split_latencies(model.encode_one, model.backend.run, timed_short, "_short")}
        breakdown = short_text_breakdown(model, timed_short, config.latency_rounds)
        # The same reviews as whole rows of maxlen ids, as Keras reads them: how much of the
        # speed-up is the engine and how much is leaving the padding out.
        skips_padding = model.backend.variable_length
        lat_whole = latencies(lambda t: run_batches(model.backend, model.tokenizer.encode_batch([t]), 1, cut=False),
                              timed[: config.whole_row_reviews])
        model.batch_size = config.throughput_batch
        tp1 = throughput(model.predict_proba, texts[: config.throughput_reviews], config.throughput_batch)
        tp_short = throughput(model.predict_proba, short[: config.throughput_reviews], config.throughput_batch)
        all_cores = load(file, backend=backend, batch_size=config.throughput_batch, num_threads=os.cpu_count())
        tp_all = throughput(all_cores.predict_proba, texts[: config.throughput_reviews], config.throughput_batch)
        cold, rss, cold_runs = cold_start(_COLD_RUNTIME, [str(file), backend], config.cold_start_runs)
        rows.append(_row(cell, artifact["format"], artifact["precision"], backend, artifact["bytes"], full[name], tp1,
                         tp_all, cold, rss, cold_runs, sizes[backend]))
        evaluation = artifact.get("eval") or {}
        rows[-1].update(skips_padding=bool(skips_padding),
                        latency_ms_p50_whole_rows=p50(lat_whole), **split,
                        **_latency_fields(brief[name], "_short"), throughput_short_per_s=round(tp_short, 1),
                        short_text_breakdown_ms=breakdown,
                        row_width_p50=int(np.median([model.encode_one(t).shape[1] for t in timed])),
                        accuracy=evaluation.get("accuracy"),
                        accuracy_short=_short_accuracy(evaluation.get("short_text"), words),
                        accuracy_reviews=evaluation.get("n"))
        log(f"{cell} {name}: p50 {np.median(full[name]):.3f} ms, short {np.median(brief[name]):.3f} ms, "
            f"{tp1:.0f}/s, cold {cold:.2f} s")
    return rows


def _row(cell, fmt, precision, backend, size, lat, tp1, tp_all, cold, rss, cold_runs, install):
    return {"cell": cell, "format": fmt, "precision": precision, "backend": backend, "bytes": int(size),
            **_latency_fields(lat), "latency_reviews": int(len(lat)), "throughput_per_s": round(tp1, 1),
            "throughput_all_cores_per_s": None if tp_all is None else round(tp_all, 1),
            "cold_start_s": round(cold, 3), "cold_start_runs_s": [round(t, 3) for t in cold_runs],
            "peak_rss_mb": round(rss, 1), "install_mb": install}


__all__ = ["BenchConfig", "run_bench", "write_bench_report", "install_mb", "short_text_breakdown"]
