"""The figures a person judges a run by: what the matrices and curves draw, checked on the Axes."""

import numpy as np
import pytest

HISTORY = [{"phase": "transfer", "epoch": e, "lr": 1e-3, "loss": 1.0, "accuracy": 0.5, "val_loss": v,
            "val_accuracy": 0.5} for e, v in ((1, 1.0), (2, 0.8), (3, 0.9))] + \
          [{"phase": "finetune", "epoch": e, "lr": 1e-4, "loss": 0.8, "accuracy": 0.6, "val_loss": v,
            "val_accuracy": 0.6} for e, v in ((4, 0.7), (5, 0.6), (6, 0.65))]


def test_row_normalised_matrix_by_hand():
    from leafnet.plots import row_normalised

    np.testing.assert_allclose(row_normalised([[3, 1], [0, 2]]), [[0.75, 0.25], [0.0, 1.0]])
    np.testing.assert_allclose(row_normalised([[0, 0], [1, 3]]), [[0.0, 0.0], [0.25, 0.75]])   # no images: zeros


def test_the_row_normalised_figure_shows_shares_and_counts():
    from leafnet.plots import confusion_figure

    fig = confusion_figure(np.array([[3, 1], [0, 2]]), ["oak", "ivy"], normalized=True)
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.images[0].get_array(), [[0.75, 0.25], [0.0, 1.0]])
    assert sorted(t.get_text() for t in ax.texts) == ["0.25\n(1)", "0.75\n(3)", "1.00\n(2)"]
    assert ax.get_title() == "confusion matrix (row-normalised)"
    counts = confusion_figure(np.array([[3, 1], [0, 2]]), ["oak", "ivy"]).axes[0]
    assert sorted(t.get_text() for t in counts.texts) == ["1", "2", "3"]


def test_the_counts_are_left_out_where_they_would_not_be_readable():
    from leafnet.plots import COUNTS_UP_TO, confusion_figure

    n = COUNTS_UP_TO + 1
    fig = confusion_figure(np.eye(n, dtype=int) * 4, [f"c{i}" for i in range(n)], normalized=True)
    assert [t.get_text() for t in fig.axes[0].texts] == ["1.00"] * n


def test_the_curves_mark_the_restored_epochs(tmp_path):
    from PIL import Image

    from leafnet.plots import RESTORED, curves_figure, plot_curves

    fig = curves_figure(HISTORY, title="run", restored={"transfer": 2, "finetune": 5})
    for ax in fig.axes[:2]:                                    # loss and accuracy
        marks = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
        assert sorted(float(line.get_xdata()[0]) for line in marks) == [2.0, 5.0]
        assert all(line.get_xdata()[0] == line.get_xdata()[1] for line in marks)     # vertical
        assert [t.get_text() for t in ax.get_legend().get_texts()].count(RESTORED) == 1
    assert RESTORED == "restored weights"
    plain = curves_figure(HISTORY)
    assert not [line for line in plain.axes[0].get_lines() if line.get_linestyle() == ":"]
    plot_curves(HISTORY, tmp_path / "curves.png", title="simple-cnn on 4 classes", restored={"transfer": 2})
    with Image.open(tmp_path / "curves.png") as im:
        assert im.info["Title"] == "simple-cnn on 4 classes"


# Run in a child whose address space is capped: a figure that grows with the classes fails
# there (MemoryError) instead of taking the machine's memory.
BOUNDED_CHILD = r"""
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
import numpy as np
from leafnet.plots import plot_confusion
n = 500
matrix = np.zeros((n, n), dtype=np.int64)
for i in range(n):
    matrix[i, (i * 7 + 1) % n] += 1          # 2 images per class: one right, one wrong
    matrix[i, i] += 1
matrix[10, 20] += 3                             # the largest error
plot_confusion(matrix, [f"class_{i:03d}" for i in range(n)], sys.argv[1], normalized=True,
               title="val: 1003 images", table="confusion_val.csv")
"""


