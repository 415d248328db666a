"""Confusion-matrix figures; past ``MATRIX_UP_TO`` classes, the most confused classes only."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from leafnet.confusion import most_confused, row_normalised
from leafnet.plots.figure import pyplot, save_figure, short_label

COUNTS_UP_TO = 12               # classes up to which a row-normalised matrix also shows its counts
MATRIX_UP_TO = 40               # classes up to which a confusion figure shows every class
MOST_CONFUSED = 30              # past MATRIX_UP_TO: the classes with the most errors, shown


def confusion_figure(matrix, classes: Sequence[str], title: str = "", normalized: bool = False,
                     table: str | None = None):
    """The figure of :func:`plot_confusion`, returned unsaved.

    Up to ``MATRIX_UP_TO`` classes: every class. Past that: ``MOST_CONFUSED`` classes, those
    of the largest off-diagonal cells first (:func:`leafnet.confusion.most_confused`), said in the title (``table``: the
    file that holds every class); shares are still of the whole true class.
    """
    plt = pyplot()
    matrix = np.asarray(matrix)
    share = row_normalised(matrix)
    names = list(classes)
    note = ""
    if len(names) > MATRIX_UP_TO:
        keep = most_confused(matrix, MOST_CONFUSED)
        note = (f"{len(keep)} of {len(names)} classes: those of the largest errors"
                + (f"; every class: {table}" if table else ""))
        matrix, share, names = matrix[np.ix_(keep, keep)], share[np.ix_(keep, keep)], [names[i] for i in keep]
    n = len(names)
    side = max(5.0, 0.5 * n + 2.5)
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    ax.set_xticks(range(n), [short_label(c) for c in names], rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), [short_label(c) for c in names], fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i, j in zip(*np.nonzero(matrix)):
        count = str(int(matrix[i, j]))
        text = (f"{share[i, j]:.2f}" + (f"\n({count})" if n <= COUNTS_UP_TO else "")) if normalized else count
        ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if share[i, j] > 0.5 else "black")
    title = title or ("confusion matrix (row-normalised)" if normalized else "confusion matrix")
    ax.set_title(f"{title}\n{note}" if note else title)
    fig.tight_layout()
    return fig


def plot_confusion(matrix: np.ndarray, classes: Sequence[str], path: str | os.PathLike, title: str = "",
                   normalized: bool = False, table: str | None = None) -> None:
    """Colour by row-normalised share (readable with 14+ classes); each cell shows its count,
    or with ``normalized`` its share of the true class (each row sums to 1), and its count in
    brackets up to ``COUNTS_UP_TO`` classes. Past ``MATRIX_UP_TO`` classes only the most
    confused are drawn (see :func:`confusion_figure`); ``table`` names the full matrix's file."""
    save_figure(confusion_figure(matrix, classes, title, normalized, table), path)
