"""The charts the report, the benchmark and the evaluation draw (matplotlib, imported when drawing).

Each PNG is written through ``files.atomic_write``: a reader never sees half a chart.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .files import atomic_write

if TYPE_CHECKING:
    from sentilite.runtime.metrics import ClassificationMetrics


def grouped_bars(path: Path, groups: Sequence[str], categories: Sequence[str], value, *, ylabel: str, title: str,
                 log: bool = False, ylim: tuple[float, float] | None = None, legend_title: str = "",
                 category_labels: Sequence[str] | None = None,
                 reference: tuple[float, str] | None = None) -> Path:
    """One bar per (category, group); ``value(group, category)`` gives its height or None (no bar).

    ``reference``: (height, label) of a dashed line across the chart, e.g. a baseline's score.
    """
    plt = _pyplot()
    import numpy as np

    x = np.arange(len(categories))
    width = 0.8 / max(len(groups), 1)
    fig, ax = plt.subplots(figsize=(max(8.0, len(categories) * 0.9), 4.5))
    for i, group in enumerate(groups):
        heights = [value(group, c) for c in categories]
        heights = [math.nan if h is None else h for h in heights]
        ax.bar(x + (i - (len(groups) - 1) / 2) * width, heights, width, label=group)
    if reference is not None:
        ax.axhline(reference[0], color="0.3", linestyle="--", linewidth=1, label=reference[1])
    ax.set_xticks(x, list(category_labels or categories), fontsize=8)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    if ylim:
        ax.set_ylim(*ylim)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(title=legend_title)
    ax.set_title(title)
    fig.tight_layout()
    _save(fig, path, dpi=100)
    return path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path, dpi: int) -> Path:
    import matplotlib.pyplot as plt

    try:
        return atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=dpi))
    finally:
        plt.close(fig)


def plot_confusion(metrics: ClassificationMetrics, path: str | Path, title: str) -> Path:
    """The confusion matrix as a PNG: rows the true label, columns the predicted one.

    Shading is the row's share (recall along the diagonal), so a rare class
    reads as clearly as a common one; each cell prints its count. The figure
    grows with the labels and the print shrinks, staying legible from 2 to
    50 labels; past 20 labels the counts are left out of the cells (the
    shading and the axes remain) as they no longer fit.
    """
    plt = _pyplot()
    import numpy as np

    counts = np.asarray(metrics.confusion, dtype=np.int64)
    names = list(metrics.label_names)
    classes = len(names)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    longest = max(len(name) for name in names)
    label_size = 10 if classes <= 10 else 8 if classes <= 25 else 7
    per_label = 0.6 if classes <= 10 else 0.4 if classes <= 25 else 0.3  # inches
    side = max(4.0, per_label * classes + 2.0) + min(longest, 30) * label_size / 144
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    colorbar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    colorbar.set_label("share of the true label's rows")
    shown = [name if len(name) <= 30 else name[:29] + "\u2026" for name in names]
    ax.set_xticks(np.arange(classes), shown, rotation=90 if classes > 6 or longest > 10 else 0, fontsize=label_size)
    ax.set_yticks(np.arange(classes), shown, fontsize=label_size)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    if classes <= 20:
        count_size = 11 if classes <= 5 else 9 if classes <= 10 else 7
        for i in range(classes):
            for j in range(classes):
                ax.text(j, i, f"{counts[i, j]:,}", ha="center", va="center", fontsize=count_size,
                        color="white" if shares[i, j] > 0.5 else "black")
    ax.set_title(f"{title}\naccuracy {metrics.accuracy:.4f}, macro-F1 {metrics.macro_f1:.4f}, "
                 f"{int(counts.sum()):,} rows", fontsize=10)
    fig.tight_layout()
    return _save(fig, path, dpi=100)
