"""The sampled points of a hyperparameter search."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from leafnet.plots.figure import pyplot, save_figure


def plot_search(rows: Sequence[dict], entries: Sequence, objective: str, path: str | os.PathLike) -> None:
    """The sampled points of a search: the first two numeric hyperparameters as axes (log
    where sampled log-uniformly), coloured by the objective; failed trials as red crosses.
    With one numeric hyperparameter, the objective against it; with none, per trial."""
    plt = pyplot()
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
    save_figure(fig, path)
