"""The one grouped bar chart the report and the benchmark draw (matplotlib, imported when drawing)."""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path


def grouped_bars(path: Path, groups: Sequence[str], categories: Sequence[str], value, *, ylabel: str, title: str,
                 log: bool = False, ylim: tuple[float, float] | None = None, legend_title: str = "",
                 category_labels: Sequence[str] | None = None,
                 reference: tuple[float, str] | None = None) -> Path:
    """One bar per (category, group); ``value(group, category)`` gives its height or None (no bar).

    ``reference``: (height, label) of a dashed line across the chart, e.g. a baseline's score.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
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
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
