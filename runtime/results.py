"""A markdown table of the model folders under a directory, read from their metrics.json."""
from __future__ import annotations

import json
from pathlib import Path

from .errors import ModelFileError


def results_table(folder: str) -> str:
    root = Path(folder)
    rows = []
    for metrics_file in sorted(root.glob("*/metrics.json")):
        try:
            m = json.loads(metrics_file.read_text())
            cfg = json.loads((metrics_file.parent / "config.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelFileError(f"{metrics_file.parent}: unreadable metrics.json or config.json ({exc})") from None
        tok, model = cfg["tokenizer"], cfg["model"]
        command = f"sentilite train --cell {m['cell']} --preset {m['preset']}"
        if m.get("input") == "onehot":
            command += " --input onehot"
        rows.append(
            f"| {m['cell']} | {m['preset']} | {tok['vocab_size']} x {model['embedding_dim']}, "
            f"{model['units']} units, length {tok['maxlen']} | {m['weights']:,} | "
            f"{m['test_accuracy']:.4f} | {m['epochs_run']} (best {m['best_epoch']}) | "
            f"{m['train_seconds']:.0f} | `{command} --out {metrics_file.parent}` |"
        )
    if not rows:
        raise ModelFileError(f"{root}: no trained model folders (*/metrics.json) found")
    header = (
        "| cell | preset | size | weights | test accuracy (25,000 reviews) | epochs | train s | command |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    return header + "\n" + "\n".join(rows)
