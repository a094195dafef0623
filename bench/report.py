"""bench.md and its charts, from a bench.json: older ones (before the turns, the short texts or the peers) too."""
from __future__ import annotations

from pathlib import Path

from sentilite.shared.charts import grouped_bars
from sentilite.shared.files import atomic_write_text

PEER_LABELS = {"fasttext": "fastText", "tfidf": "TF-IDF reference"}


def _ms(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _rate(value) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _accuracy(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def _times(value, reference) -> str:
    return "-" if value is None or not reference else f"{value / reference:.2f}x"


def _files(rows: list[dict], cell: str) -> list[dict]:
    return [r for r in rows if r["cell"] == cell and r["format"] != "keras"]


def _fastest(entries: list[dict], key: str):
    """The entry with the lowest ``key`` among those that have it, or None."""
    timed = [e for e in entries if e.get(key)]
    return min(timed, key=lambda e: e[key]) if timed else None


def _peer_timings(result: dict, cell: str) -> list[tuple[dict, dict]]:
    """(peer, its timings in this cell's turns) for every peer timed beside the cell's files."""
    return [(p, p["cells"][cell]) for p in result.get("peers") or [] if cell in p.get("cells", {})]


def write_bench_report(root: Path, result: dict) -> None:
    rows = result["rows"]
    keras = {r["cell"]: r for r in rows if r["format"] == "keras"}
    s = result["settings"]
    words = s.get("short_text_words")
    peers = result.get("peers") or []
    lines = ["# sentilite benchmark", "", _introduction(result), ""]
    lines += _files_table(rows, keras, words)
    if peers:
        lines += _peers_section(result, keras, words)
    if any(r.get("short_text_breakdown_ms") for r in rows):
        lines += _breakdown_section(rows, keras, words)
    lines += ["", "## Best file of each cell", ""] + _best_lines(result, rows, keras)
    lines += ["", "## Slower than their float twin", ""] + (_slower_than_twin(rows) or ["- none"])
    charts = ["![latency](bench_latency.png)", ""]
    if any(r.get("latency_ms_p50_short") for r in rows):
        charts += ["![latency, short texts](bench_latency_short.png)", ""]
    lines += [""] + charts + ["![size](bench_size.png)", ""]
    atomic_write_text(root / "bench.md", "\n".join(lines))
    _charts(root, result, list(keras))


def _introduction(result: dict) -> str:
    s, machine = result["settings"], result["machine"]
    peers = result.get("peers") or []
    engines = "a cell's Keras model, files and the peers" if peers else "a cell's Keras model and files"
    # a bench.json from before the turns has no latency_rounds: each engine was timed on its own
    turns = (f", {engines} timed in turns ({s['latency_rounds']} rounds, each on a block of the texts) so that "
             f"a drift in the machine's pace reaches all of them" if s.get("latency_rounds", 1) > 1 else "")
    short = (f", and on the last {s['short_text_words']} words of each (the short texts, as train.evaluate cuts "
             f"them)" if s.get("short_text_words") else "")
    load = machine.get("load_average_start")
    busy = (f" Load average (1, 5, 15 min) {' / '.join(f'{v:.1f}' for v in load)} at the start, "
            f"{' / '.join(f'{v:.1f}' for v in machine['load_average_end'])} at the end."
            if load and machine.get("load_average_end") else "")
    return (
        f"One run on {machine['processor']} ({machine['cpus']} CPUs), Python {machine['python']}.{busy} "
        f"Latency: one text at a time (tokenizing included), one thread, {s['latency_reviews']} IMDB test reviews "
        f"after {s['warmup_reviews']} warm-up{short}{turns}; p50 and p99, spread as the interquartile range. "
        f"Throughput: batches of {s['throughput_batch']} over {s['throughput_reviews']} texts. Cold start: a fresh "
        f"process that imports, loads and classifies one text, median of {s['cold_start_runs']} runs. Speed-ups in "
        f"the first table are against the Keras model of the same cell in this run (where the model came from; its "
        f"faster single-review path), higher is better"
        + ("; the peers, what a user would pick instead, are compared in their own table." if peers else ".")
        + "\n\n"
        f"Keras reads every review as a whole row of maxlen ids. The exported files read a review's own "
        f"length (they start from the state the padding would have reached), which is part of their "
        f"speed-up; the column *p50 ms, whole rows* times the same file on whole rows ({s['whole_row_reviews']} "
        f"reviews), i.e. the engine alone. The column *p50 ms, tokenizing + engine* times the same reviews in "
        f"two parts, apart: the runtime's tokenizing into the row the file reads, then the engine alone on "
        f"those rows; the engine's part bounds the speed-up however fast the tokenizer gets. Accuracy is the "
        f"export's evaluation of each file on the IMDB test reviews (manifest.json)."
    )


def _files_table(rows: list[dict], keras: dict, words) -> list[str]:
    short = f"last {words} words" if words else "short"
    lines = [
        f"| cell | format | precision | backend | bytes | p50 ms | p99 ms | IQR ms | p50 ms, {short} | p99 ms, {short} "
        f"| latency speed-up | p50 ms, tokenizing + engine | p50 ms, whole rows | reviews/s (1 thread) | "
        f"reviews/s (all cores) | {short} texts/s (1 thread) | cold start s | cold start speed-up | peak RSS MB | "
        f"install MB | accuracy | accuracy, {short} |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        k = keras[r["cell"]]
        apart = f"{r['latency_ms_p50_tokenize']:.3f} + {r['latency_ms_p50_engine']:.3f}" \
            if r.get("latency_ms_p50_engine") else "-"
        lines.append(
            f"| {r['cell']} | {r['format']} | {r['precision']} | {r['backend']} | {r['bytes']:,} | "
            f"{r['latency_ms_p50']:.3f} | {r['latency_ms_p99']:.3f} | {r['latency_ms_iqr']:.3f} | "
            f"{_ms(r.get('latency_ms_p50_short'))} | {_ms(r.get('latency_ms_p99_short'))} | "
            f"{k['latency_ms_p50'] / r['latency_ms_p50']:.1f}x | {apart} | "
            f"{_ms(r.get('latency_ms_p50_whole_rows') or None)} | "
            f"{r['throughput_per_s']:,.0f} | {_rate(r['throughput_all_cores_per_s'])} | "
            f"{_rate(r.get('throughput_short_per_s'))} | {r['cold_start_s']:.2f} | "
            f"{k['cold_start_s'] / r['cold_start_s']:.1f}x | {r['peak_rss_mb']:.0f} | {r['install_mb']:.0f} | "
            f"{_accuracy(r.get('accuracy'))} | {_accuracy(r.get('accuracy_short'))} |")
    return lines


def _peers_section(result: dict, keras: dict, words) -> list[str]:
    rows = result["rows"]
    short = f"last {words} words" if words else "short"
    lines = [
        "", "## Beside the peers", "",
        "What a user would pick instead of a sentilite file, each called as its users call it and timed in the "
        "same turns as the files of each cell, on the same texts. *x fastest peer* is an engine's p50 over the "
        "p50 of the fastest peer in those turns: 1.00x is the fastest peer, above 1 is slower. The Keras rows "
        "are where the models came from, not a peer.", "",
        f"| cell | engine | p50 ms | p99 ms | p50 ms, {short} | p99 ms, {short} | x fastest peer | "
        f"x fastest peer, {short} | reviews/s (1 thread) | {short} texts/s | accuracy | accuracy, {short} |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for cell, k in keras.items():
        timings = _peer_timings(result, cell)
        if not timings:
            continue
        fastest = _fastest([t for _, t in timings], "latency_ms_p50")
        fastest_short = _fastest([t for _, t in timings], "latency_ms_p50_short")
        reference = fastest["latency_ms_p50"] if fastest else None
        reference_short = fastest_short["latency_ms_p50_short"] if fastest_short else None
        entries = []
        files = _files(rows, cell)
        best = _fastest(files, "latency_ms_p50")
        best_short = _fastest(files, "latency_ms_p50_short")
        for r, why in ((best, "best file"), (best_short, f"best file on the {short}")):
            if r is not None and not any(r is e for e, _ in entries):
                entries.append((r, f"sentilite `{r['format']} {r['precision']}` ({r['backend']}; {why})"))
        for peer, t in timings:
            entries.append(({**peer, **t}, f"{PEER_LABELS.get(peer['name'], peer['name'])} (`{peer.get('call', '')}`)"))
        entries.append((k, f"Keras ({k['backend']})"))
        for e, label in entries:
            lines.append(
                f"| {cell} | {label} | {e['latency_ms_p50']:.3f} | {e['latency_ms_p99']:.3f} | "
                f"{_ms(e.get('latency_ms_p50_short'))} | {_ms(e.get('latency_ms_p99_short'))} | "
                f"{_times(e['latency_ms_p50'], reference)} | "
                f"{_times(e.get('latency_ms_p50_short'), reference_short)} | "
                f"{_rate(e.get('throughput_per_s'))} | {_rate(e.get('throughput_short_per_s'))} | "
                f"{_accuracy(e.get('accuracy'))} | {_accuracy(e.get('accuracy_short'))} |")
    lines += ["", "The peers:", ""]
    for peer in result["peers"]:
        lines.append(_peer_line(peer))
    return lines


def _peer_line(peer: dict) -> str:
    label = PEER_LABELS.get(peer["name"], peer["name"])
    trained = f"fitted on {peer['train_reviews']:,} training reviews in {peer['train_seconds']:.0f} s"
    if peer.get("validation"):
        grid = "; ".join(
            f"{' '.join(f'{k} {v:g}' for k, v in point['settings'].items())}: {point['validation_accuracy']:.4f}"
            for point in peer["validation"])
        trained = (f"settings chosen on {peer['validation_reviews']:,} validation reviews (each fitted on the "
                   f"{peer['fit_reviews']:,} others; {grid}), then {trained}, seed {peer['seed']}, "
                   f"{peer['threads']} thread")
    elif peer.get("features"):
        trained = f"{peer['features']:,} features, {trained}"
    version = f" {peer['version']}" if peer.get("version") else ""
    return (f"- {label}{version}: {peer['model']}; tokenizing: {peer['tokenizing']}; {trained}. Test accuracy "
            f"on {peer['accuracy_reviews']:,} reviews. Saved, {peer['bytes']:,} bytes; cold start "
            f"{peer['cold_start_s']:.2f} s, peak RSS {peer['peak_rss_mb']:.0f} MB, install "
            f"{peer['install_mb']:.0f} MB.")


def _breakdown_section(rows: list[dict], keras: dict, words) -> list[str]:
    lines = [
        "", "## Where the time goes on a short text", "",
        f"One call `predict_proba([text])` on the last {words} words of each review, in parts timed apart: "
        "tokenizing (`tokenizer.encode`), the row the file reads (cut to its length, or padded), the engine call "
        "(`backend.run`, with its checks of the answer), and the rest: the whole call minus the three (the "
        "(1, 2) answer, the call's own steps, and the caches the parts warm for each other when timed apart). "
        "Beside it, the engine alone on full reviews: what a short text saves is only the part of the engine's "
        "time that grows with the text; the rest is its fixed cost per call.", "",
        "| cell | format | precision | row width (p50) | tokenize ms | row ms | engine ms | rest ms | whole call ms "
        "| engine share | engine ms, full review | row width (p50), full review |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        b = r.get("short_text_breakdown_ms")
        if not b:
            continue
        lines.append(
            f"| {r['cell']} | {r['format']} | {r['precision']} | {b['row_width_p50']} | {b['tokenize']:.4f} | "
            f"{b['row']:.4f} | {b['engine']:.4f} | {b['rest']:.4f} | {b['call']:.4f} | "
            f"{b['engine'] / b['call']:.0%} | {_ms(r.get('latency_ms_p50_engine'), 4)} | "
            f"{r.get('row_width_p50', '-')} |")
    lines.append("")
    for cell in keras:
        best = _fastest([r for r in _files(rows, cell) if r.get("short_text_breakdown_ms")], "latency_ms_p50_short")
        if best is None:
            continue
        b = best["short_text_breakdown_ms"]
        python = b["tokenize"] + b["row"]
        full_engine = best.get("latency_ms_p50_engine")
        fixed = ""
        if full_engine:
            fixed = (f"; the engine takes {b['engine']:.3f} ms on a short text and {full_engine:.3f} ms on a full "
                     f"review: a text of {words} words still costs {b['engine'] / full_engine:.0%} of a full "
                     f"review's engine time")
            width = best.get("row_width_p50")
            if width and width > b["row_width_p50"] and full_engine > b["engine"]:
                per_id = (full_engine - b["engine"]) / (width - b["row_width_p50"])
                fixed_ms = b["engine"] - per_id * b["row_width_p50"]
                if fixed_ms > 0:
                    fixed += (f"; a straight line through the two (rows of {b['row_width_p50']} and {width} ids) "
                              f"puts the engine's fixed cost per call at about {fixed_ms:.3f} ms, "
                              f"{fixed_ms / b['call']:.0%} of the short text's whole call")
        lines.append(f"- {cell} `{best['format']} {best['precision']}` (fastest on short texts): of "
                     f"{b['call']:.3f} ms, the engine call is {b['engine']:.3f} ms ({b['engine'] / b['call']:.0%}), "
                     f"tokenizing and the row {python:.3f} ms ({python / b['call']:.0%}), the rest {b['rest']:.3f} ms"
                     f"{fixed}.")
    return lines


def _best_lines(result: dict, rows: list[dict], keras: dict) -> list[str]:
    lines = []
    for cell, k in keras.items():
        files = _files(rows, cell)
        if not files:
            lines.append(f"- {cell}: no exported file")
            continue
        best = min(files, key=lambda r: r["latency_ms_p50"])
        apart = ""
        if best.get("latency_ms_p50_engine") and k.get("latency_ms_p50_engine"):
            apart = (f"; apart, tokenizing {best['latency_ms_p50_tokenize']:.3f} ms and the engine "
                     f"{best['latency_ms_p50_engine']:.3f} ms (Keras's {k['latency_ms_p50_engine']:.2f} ms): with "
                     f"tokenizing free it would be at most {k['latency_ms_p50'] / best['latency_ms_p50_engine']:.0f}x")
        whole = ""
        if best.get("latency_ms_p50_whole_rows"):
            whole = (f"; on whole rows {best['latency_ms_p50_whole_rows']:.3f} ms, "
                     f"{k['latency_ms_p50'] / best['latency_ms_p50_whole_rows']:.0f}x")
        peers = ""
        timings = [t for _, t in _peer_timings(result, cell)]
        fastest = _fastest(timings, "latency_ms_p50")
        if fastest is not None:
            name = next(p["name"] for p, t in _peer_timings(result, cell) if t is fastest)
            peers = (f"; {best['latency_ms_p50'] / fastest['latency_ms_p50']:.2f}x the time of the fastest peer "
                     f"({PEER_LABELS.get(name, name)}, {fastest['latency_ms_p50']:.3f} ms)")
        lines.append(f"- {cell}: `{best['format']} {best['precision']}` at {best['latency_ms_p50']:.3f} ms, "
                     f"{k['latency_ms_p50'] / best['latency_ms_p50']:.0f}x faster than Keras ({k['backend']}, "
                     f"{k['latency_ms_p50']:.2f} ms){apart}{whole}; cold start "
                     f"{k['cold_start_s'] / best['cold_start_s']:.1f}x faster{peers}")
    return lines


def _slower_than_twin(rows: list[dict]) -> list[str]:
    slower = []
    for r in rows:
        if r["format"] in ("keras", "numpy") or r["precision"] == "fp32":
            continue
        twin = next((x for x in rows if x["cell"] == r["cell"] and x["format"] == r["format"]
                     and x["precision"] == "fp32"), None)
        if twin is not None and r["latency_ms_p50"] > twin["latency_ms_p50"] * 1.05:
            slower.append(f"- {r['cell']} {r['format']} {r['precision']}: {r['latency_ms_p50']:.3f} ms vs fp32 "
                          f"{twin['latency_ms_p50']:.3f} ms")
    return slower


def _charts(root: Path, result: dict, cells: list[str]) -> None:
    rows = result["rows"]
    variants = []
    for r in rows:
        if (r["format"], r["precision"]) not in variants:
            variants.append((r["format"], r["precision"]))
    peer_names = [p["name"] for p in result.get("peers") or []]

    def value_of(metric):
        def value(cell, variant):
            if variant[1] == "peer":
                timing = next((t for p, t in _peer_timings(result, cell) if p["name"] == variant[0]), {})
                return timing.get(metric)
            return next((r.get(metric) for r in rows if r["cell"] == cell and (r["format"], r["precision"]) == variant),
                        None)
        return value

    timed = variants + [(name, "peer") for name in peer_names]
    labels = [f"{f}\n{p}" if p != "peer" else f"{PEER_LABELS.get(f, f)}\npeer" for f, p in timed]
    charts = [("latency_ms_p50", "bench_latency.png", "ms per review (p50, log)", timed, labels)]
    if any(r.get("latency_ms_p50_short") for r in rows):
        charts.append(("latency_ms_p50_short", "bench_latency_short.png",
                       f"ms per short text, last {result['settings'].get('short_text_words')} words (p50, log)",
                       timed, labels))
    charts.append(("bytes", "bench_size.png", "file size, bytes (log)", variants, [f"{f}\n{p}" for f, p in variants]))
    for metric, filename, ylabel, categories, category_labels in charts:
        grouped_bars(root / filename, cells, categories, value_of(metric), ylabel=ylabel, log=True,
                     legend_title="cell", title=ylabel.split(" (")[0].split(",")[0], category_labels=category_labels)
