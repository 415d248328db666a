"""Pictures of explanations (matplotlib, Agg): panels, grids, block comparisons, inversions,
loss curves, filters beside their feature maps. Every figure has a title, class names where they
apply and a colour bar where the colour means a number."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from leafnet.plots.figure import pyplot, save_figure

HEAT = "jet"
ALPHA = 0.45


def caption(row: dict) -> str:
    """``true: oak  pred: maple (0.83)`` (true omitted when unknown)."""
    true = f"true: {row['true']}  " if row.get("true") else ""
    return f"{true}pred: {row['predicted']} ({row['confidence']:.2f})"


def _colour(row: dict) -> str:
    return "darkred" if row.get("true") and row["true"] != row["predicted"] else "black"


def _img(x: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(x, dtype=np.float32) / 255.0, 0.0, 1.0)


def _overlay(ax, image: np.ndarray, heat: np.ndarray):
    ax.imshow(_img(image))
    im = ax.imshow(heat, cmap=HEAT, vmin=0.0, vmax=1.0, alpha=ALPHA)
    ax.axis("off")
    return im


def plot_panel(image: np.ndarray, heat: np.ndarray, path: str | os.PathLike, title: str,
               rgb: np.ndarray | None = None) -> None:
    """Original | heat map over the image | the raw map (or the guided gradient image)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.9), layout="constrained")
    axes[0].imshow(_img(image))
    axes[0].set_title("image", fontsize=9)
    axes[0].axis("off")
    im = _overlay(axes[1], image, heat)
    axes[1].set_title("overlay", fontsize=9)
    if rgb is not None:
        axes[2].imshow(np.clip(rgb, 0, 1))
        axes[2].set_title("gradient (grey = 0)", fontsize=9)
        axes[2].axis("off")
    else:
        im = axes[2].imshow(heat, cmap=HEAT, vmin=0.0, vmax=1.0)
        axes[2].set_title("map", fontsize=9)
        axes[2].axis("off")
    fig.colorbar(im, ax=list(axes), fraction=0.025, pad=0.02, label="importance (0..1 per image)")
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


def plot_grid(images: np.ndarray, maps: np.ndarray, rows: Sequence[dict], path: str | os.PathLike,
              title: str, cols: int = 4) -> None:
    """Overlays of many images, each titled with its true and predicted class."""
    plt = pyplot()
    n = len(rows)
    cols = max(1, min(cols, n))
    nrows = -(-n // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.0 * cols + 0.8, 3.2 * nrows), squeeze=False,
                             layout="constrained")
    im = None
    for ax in axes.ravel():
        ax.axis("off")
    for ax, x, m, r in zip(axes.ravel(), images, maps, rows):
        im = _overlay(ax, x, m)
        ax.set_title(caption(r).replace("  ", "\n"), fontsize=8, color=_colour(r))
    if im is not None:
        fig.colorbar(im, ax=list(axes.ravel()), fraction=0.02, pad=0.02, label="importance")
    fig.suptitle(title, fontsize=11)
    save_figure(fig, path)


def plot_blocks(images: np.ndarray, columns: Sequence[tuple[str, np.ndarray]], rows: Sequence[dict],
                path: str | os.PathLike, title: str) -> None:
    """One row per image: the image, then its map at each block's output."""
    plt = pyplot()
    n, k = len(rows), len(columns)
    fig, axes = plt.subplots(n, k + 1, figsize=(2.9 * (k + 1) + 0.8, 3.0 * n), squeeze=False, layout="constrained")
    im = None
    for i, r in enumerate(rows):
        axes[i, 0].imshow(_img(images[i]))
        axes[i, 0].axis("off")
        axes[i, 0].set_title(caption(r).replace("  ", "\n"), fontsize=8, color=_colour(r))
        for j, (label, maps) in enumerate(columns, start=1):
            im = _overlay(axes[i, j], images[i], maps[i])
            if i == 0:
                axes[i, j].set_title(label, fontsize=8)
    if im is not None:
        fig.colorbar(im, ax=list(axes.ravel()), fraction=0.02, pad=0.02, label="importance")
    fig.suptitle(title, fontsize=11)
    save_figure(fig, path)


