"""Pictures a person judges a run by: training curves and confusion matrices (matplotlib, Agg)."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from leafnet.runs import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)


def _floats(rows: Sequence[dict], key: str) -> np.ndarray:
    return np.array([float(r[key]) if r.get(key) not in (None, "") else np.nan for r in rows])


def plot_curves(history: Sequence[dict], path: str | os.PathLike, title: str = "") -> None:
    """Loss, accuracy and learning rate per epoch, with the phase boundaries marked."""
    plt = _pyplot()
    epochs = _floats(history, "epoch")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, key, name in ((axes[0], "loss", "loss"), (axes[1], "accuracy", "accuracy")):
        ax.plot(epochs, _floats(history, key), "o-", ms=3, label=f"train {name}")
        ax.plot(epochs, _floats(history, f"val_{key}"), "o-", ms=3, label=f"val {name}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[2].plot(epochs, _floats(history, "lr"), "o-", ms=3, color="tab:green")
    axes[2].set_yscale("log")
    axes[2].set_xlabel("epoch")
    axes[2].set_ylabel("learning rate")
    axes[2].grid(alpha=0.3, which="both")
    phases = [r["phase"] for r in history]
    for i in range(1, len(phases)):
        if phases[i] != phases[i - 1]:
            for ax in axes:
                ax.axvline(epochs[i] - 0.5, color="gray", ls="--", lw=1)
                ax.text(epochs[i] - 0.5, 1.0, f" {phases[i]}", transform=ax.get_xaxis_transform(),
                        va="top", ha="left", fontsize=8, color="gray")
    if phases:
        for ax in axes:
            ax.text(epochs[0], 1.0, f"{phases[0]}", transform=ax.get_xaxis_transform(), va="top", ha="left",
                    fontsize=8, color="gray")
    axes[0].legend()
    axes[1].legend()
    axes[1].set_ylim(0, 1.02)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)


def plot_confusion(matrix: np.ndarray, classes: Sequence[str], path: str | os.PathLike, title: str = "",
                   normalized: bool = False) -> None:
    """Colour by row-normalised share (readable with 14+ classes); each cell shows its count,
    or with ``normalized`` its share of the true class."""
    plt = _pyplot()
    matrix = np.asarray(matrix)
    n = len(classes)
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros_like(matrix, dtype=float), where=rows > 0)
    side = max(5.0, 0.5 * n + 2.5)
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    ax.set_xticks(range(n), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            if matrix[i, j]:
                text = f"{share[i, j]:.2f}" if normalized else str(int(matrix[i, j]))
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if share[i, j] > 0.5 else "black")
    ax.set_title(title or ("confusion matrix (row-normalised)" if normalized else "confusion matrix"))
    fig.tight_layout()
    _save(fig, path)


def plot_search(rows: Sequence[dict], entries: Sequence, objective: str, path: str | os.PathLike) -> None:
    """The sampled points of a search: the first two numeric hyperparameters as axes (log
    where sampled log-uniformly), coloured by the objective; failed trials as red crosses.
    With one numeric hyperparameter, the objective against it; with none, per trial."""
    plt = _pyplot()
    numeric = [e for e in entries if e.kind in ("float", "int")
               or (e.kind == "choice" and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in e.values)
                   and len(e.values) > 1)]
    ok = [r for r in rows if r["status"] == "COMPLETED" and r.get(objective) is not None]
    bad = [r for r in rows if r not in ok]
    score = np.array([r[objective] for r in ok], dtype=float)
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    title = f"{len(rows)} trials ({len(bad)} failed), colour: {objective}"

    def values(rs, e):
        return np.array([np.nan if r.get(e.key) is None else float(r[e.key]) for r in rs])

    def axis_scale(which, e):
        axis = ax.xaxis if which == "x" else ax.yaxis
        if getattr(e, "sampling", "linear") == "log" or (e.kind == "choice" and min(e.values) > 0
                                                         and max(e.values) / min(e.values) >= 4):
            (ax.set_xscale if which == "x" else ax.set_yscale)("log")
        if e.kind == "choice":  # the options themselves as ticks (batch sizes 16, 32, 64)
            axis.set_ticks(e.values, [f"{v:g}" for v in e.values])
            axis.set_minor_locator(plt.NullLocator())

    if len(numeric) >= 2:
        ex, ey = numeric[:2]
        from matplotlib.colors import LogNorm

        wide = len(score) and score.min() > 0 and score.max() / score.min() > 10  # a diverged trial or two
        sc = ax.scatter(values(ok, ex), values(ok, ey), c=score, cmap="viridis_r" if objective == "val_loss"
                        else "viridis", s=70, edgecolors="k", linewidths=0.5, norm=LogNorm() if wide else None)
        if bad:
            ax.scatter(values(bad, ex), values(bad, ey), marker="x", c="red", s=60, label="failed")
            ax.legend(loc="best")
        if len(ok):
            fig.colorbar(sc, ax=ax, label=objective)
            best = int(np.argmin(score) if objective == "val_loss" else np.argmax(score))
            ax.scatter([values(ok, ex)[best]], [values(ok, ey)[best]], s=260, facecolors="none", edgecolors="red",
                       linewidths=2)
            ax.annotate(f"best {score[best]:.4g}", (values(ok, ex)[best], values(ok, ey)[best]),
                        textcoords="offset points", xytext=(8, 8), color="red")
        ax.set_xlabel(ex.key)
        ax.set_ylabel(ey.key)
        axis_scale("x", ex)
        axis_scale("y", ey)
    elif len(numeric) == 1:
        ex = numeric[0]
        ax.scatter(values(ok, ex), score, s=50, edgecolors="k", linewidths=0.5)
        ax.set_xlabel(ex.key)
        ax.set_ylabel(objective)
        axis_scale("x", ex)
    else:
        ax.bar([r["trial"] for r in ok], score)
        ax.set_xlabel("trial")
        ax.set_ylabel(objective)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    _save(fig, path)
