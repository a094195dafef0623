"""artifacts/parity.json, artifacts/report.md and charts, from the packages' manifests.

Works on packages exported with any subset of formats and precisions: a size
ratio to fp32 is left blank where there is no fp32 file of that format.

The ratio measures what quantization shrinks: a file's bytes less the
tokenizer it carries and a learned dictionary's fingerprints and
displacements, which every precision stores alike (uint8 and int16).
"""
from __future__ import annotations

import os
from pathlib import Path

from sentilite.runtime.architecture import ModelConfig
from sentilite.runtime.model import MANIFEST_FILE, PRECISIONS
from sentilite.runtime.recurrence import dictionary_table_bytes
from sentilite.shared.charts import grouped_bars
from sentilite.shared.errors import ModelFileError
from sentilite.shared.files import atomic_write_json, atomic_write_text, parse_json

# Share of the same format's fp32 file; and the whole-file cap for 8-bit files: 1 MiB, what ships inside an app.
SIZE_LIMITS = {"fp16": 0.55, "dynamic-int8": 0.35, "int8": 0.35}
MAX_8BIT_BYTES = 1_048_576
PARITY_FILE = "parity.json"
REPORT_FILE = "report.md"
ACCURACY_CHART = "accuracy.png"
SIZE_CHART = "size.png"
CELL_ORDER = ("rnn", "lstm", "gru")


def _load(path: Path) -> dict:
    manifest = parse_json(path.read_bytes(), str(path), ModelFileError)
    if not isinstance(manifest, dict) or "artifacts" not in manifest or "source" not in manifest:
        raise ModelFileError(f"{path}: not a sentilite manifest")
    return manifest


def collect_rows(root: Path) -> list[dict]:
    rows = []
    manifests = sorted(root.glob(f"*/{MANIFEST_FILE}"))
    if not manifests:
        raise ModelFileError(f"{root}: no exported packages (*/{MANIFEST_FILE}); run sentilite export first")
    for path in manifests:
        manifest = _load(path)
        cell, source = manifest.get("cell"), manifest["source"]
        fixed = _integer_table_bytes(manifest, path)
        keras_file = path.parent / source.get("file", "model.keras")
        rows.append({"cell": cell, "format": "keras", "precision": "fp32", "client": None,
                     "file": f"{path.parent.name}/{keras_file.name}",
                     "bytes": keras_file.stat().st_size if keras_file.exists() else None,
                     "accuracy": source["test_accuracy"], "agreement": 1.0, "max_abs_diff": 0.0,
                     "n": source["test_reviews"], "short_text": (source.get("short_text") or {}).get("accuracy")})
        for artifact in manifest["artifacts"]:
            ev = artifact["eval"]
            rows.append({"cell": cell, "format": artifact["format"], "precision": artifact["precision"],
                         "client": artifact.get("client"), "file": f"{path.parent.name}/{artifact['file']}",
                         "bytes": artifact["bytes"], "accuracy": ev["accuracy"], "agreement": ev["agreement"],
                         "max_abs_diff": ev["max_abs_diff"], "n": ev["n"],
                         "short_text": (ev.get("short_text") or {}).get("accuracy"),
                         "quantized_nodes": artifact.get("quantized_nodes", []),
                         "weight_bytes": artifact["bytes"] - (artifact.get("embedded_metadata_bytes") or 0) - fixed})
    fp32 = {(r["cell"], r["format"]): r["weight_bytes"] for r in rows
            if r["precision"] == "fp32" and not r["client"] and r["bytes"] and r.get("weight_bytes")}
    for r in rows:
        base = fp32.get((r["cell"], r["format"]))
        r["size_vs_fp32"] = round(r["weight_bytes"] / base, 4) if base and r.get("weight_bytes") is not None else None
        limit = SIZE_LIMITS.get(r["precision"]) if r["format"] in ("tflite", "onnx") and not r["client"] else None
        r["size_limit"] = limit
        r["size_ok"] = None if limit is None or r["size_vs_fp32"] is None else bool(r["size_vs_fp32"] <= limit)
        r["under_1mb"] = None if r["precision"] not in ("dynamic-int8", "int8") else bool(r["bytes"] <= MAX_8BIT_BYTES)
    return rows


