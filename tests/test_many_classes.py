"""Many classes, few images: a run finishes with its numbers, bounded figures and the whole
confusion matrix as CSV; a figure that fails to draw costs a warning line, not the run."""

import json

import numpy as np
import pytest

from leafnet.runs import read_csv

CLASSES = 60


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    """60 classes x 2 noise PNGs at 32 px, each class its own mean colour."""
    from PIL import Image

    root = tmp_path_factory.mktemp("many") / "data"
    rng = np.random.default_rng(0)
    for c in range(CLASSES):
        (root / f"class_{c:02d}").mkdir(parents=True)
        mean = rng.integers(0, 256, 3)
        for i in range(2):
            x = np.clip(mean + rng.normal(0, 30, (32, 32, 3)), 0, 255).astype("uint8")
            Image.fromarray(x).save(root / f"class_{c:02d}" / f"{i}.png")
    return root


@pytest.mark.slow
def test_a_60_class_run_keeps_its_numbers_when_a_figure_fails(many, tmp_path, tiny_config, monkeypatch, capsys):
    from PIL import Image

    import leafnet
    import leafnet.plots
    from leafnet.evaluate import evaluate

    def broken(*args, **kwargs):
        raise RuntimeError("no figure today")

    monkeypatch.setattr(leafnet.plots, "plot_curves", broken)
    run_dir = tmp_path / "run"
    run = leafnet.fit(tiny_config(many, run_dir, transfer__epochs=1, finetune__epochs=0))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert run.metrics["val_accuracy"] == metrics["val_accuracy"] and len(metrics["classes"]) == CLASSES
    assert not (run_dir / "plots" / "curves.png").exists()
    err = capsys.readouterr().err
    assert f"warning: could not draw {run_dir / 'plots' / 'curves.png'} (RuntimeError: no figure today); " \
           "the numbers are written" in err
    from leafnet.confusion import CSV_CORNER

    rows = read_csv(run_dir / "plots" / "confusion_val.csv")
    assert list(rows[0]) == [CSV_CORNER, *metrics["classes"]] and len(rows) == CLASSES
    assert [[int(r[c]) for c in metrics["classes"]] for r in rows] == metrics["confusion"]
    with Image.open(run_dir / "plots" / "confusion_val.png") as im:
        assert max(im.size) <= 4000 and "30 of 60 classes" in im.info["Title"]

    monkeypatch.setattr(leafnet.plots, "plot_top_losses", broken)
    report = evaluate(run_dir, subset="val")
    assert json.loads((run_dir / "eval" / "val.json").read_text())["accuracy"] == report["accuracy"]
    assert len(read_csv(run_dir / "eval" / "val_confusion.csv")) == CLASSES
    assert not (run_dir / "eval" / "val_top_losses.png").exists()
    assert "warning: could not draw" in capsys.readouterr().err
    for name in ("val_confusion.png", "val_confusion_normalized.png"):
        with Image.open(run_dir / "eval" / name) as im:
            assert max(im.size) <= 4000, name
