"""`sentilite sweep`: one cell trained with several seeds, and the spread of what it scores."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from sentilite.shared.files import atomic_write_json, atomic_write_text

from .config import RunConfig
from .data import TrainingData
from .evaluate import SHORT_TEXT_WORDS
from .fit import train_model

SWEEP_FILE = "sweep.json"
SWEEP_TABLE = "sweep.md"
log = logging.getLogger("sentilite.sweep")


def _spread(values: list[float]) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": round(float(v.mean()), 6), "min": round(float(v.min()), 6), "max": round(float(v.max()), 6),
            "std": round(float(v.std(ddof=1)) if len(v) > 1 else 0.0, 6), "values": [round(float(x), 6) for x in v]}


def run_seed_sweep(config: RunConfig, seeds: list[int], out: str | os.PathLike, data: TrainingData,
                   verbose: int | None = None) -> dict:
    """Train ``config`` once per seed into out/seed-<n>; write sweep.json and sweep.md; return the summary.

    The seed decides the validation split, the crops, the cell's initial
    weights and the batch order; the data and everything else stay the same.
    """
    out = Path(out)
    runs = []
    # The short-text check is IMDB's; other data gets macro-F1 instead.
    measures = ("test_accuracy", "short_text", "validation_accuracy", "train_seconds") if data.imdb else (
        "test_accuracy", "test_macro_f1", "validation_accuracy", "train_seconds")
    for index, seed in enumerate(seeds, 1):
        log.info("seed %d (%d/%d)", seed, index, len(seeds))
        metrics = train_model(config.replace(training={"seed": seed}), out / f"seed-{seed}", data, verbose=verbose)
        runs.append({"seed": seed, **{k: metrics[k] for k in measures}, "ablation": metrics.get("ablation")})
    summary = {
        "name": config.name,
        "seeds": list(seeds),
        "data": data.describe(),
        "test_accuracy": _spread([r["test_accuracy"] for r in runs]),
    }
    if data.imdb:
        summary["short_text"] = {f"last_{k}_words": _spread([r["short_text"]["accuracy"][i] for r in runs])
                                 for i, k in enumerate(SHORT_TEXT_WORDS)}
    else:
        summary["test_macro_f1"] = _spread([r["test_macro_f1"] for r in runs])
    summary["runs"] = runs
    if all(r["ablation"] for r in runs):
        summary["ngrams_only_test_accuracy"] = _spread([r["ablation"]["ngrams_only"]["test_accuracy"] for r in runs])
    summary["table"] = format_sweep(summary)
    atomic_write_json(out / SWEEP_FILE, summary)
    atomic_write_text(out / SWEEP_TABLE, summary["table"] + "\n")
    return summary


def format_sweep(summary: dict) -> str:
    def cell(s: dict) -> str:
        return f"{s['mean']:.4f} ({s['min']:.4f} - {s['max']:.4f}, sd {s['std']:.4f})"

    lines = [f"{summary['name']}, seeds {', '.join(map(str, summary['seeds']))} ({summary['data']}):", "",
             "| measure | mean (min - max, sd) |", "|---|---|",
             f"| test accuracy | {cell(summary['test_accuracy'])} |"]
    if "test_macro_f1" in summary:
        lines.append(f"| test macro-F1 | {cell(summary['test_macro_f1'])} |")
    for name, s in summary.get("short_text", {}).items():
        lines.append(f"| {name.replace('_', ' ')} | {cell(s)} |")
    if "ngrams_only_test_accuracy" in summary:
        lines.append(f"| n-gram branch alone, test accuracy | {cell(summary['ngrams_only_test_accuracy'])} |")
    return "\n".join(lines)