def _integer_table_bytes(manifest: dict, path: Path) -> int:
    """Bytes of the model's learned-dictionary tables (0 without one), from the config in its manifest."""
    model = (manifest.get("config") or {}).get("model")
    if model is None:
        return 0
    config = ModelConfig.from_dict(model, f"{path}: config.model")
    return dictionary_table_bytes(config.ngram_buckets) if config.ngram_dictionary else 0


def _ratio(r: dict) -> str:
    if r["size_limit"] is None:
        return ""
    if r["size_vs_fp32"] is None:
        return "(no fp32 file)"
    return f"{r['size_vs_fp32']:.1%} ({'ok' if r['size_ok'] else 'OVER'} <= {r['size_limit']:.0%})"


def write_report(root: str | os.PathLike) -> Path:
    from sentilite.train.baseline import read_baseline

    root = Path(root)
    rows = collect_rows(root)
    baseline = read_baseline(root / "baseline")
    atomic_write_json(root / PARITY_FILE, {"rows": rows, "reference": baseline})
    _charts(rows, root, baseline)
    lines = [
        "# sentilite export report",
        "",
        "Every file was evaluated on the IMDB test reviews and compared with the Keras model it came from "
        "(agreement = share of reviews with the same predicted label; max diff = largest |P(positive) difference|). "
        "Short texts: the last 10 / 20 / 40 words of every test review. "
        "vs fp32: the share of the same format's fp32 file, counting neither the tokenizer every file carries "
        "nor a learned dictionary's integer tables, which every precision stores alike.",
        "Produced by `make export` (`sentilite export` per model, then `sentilite report`).",
        "",
        "| cell | format | precision | file | bytes | vs fp32 (limit) | test accuracy | last 10 / 20 / 40 words "
        "| agreement with Keras | max diff | reviews |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        size = f"{r['bytes']:,}" if r["bytes"] is not None else "-"
        if r["under_1mb"] is False:
            size += " (OVER 1 MB)"
        short = " / ".join(f"{a:.4f}" for a in r["short_text"]) if r["short_text"] else "-"
        precision = r["precision"] + (f" ({r['client']})" if r["client"] else "")
        lines.append(f"| {r['cell']} | {r['format']} | {precision} | `{r['file']}` | {size} | {_ratio(r)} | "
                     f"{r['accuracy']:.4f} | {short} | {r['agreement']:.4%} | {r['max_abs_diff']:.2g} | {r['n']:,} |")
    if baseline is not None:
        short = " / ".join(f"{a:.4f}" for a in baseline["short_text"]["accuracy"])
        lines += ["", f"Reference ({baseline['model']}, `sentilite baseline`): test accuracy "
                      f"{baseline['test_accuracy']:.4f}; last 10 / 20 / 40 words {short}."]
    lines += ["", f"![accuracy]({ACCURACY_CHART})", "", f"![size]({SIZE_CHART})", ""]
    return atomic_write_text(root / REPORT_FILE, "\n".join(lines))


def _charts(rows: list[dict], root: Path, baseline: dict | None = None) -> None:
    cells = sorted({r["cell"] for r in rows}, key=lambda c: CELL_ORDER.index(c) if c in CELL_ORDER else 9)
    variants = [("keras", "fp32", None)]
    for f in ("tflite", "onnx", "numpy"):
        for p in PRECISIONS:
            if any(r["format"] == f and r["precision"] == p and not r["client"] for r in rows):
                variants.append((f, p, None))
    variants += sorted({(r["format"], r["precision"], r["client"]) for r in rows if r["client"]})
    labels = ["keras" if f == "keras" else (c or f"{f}\n{p}") for f, p, c in variants]

    def value(metric):
        def get(cell, variant):
            match = [r for r in rows if r["cell"] == cell and (r["format"], r["precision"], r["client"]) == variant]
            return match[0][metric] if match else None
        return get

    accs = [r["accuracy"] for r in rows] + ([baseline["test_accuracy"]] if baseline else [])
    reference = (baseline["test_accuracy"], "TF-IDF reference") if baseline else None
    grouped_bars(root / ACCURACY_CHART, cells, variants, value("accuracy"), ylabel="test accuracy",
                 title="test accuracy of every exported file (IMDB test reviews)", legend_title="cell",
                 ylim=(max(0.0, min(accs) - 0.03), min(1.0, max(accs) + 0.02)), category_labels=labels,
                 reference=reference)
    grouped_bars(root / SIZE_CHART, cells, variants, value("bytes"), ylabel="file size (bytes)", log=True,
                 title="file size by format and precision", legend_title="cell", category_labels=labels)