def test_a_500_class_matrix_is_a_bounded_picture_of_the_most_confused_classes(tmp_path):
    import subprocess
    import sys

    from PIL import Image

    png = tmp_path / "confusion_val.png"
    done = subprocess.run([sys.executable, "-c", BOUNDED_CHILD, str(png)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    from leafnet.plots import MAX_PIXELS, MOST_CONFUSED

    with Image.open(png) as im:
        assert max(im.size) <= MAX_PIXELS == 4000, im.size
        assert im.info["Title"] == (f"val: 1003 images\n{MOST_CONFUSED} of 500 classes: those of the largest errors; "
                                    "every class: confusion_val.csv")
    assert [p.name for p in tmp_path.iterdir()] == ["confusion_val.png"]     # no temporary left


def test_past_40_classes_the_matrix_shows_the_largest_errors_with_shares_of_the_whole_class():
    from leafnet.plots import MATRIX_UP_TO, MOST_CONFUSED, confusion_figure

    n = MATRIX_UP_TO + 1
    matrix = np.eye(n, dtype=int) * 4
    matrix[7, 7], matrix[7, 33] = 1, 3        # 3 of class 7's 4 images taken for class 33
    matrix[2, 2], matrix[2, 5] = 3, 1
    classes = [f"c{i}" for i in range(n)]
    ax = confusion_figure(matrix, classes, normalized=True).axes[0]
    shown = [t.get_text() for t in ax.get_yticklabels()]
    assert len(shown) == MOST_CONFUSED and shown[:4] == ["c7", "c33", "c2", "c5"]
    assert [t.get_text() for t in ax.get_xticklabels()] == shown
    np.testing.assert_allclose(ax.images[0].get_array()[0, :2], [0.25, 0.75])   # of the whole row of c7
    assert ax.get_title().endswith(f"\n{MOST_CONFUSED} of {n} classes: those of the largest errors")
    every = confusion_figure(matrix[:MATRIX_UP_TO, :MATRIX_UP_TO], classes[:MATRIX_UP_TO]).axes[0]
    assert len(every.get_yticklabels()) == MATRIX_UP_TO and "\n" not in every.get_title()


def test_the_whole_matrix_is_a_csv_with_the_class_names(tmp_path):
    from leafnet.confusion import CSV_CORNER, csv_path, write_confusion_csv
    from leafnet.runs import read_csv

    path = csv_path(tmp_path / "val_confusion.png")
    assert path.name == "val_confusion.csv"
    write_confusion_csv([[3, 1], [0, 2]], ["oak", "=ivy"], path)
    assert read_csv(path) == [{CSV_CORNER: "oak", "oak": "3", "=ivy": "1"}, {CSV_CORNER: "=ivy", "oak": "0", "=ivy": "2"}]
    assert path.read_text().splitlines()[0] == "true \\ predicted,oak,'=ivy"   # no formula in a spreadsheet


def test_the_class_counts_of_1000_classes_are_a_bounded_picture(tmp_path):
    from PIL import Image

    from leafnet.explain.plots import plot_class_counts

    classes = [f"class_{i:04d}" for i in range(1000)]
    counts = {"train": {c: 1 + i % 3 for i, c in enumerate(classes)}, "val": {c: 1 for c in classes}}
    plot_class_counts(counts, tmp_path / "counts.png", title="images per class")
    with Image.open(tmp_path / "counts.png") as im:
        assert max(im.size) <= 4000 and im.info["Title"] == "images per class (1000 classes, most images first)"


def test_a_figure_that_outgrows_its_size_is_saved_within_the_pixel_bound(tmp_path):
    from PIL import Image

    from leafnet.plots import plot_top_losses

    rows = [{"path": str(tmp_path / "gone.png"), "true": "oak", "predicted": "ivy", "confidence": 0.9, "loss": 2.3}]
    plot_top_losses(rows, tmp_path / "losses.png", title="a title far wider than the figure " * 60)
    with Image.open(tmp_path / "losses.png") as im:
        assert max(im.size) <= 4000 and im.size[0] > 3000


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def test_the_old_plot_paths_name_the_same_functions():
    import leafnet.explain.plots as old_explain
    import leafnet.plots as plots
    from leafnet.plots import confusion, curves, data, explain, figure, search, top_losses

    assert old_explain.plot_panel is explain.plot_panel and old_explain.caption is explain.caption
    assert old_explain.plot_class_counts is data.plot_class_counts is plots.plot_class_counts
    assert old_explain.plot_lr is curves.plot_lr
    assert plots.plot_confusion is confusion.plot_confusion and plots.plot_curves is curves.plot_curves
    assert plots.plot_search is search.plot_search and plots.plot_top_losses is top_losses.plot_top_losses
    assert plots._pyplot is figure.pyplot and plots._save is figure.save_figure
    assert figure.pyplot().get_backend().lower() == "agg"
