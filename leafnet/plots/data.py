"""The data of a run: images per class and subset."""

from __future__ import annotations

import os

import numpy as np

from leafnet.plots.figure import pyplot, save_figure

NAMED_BARS_UP_TO = 60   # classes up to which the class-count bars are named and labelled


def plot_class_counts(counts: dict[str, dict[str, int]], path: str | os.PathLike, title: str) -> None:
    """Images per class as stacked bars (``{"train": {cls: n}, "val": {cls: n}}``). Past
    ``NAMED_BARS_UP_TO`` classes the bars are sorted by count, unnamed, in a figure of fixed width."""
    plt = pyplot()
    classes = list(next(iter(counts.values())).keys()) if counts else []
    many = len(classes) > NAMED_BARS_UP_TO
    if many:
        total = {c: sum(v.get(c, 0) for v in counts.values()) for c in classes}
        classes = sorted(classes, key=lambda c: -total[c])   # stable: ties keep their order
        title = f"{title} ({len(classes)} classes, most images first)"
    fig, ax = plt.subplots(figsize=(16.0 if many else max(6.0, 0.45 * len(classes) + 2.5), 4.2))
    bottom = np.zeros(len(classes))
    for subset, values in counts.items():
        v = np.array([values.get(c, 0) for c in classes], dtype=float)
        if many:   # one outline per subset, not one rectangle per class
            ax.stairs(bottom + v, np.arange(len(classes) + 1) - 0.5, baseline=bottom.copy(), fill=True, label=subset)
        else:
            bars = ax.bar(range(len(classes)), v, bottom=bottom, label=subset)
        bottom += v
    if many:
        ax.set_xlabel("classes, most images first")
        ax.set_xlim(-0.5, len(classes) - 0.5)
    else:
        if classes:
            ax.bar_label(bars, labels=[str(int(b)) for b in bottom], fontsize=7)
        ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("images")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
