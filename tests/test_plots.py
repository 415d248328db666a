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


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
