"""The figure machinery every picture shares: pyplot on the Agg backend, and a bounded,
atomic PNG save."""

from __future__ import annotations

import os
from typing import Callable

from leafnet import console
from leafnet.runs import atomic_path

MAX_PIXELS = 4000               # the longest side of any saved figure
DPI = 110
LABEL_CHARS = 32                # tick labels longer than this are cut (the CSVs hold the full names)


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display needed), imported on first use."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike) -> None:
    """Write ``fig`` as PNG, its title also in the file's ``Title`` field (what viewers list).

    The resolution drops below ``DPI`` where the picture would be longer than ``MAX_PIXELS``
    on a side, so a figure's memory stays bounded whatever it holds.
    """
    title = fig.get_suptitle() or next((ax.get_title() for ax in fig.axes if ax.get_title()), "")
    plt = pyplot()
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
        console.warn(f"could not draw {path} ({type(e).__name__}: {e}); the numbers are written")
        return False


def short_label(name: str) -> str:
    """``name`` cut to ``LABEL_CHARS`` characters (an ellipsis marks the cut), for tick labels."""
    return name if len(name) <= LABEL_CHARS else name[:LABEL_CHARS - 1] + "…"
