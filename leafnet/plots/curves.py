"""Training curves: loss, accuracy and learning rate per epoch."""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np

from leafnet.plots.figure import pyplot, save_figure

RESTORED = "restored weights"   # the legend entry of the epoch each phase ended on


def history_column(rows: Sequence[dict], key: str) -> np.ndarray:
    """The ``key`` cell of each history row as floats (NaN where empty or missing)."""
    return np.array([float(r[key]) if r.get(key) not in (None, "") else np.nan for r in rows])


def curves_figure(history: Sequence[dict], title: str = "", restored: Mapping[str, int] | None = None):
    """The figure of :func:`plot_curves` (returned unsaved, for a caller to inspect or save).

    ``restored``: phase -> the epoch whose weights the phase ended on
    (:func:`leafnet.history.restored_epochs`), drawn as a dotted red line labelled ``RESTORED``.
    """
    plt = pyplot()
    epochs = history_column(history, "epoch")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, key, name in ((axes[0], "loss", "loss"), (axes[1], "accuracy", "accuracy")):
        ax.plot(epochs, history_column(history, key), "o-", ms=3, label=f"train {name}")
        val = history_column(history, f"val_{key}")
        ax.plot(epochs, val, "o-", ms=3, label=f"val {name}")
        for i, epoch in enumerate(sorted((restored or {}).values())):
            ax.axvline(epoch, color="tab:red", ls=":", lw=1.5, label=RESTORED if i == 0 else "_nolegend_")
            ax.plot(epochs[epochs == epoch], val[epochs == epoch], "*", color="tab:red", ms=11, label="_nolegend_")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[2].plot(epochs, history_column(history, "lr"), "o-", ms=3, color="tab:green")
    axes[2].set_yscale("log")
    axes[2].set_xlabel("epoch")
    axes[2].set_ylabel("learning rate")
    axes[2].grid(alpha=0.3, which="both")
    phases = [r["phase"] for r in history]
    starts = [i for i in range(len(phases)) if i == 0 or phases[i] != phases[i - 1]]
    for i in starts:   # phase names above the axes, where no legend can cover them
        for ax in axes:
            if i:
                ax.axvline(epochs[i] - 0.5, color="gray", ls="--", lw=1)
            ax.text(epochs[i] - (0.5 if i else 0), 1.01, f" {phases[i]}", transform=ax.get_xaxis_transform(),
                    va="bottom", ha="left", fontsize=8, color="gray")
    axes[0].legend()
    axes[1].legend()
    axes[1].set_ylim(0, 1.02)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_curves(history: Sequence[dict], path: str | os.PathLike, title: str = "",
                restored: Mapping[str, int] | None = None) -> None:
    """Loss, accuracy and learning rate per epoch, with the phase boundaries and the epochs
    whose weights each phase kept (``restored``) marked."""
    save_figure(curves_figure(history, title, restored), path)


def plot_lr(epochs: np.ndarray, lrs: np.ndarray, phases: Sequence[str], path: str | os.PathLike) -> None:
    """Learning rate per epoch, coloured by phase."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for phase in dict.fromkeys(phases):
        sel = np.array([p == phase for p in phases])
        ax.plot(epochs[sel], lrs[sel], "o-", ms=3, label=phase)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    ax.set_title("learning rate per epoch", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
