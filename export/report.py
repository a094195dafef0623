"""artifacts/parity.json, artifacts/report.md and charts, from the packages' manifests."""
from __future__ import annotations

import json
import os
from pathlib import Path

from sentilite.runtime._io import atomic_write_json, atomic_write_text
from sentilite.runtime.errors import ModelFileError
from sentilite.runtime.model import MANIFEST_FILE, PRECISIONS

SIZE_LIMITS = {"fp16": 0.55, "dynamic-int8": 0.35, "int8": 0.35}  # share of the same format's fp32 file
PARITY_FILE = "parity.json"
REPORT_FILE = "report.md"
ACCURACY_CHART = "accuracy.png"
SIZE_CHART = "size.png"


def collect_rows(root: Path) -> list[dict]:
    rows = []
    manifests = sorted(root.glob(f"*/{MANIFEST_FILE}"))
    if not manifests:
        raise ModelFileError(f"{root}: no exported packages (*/{MANIFEST_FILE}); run sentilite export first")
    for path in manifests:
        manifest = json.loads(path.read_text())
        cell = manifest["cell"]
        source = manifest["source"]
        keras_bytes = (path.parent / source["file"]).stat().st_size if (path.parent / source["file"]).exists() else None
        rows.append({"cell": cell, "format": "keras", "precision": "fp32", "file": f"{path.parent.name}/{source['file']}",
                     "bytes": keras_bytes, "accuracy": source["test_accuracy"], "agreement": 1.0,
                     "max_abs_diff": 0.0, "n": source["test_reviews"]})
        for artifact in manifest["artifacts"]:
            ev = artifact["eval"]
            rows.append({"cell": cell, "format": artifact["format"], "precision": artifact["precision"],
                         "file": f"{path.parent.name}/{artifact['file']}", "bytes": artifact["bytes"],
                         "accuracy": ev["accuracy"], "agreement": ev["agreement"],
                         "max_abs_diff": ev["max_abs_diff"], "n": ev["n"],
                         "quantized_nodes": artifact.get("quantized_nodes", [])})
    fp32 = {(r["cell"], r["format"]): r["bytes"] for r in rows if r["precision"] == "fp32"}
    for r in rows:
        base = fp32.get((r["cell"], r["format"]))
        r["size_vs_fp32"] = round(r["bytes"] / base, 4) if base and r["bytes"] is not None else None
        limit = SIZE_LIMITS.get(r["precision"]) if r["format"] in ("tflite", "onnx") else None
        r["size_limit"] = limit
        r["size_ok"] = None if limit is None else bool(r["size_vs_fp32"] <= limit)
    return rows


def write_report(root: str | os.PathLike) -> Path:
    root = Path(root)
    rows = collect_rows(root)
    atomic_write_json(root / PARITY_FILE, {"rows": rows})
    _charts(rows, root)
    lines = [
        "# sentilite export report",
        "",
        "Every file was evaluated on the IMDB test reviews and compared with the Keras model it came from "
        "(agreement = share of reviews with the same predicted label; max diff = largest |P(positive) difference|).",
        "Produced by `make export` (`sentilite export` per model, then `sentilite report`).",
        "",
        "| cell | format | precision | file | bytes | vs fp32 (limit) | test accuracy | agreement with Keras | max diff | reviews |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        size = f"{r['bytes']:,}" if r["bytes"] is not None else "-"
        ratio = "" if r["size_limit"] is None else (
            f"{r['size_vs_fp32']:.1%} ({'ok' if r['size_ok'] else 'OVER'} <= {r['size_limit']:.0%})")
        lines.append(f"| {r['cell']} | {r['format']} | {r['precision']} | `{r['file']}` | {size} | {ratio} | "
                     f"{r['accuracy']:.4f} | {r['agreement']:.4%} | {r['max_abs_diff']:.2g} | {r['n']:,} |")
    lines += ["", f"![accuracy]({ACCURACY_CHART})", "", f"![size]({SIZE_CHART})", ""]
    return atomic_write_text(root / REPORT_FILE, "\n".join(lines))


def _charts(rows: list[dict], root: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cells = sorted({r["cell"] for r in rows}, key=["rnn", "lstm", "gru"].index)
    variants = [("keras", "fp32")] + [(f, p) for f in ("tflite", "onnx", "numpy") for p in PRECISIONS
                                      if any(r["format"] == f and r["precision"] == p for r in rows)]
    labels = [f"{f}\n{p}" if f != "keras" else "keras" for f, p in variants]
    x = np.arange(len(variants))
    width = 0.8 / max(len(cells), 1)
    for metric, ylabel, filename, log in (("accuracy", "test accuracy", ACCURACY_CHART, False),
                                          ("bytes", "file size (bytes)", SIZE_CHART, True)):
        fig, ax = plt.subplots(figsize=(max(8, len(variants) * 0.9), 4.5))
        for i, cell in enumerate(cells):
            values = []
            for f, p in variants:
                match = [r for r in rows if r["cell"] == cell and r["format"] == f and r["precision"] == p]
                values.append(match[0][metric] if match and match[0][metric] is not None else np.nan)
            ax.bar(x + (i - (len(cells) - 1) / 2) * width, values, width, label=cell)
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_ylabel(ylabel)
        if log:
            ax.set_yscale("log")
        else:
            accs = [r["accuracy"] for r in rows]
            ax.set_ylim(max(0.0, min(accs) - 0.03), min(1.0, max(accs) + 0.02))
        ax.grid(axis="y", alpha=0.3)
        ax.legend(title="cell")
        ax.set_title(f"{ylabel} of every exported file (IMDB test reviews)" if not log else "file size by format and precision")
        fig.tight_layout()
        fig.savefig(root / filename, dpi=100)
        plt.close(fig)