def stretch(x: np.ndarray) -> np.ndarray:
    """An image scaled to fill 0..1 (per image), for pictures optimised in input space."""
    x = np.asarray(x, dtype=np.float32)
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def plot_inversions(images: np.ndarray, labels: Sequence[str], path: str | os.PathLike, title: str,
                    cols: int = 4) -> None:
    """The optimised inputs, contrast-stretched, one per filter or class."""
    plt = pyplot()
    n = len(labels)
    cols = max(1, min(cols, n))
    nrows = -(-n // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(2.8 * cols, 3.0 * nrows), squeeze=False, layout="constrained")
    for ax in axes.ravel():
        ax.axis("off")
    for ax, x, label in zip(axes.ravel(), images, labels):
        ax.imshow(stretch(x))
        ax.set_title(label, fontsize=8)
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


def plot_losses(curves: np.ndarray, labels: Sequence[str], path: str | os.PathLike, title: str) -> None:
    """Loss per step for each optimised image (``curves``: ``[steps, K]``)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    steps = np.arange(1, len(curves) + 1)
    for j, label in enumerate(labels):
        ax.plot(steps, curves[:, j], lw=1.2, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss  (-score + regularisers)")
    ax.grid(alpha=0.3)
    if len(labels) <= 16:
        ax.legend(fontsize=7, ncol=2)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def plot_tuning(results: Sequence[dict], path: str | os.PathLike, title: str) -> None:
    """Mean loss curve of each (learning rate, weight decay) setting, the best one bold."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    best = min(results, key=lambda r: r["score"])
    for r in results:
        curve = np.asarray(r["curve"])
        is_best = r is best
        ax.plot(np.arange(1, len(curve) + 1), curve, lw=2.4 if is_best else 1.0, alpha=1.0 if is_best else 0.7,
                label=f"lr {r['lr']:g}, wd {r['weight_decay']:g}: median(last 10) {r['score']:.3g}"
                + ("  (best)" if is_best else ""))
    ax.set_xlabel("step")
    ax.set_ylabel("mean loss over the images")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def _filter_image(kernel: np.ndarray) -> tuple[np.ndarray, bool]:
    """``[kh, kw, cin]`` -> an RGB picture (cin == 3, grey = 0) or a 2D sum over the input
    channels (signed, for a diverging colour map)."""
    if kernel.shape[-1] == 3:
        m = np.abs(kernel).max()
        return 0.5 + 0.5 * kernel / (m if m > 0 else 1.0), True
    return kernel.sum(axis=-1), False


def plot_filters_and_maps(image: np.ndarray, filters: np.ndarray, maps: np.ndarray, channels: Sequence[int],
                          path: str | os.PathLike, title: str, pairs_per_row: int = 4) -> None:
    """Filter i beside feature map i, for each listed output channel."""
    plt = pyplot()
    n = len(channels)
    per_row = max(1, min(pairs_per_row, n))
    nrows = -(-n // per_row) + 1
    fig, axes = plt.subplots(nrows, 2 * per_row, figsize=(2.1 * 2 * per_row, 2.3 * nrows), squeeze=False,
                             layout="constrained")
    for ax in axes.ravel():
        ax.axis("off")
    axes[0, 0].imshow(_img(image))
    axes[0, 0].set_title("input image", fontsize=8)
    pics = [_filter_image(f) for f in filters]
    flim = max([float(np.abs(p).max()) for p, rgb in pics if not rgb] + [0.0]) or 1.0
    mmax = float(np.abs(maps).max()) or 1.0
    fim = mim = None
    for k, c in enumerate(channels):
        r, col = 1 + k // per_row, 2 * (k % per_row)
        pic, is_rgb = pics[k]
        if is_rgb:
            axes[r, col].imshow(np.clip(pic, 0, 1), interpolation="nearest")
        else:
            fim = axes[r, col].imshow(pic, cmap="RdBu_r", vmin=-flim, vmax=flim, interpolation="nearest")
        axes[r, col].set_title(f"filter {c}", fontsize=7)
        mim = axes[r, col + 1].imshow(maps[k], cmap="viridis", vmin=-mmax if maps.min() < 0 else 0, vmax=mmax)
        axes[r, col + 1].set_title(f"map {c}", fontsize=7)
    if mim is not None:
        fig.colorbar(mim, ax=list(axes[1:].ravel()), fraction=0.02, pad=0.01, label="feature map value")
    if fim is not None:
        fig.colorbar(fim, ax=list(axes[0, 1:].ravel()) or [axes[0, 0]], orientation="horizontal", fraction=0.3,
                     label="filter weight (sum over input channels)")
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


def plot_weight_images(weights: np.ndarray, units: Sequence[int], labels: Sequence[str],
                       path: str | os.PathLike, title: str, cols: int = 5) -> None:
    """Dense weights whose input is an image, one picture per unit (RGB: grey = 0, else signed)."""
    plt = pyplot()
    n = len(units)
    cols = max(1, min(cols, n))
    nrows = -(-n // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(2.4 * cols + 0.8, 2.6 * nrows), squeeze=False,
                             layout="constrained")
    for ax in axes.ravel():
        ax.axis("off")
    m = float(np.abs(weights).max()) or 1.0
    im = None
    for ax, w, label in zip(axes.ravel(), weights, labels):
        if w.shape[-1] == 3:
            ax.imshow(np.clip(0.5 + 0.5 * w / m, 0, 1), interpolation="nearest")
        else:
            im = ax.imshow(w.mean(axis=-1), cmap="RdBu_r", vmin=-m, vmax=m, interpolation="nearest")
        ax.set_title(label, fontsize=8)
    if im is not None:
        fig.colorbar(im, ax=list(axes.ravel()), fraction=0.02, pad=0.02, label="weight")
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path)
