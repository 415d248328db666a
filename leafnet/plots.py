"""Pictures a person judges a run by: training curves, confusion matrices, top losses, search
(matplotlib, Agg)."""

from __future__ import annotations

import os
import sys
from typing import Callable, Mapping, Sequence

import numpy as np

from leafnet.confusion import most_confused, row_normalised  # noqa: F401 - row_normalised: public here too
from leafnet.runs import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


RESTORED = "restored weights"   # the legend entry of the epoch each phase ended on
COUNTS_UP_TO = 12               # classes up to which a row-normalised matrix also shows its counts
MATRIX_UP_TO = 40               # classes up to which a confusion figure shows every class
MOST_CONFUSED = 30              # past MATRIX_UP_TO: the classes with the most errors, shown
MAX_PIXELS = 4000               # the longest side of any saved figure
DPI = 110
LABEL_CHARS = 32                # tick labels longer than this are cut (the CSVs hold the full names)


def _save(fig, path: str | os.PathLike) -> None:
    """Write ``fig`` as PNG, its title also in the file's ``Title`` field (what viewers list).

    The resolution drops below ``DPI`` where the picture would be longer than ``MAX_PIXELS``
    on a side, so a figure's memory stays bounded whatever it holds.
    """
    title = fig.get_suptitle() or next((ax.get_title() for ax in fig.axes if ax.get_title()), "")
    plt = _pyplot()
    try:
        fig.set_dpi(min(DPI, MAX_PIXELS / max(fig.get_size_inches())))   # the measuring canvas is bounded too
        fig.draw_without_rendering()   # runs the layout engine, as savefig will
        box = fig.get_tightbbox(fig.canvas.get_renderer())
        dpi = min(DPI, 0.97 * MAX_PIXELS / (max(box.width, box.height) + 0.2))
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.1,
                        metadata={"Title": title} if title else None)
    finally:
        plt.close(fig)


def draw_or_warn(draw: Callable[[], None], path: str | os.PathLike) -> bool:
    """Run ``draw`` (one figure); a failure is one warning line on stderr, not a lost run:
    callers draw only once the numbers are written."""
    try:
        draw()
        return True
    except Exception as e:  # noqa: BLE001 - a figure is never worth the run
        print(f"warning: could not draw {path} ({type(e).__name__}: {e}); the numbers are written",
              file=sys.stderr, flush=True)
        return False


def _short(name: str) -> str:
    return name if len(name) <= LABEL_CHARS else name[:LABEL_CHARS - 1] + "…"


def _floats(rows: Sequence[dict], key: str) -> np.ndarray:
    return np.array([float(r[key]) if r.get(key) not in (None, "") else np.nan for r in rows])


def curves_figure(history: Sequence[dict], title: str = "", restored: Mapping[str, int] | None = None):
    """The figure of :func:`plot_curves` (returned unsaved, for a caller to inspect or save).

    ``restored``: phase -> the epoch whose weights the phase ended on
    (:func:`leafnet.history.restored_epochs`), drawn as a dotted red line labelled ``RESTORED``.
    """
    plt = _pyplot()
    epochs = _floats(history, "epoch")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, key, name in ((axes[0], "loss", "loss"), (axes[1], "accuracy", "accuracy")):
        ax.plot(epochs, _floats(history, key), "o-", ms=3, label=f"train {name}")
        val = _floats(history, f"val_{key}")
        ax.plot(epochs, val, "o-", ms=3, label=f"val {name}")
        for i, epoch in enumerate(sorted((restored or {}).values())):
            ax.axvline(epoch, color="tab:red", ls=":", lw=1.5, label=RESTORED if i == 0 else "_nolegend_")
            ax.plot(epochs[epochs == epoch], val[epochs == epoch], "*", color="tab:red", ms=11, label="_nolegend_")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[2].plot(epochs, _floats(history, "lr"), "o-", ms=3, color="tab:green")
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
    _save(curves_figure(history, title, restored), path)


def confusion_figure(matrix, classes: Sequence[str], title: str = "", normalized: bool = False,
                     table: str | None = None):
    """The figure of :func:`plot_confusion`, returned unsaved.

    Up to ``MATRIX_UP_TO`` classes: every class. Past that: ``MOST_CONFUSED`` classes, those
    of the largest off-diagonal cells first (:func:`leafnet.confusion.most_confused`), said in the title (``table``: the
    file that holds every class); shares are still of the whole true class.
    """
    plt = _pyplot()
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
    ax.set_xticks(range(n), [_short(c) for c in names], rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), [_short(c) for c in names], fontsize=8)
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
    _save(confusion_figure(matrix, classes, title, normalized, table), path)


def plot_top_losses(rows: Sequence[dict], path: str | os.PathLike, n: int = 16, title: str = "") -> None:
    """A grid of the ``n`` highest-loss images: true / predicted / confidence in each title."""
    from PIL import Image

    plt = _pyplot()
    rows = list(rows)[:n]
    cols = 4
    nrows = max(1, -(-len(rows) // cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 3.4 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, r in zip(axes.ravel(), rows):
        try:
            with Image.open(r["path"]) as im:
                ax.imshow(np.asarray(im.convert("RGB")))
        except Exception:  # noqa: BLE001 - a picture that PIL cannot show is still listed
            ax.text(0.5, 0.5, "(cannot show)", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(f"true: {r['true']}\npred: {r['predicted']} ({r['confidence']:.2f})\nloss {r['loss']:.2f}",
                     fontsize=8, color="black" if r["true"] == r["predicted"] else "darkred")
    fig.suptitle(title or f"top {len(rows)} losses")
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
