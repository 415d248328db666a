"""The highest-loss images of an evaluation, as a grid."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from leafnet.plots.figure import pyplot, save_figure


def plot_top_losses(rows: Sequence[dict], path: str | os.PathLike, n: int = 16, title: str = "") -> None:
    """A grid of the ``n`` highest-loss images: true / predicted / confidence in each title."""
    from PIL import Image

    plt = pyplot()
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
    save_figure(fig, path)
