"""Confusion matrices as numbers: row shares, the classes a figure can show, the full matrix as CSV.

A figure stays readable (and its memory bounded) only up to a few dozen classes; past that
it shows the classes with the most errors, and the CSV holds every class.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from leafnet.runs import write_csv

CSV_CORNER = "true \\ predicted"    # the header cell above the true classes' column


def row_normalised(matrix) -> np.ndarray:
    """Each row divided by its sum (the share of the true class); a row without images stays 0."""
    matrix = np.asarray(matrix)
    rows = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, rows, out=np.zeros(matrix.shape, dtype=float), where=rows > 0)


def most_confused(matrix, k: int) -> np.ndarray:
    """The indices of ``k`` classes that hold the largest errors: the two classes of each
    largest off-diagonal cell in turn (so a pair's cell is among those shown), then the
    classes with the most errors to or from them; ties in class order."""
    matrix = np.asarray(matrix)
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    rows, cols = np.nonzero(off)
    order = np.lexsort((cols, rows, -off[rows, cols]))
    picked = dict.fromkeys(int(c) for pair in zip(rows[order], cols[order]) for c in pair)
    mass = off.sum(axis=1) + off.sum(axis=0)
    picked.update(dict.fromkeys(int(c) for c in np.lexsort((np.arange(len(mass)), -mass))))
    return np.array(list(picked)[:k], dtype=np.int64)


def csv_path(png: str | os.PathLike) -> Path:
    """Where the full matrix of a confusion figure is written: beside it, ``.csv``."""
    return Path(png).with_suffix(".csv")


def write_confusion_csv(matrix, classes: Sequence[str], path: str | os.PathLike) -> None:
    """Every class's row of counts: header ``true \\ predicted, CLASS...``, then one row per true class."""
    matrix = np.asarray(matrix, dtype=np.int64)
    write_csv(path, [CSV_CORNER, *classes], ([name, *row.tolist()] for name, row in zip(classes, matrix)))
