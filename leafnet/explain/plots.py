"""Alias of :mod:`leafnet.plots.explain` (and ``plot_class_counts``, ``plot_lr``), where the
pictures of explanations now live."""

from leafnet.plots.curves import plot_lr
from leafnet.plots.data import NAMED_BARS_UP_TO, plot_class_counts
from leafnet.plots.explain import (ALPHA, HEAT, caption, plot_blocks, plot_filters_and_maps, plot_grid,
                                   plot_inversions, plot_losses, plot_panel, plot_tuning, plot_weight_images,
                                   stretch)

__all__ = ["ALPHA", "HEAT", "NAMED_BARS_UP_TO", "caption", "plot_blocks", "plot_class_counts", "plot_filters_and_maps",
           "plot_grid", "plot_inversions", "plot_losses", "plot_lr", "plot_panel", "plot_tuning",
           "plot_weight_images", "stretch"]
