"""A markdown table of the model folders under a directory, read from their metrics.json."""
from __future__ import annotations

from pathlib import Path

from sentilite.shared.errors import ModelFileError
from sentilite.shared.files import parse_json


def _read(path: Path) -> dict:
    try:
        data = parse_json(path.read_bytes(), str(path), ModelFileError)
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read ({exc.strerror})") from None
    if not isinstance(data, dict):
        raise ModelFileError(f"{path}: expected a JSON object")
    return data


def _short(values) -> str:
    return " / ".join(f"{v:.4f}" for v in values) if values else "-"


def results_table(folder: str) -> str:
    """One row per trained model folder: its size, test accuracy, short texts and each branch alone."""
    root = Path(folder)
    rows = []
    baseline, reviews = None, set()
    for metrics_file in sorted(root.glob("*/metrics.json")):
        m = _read(metrics_file)
        reviews.add(f"{m.get('test_reviews', 0):,}")
        if m.get("name") == "tfidf-logreg":  # the reference model (train.baseline): its own row, last
            baseline = m
            continue
        cfg = _read(metrics_file.parent / "config.json")
        try:
            tok, model = cfg["tokenizer"], cfg["model"]
            command = f"sentilite train --cell {m['cell']} --preset {m['preset']}"
            if m.get("input") == "onehot":
                command += " --input onehot"
            size = f"{tok['vocab_size']:,} x {model['embedding_dim']}, {model['units']} units"
            if model.get("window"):
                size += f" on the last {model['window']} ids"
            if model.get("ngram_buckets"):
                size += f"; n-grams: {tok['vocab_size']:,} + " + (
                    f"{model['ngram_buckets']:,}-slot bi/trigram dictionary"
                    if model.get("ngram_lookup") == "dictionary" else f"{model['ngram_buckets']:,} buckets")
            size += f"; length {tok['maxlen']}"
            ablation = m.get("ablation", {})
            alone = lambda part: (  # noqa: E731
                f"{ablation[part]['test_accuracy']:.4f} ({_short(ablation[part].get('short_text'))})"
                if part in ablation else "-")
            rows.append(
                f"| {m['cell']} | {m['preset']} | {size} | {m['weights']:,} | {m['test_accuracy']:.4f} | "
                f"{_short(m.get('short_text', {}).get('accuracy'))} | {alone('ngrams_only')} | {alone('cell_only')} | "
                f"{m.get('validation_accuracy', float('nan')):.4f} | {m['epochs_run']} (best {m['best_epoch']}) | "
                f"{m['train_seconds']:.0f} | `{command} --out {metrics_file.parent}` |"
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{metrics_file.parent}: metrics.json or config.json lacks {exc}") from None
    if baseline is not None:
        rows.append(f"| reference | - | {baseline['model']}; {baseline['features']:,} features | "
                    f"{baseline['features']:,} | {baseline['test_accuracy']:.4f} | "
                    f"{_short(baseline['short_text']['accuracy'])} | - | - | - | - | {baseline['train_seconds']:.0f} | "
                    f"`sentilite baseline --out {root / 'baseline'}` |")
    if not rows:
        raise ModelFileError(f"{root}: no trained model folders (*/metrics.json) found")
    header = (
        f"| cell | preset | size | weights | test accuracy ({' / '.join(sorted(reviews)) or '-'} reviews) | last 10 / 20 / 40 words | "
        "n-gram branch alone | cell alone | validation | epochs | train s | command |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    return header + "\n" + "\n".join(rows)
