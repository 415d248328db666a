"""Every figure leafnet draws (matplotlib, Agg): training curves, confusion matrices, top
losses, class counts, search points and the pictures of explanations.

The public names of the submodules are importable from here; ``figure`` holds what they
share (:func:`pyplot`, :func:`save_figure`, :func:`draw_or_warn`).
"""

from leafnet.confusion import most_confused, row_normalised
from leafnet.plots.confusion import COUNTS_UP_TO, MATRIX_UP_TO, MOST_CONFUSED, confusion_figure, plot_confusion
from leafnet.plots.curves import RESTORED, curves_figure, history_column, plot_curves, plot_lr
from leafnet.plots.data import NAMED_BARS_UP_TO, plot_class_counts
from leafnet.plots.figure import DPI, LABEL_CHARS, MAX_PIXELS, draw_or_warn, pyplot, save_figure, short_label
from leafnet.plots.search import plot_search
from leafnet.plots.top_losses import plot_top_losses

_pyplot = pyplot          # the former private names, for code that still imports them
_save = save_figure

__all__ = ["COUNTS_UP_TO", "DPI", "LABEL_CHARS", "MATRIX_UP_TO", "MAX_PIXELS", "MOST_CONFUSED", "NAMED_BARS_UP_TO",
           "RESTORED", "confusion_figure", "curves_figure", "draw_or_warn", "history_column", "most_confused",
           "plot_class_counts", "plot_confusion", "plot_curves", "plot_lr", "plot_search", "plot_top_losses", "pyplot",
           "row_normalised", "save_figure", "short_label"]
