"""leafnet evaluate: numbers equal a hand count from the predictions CSV; files; --data; --tta."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from leafnet.runs import read_csv

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(shared_run):
    return shared_run


@pytest.fixture(scope="module")
def val_report(trained):
    from leafnet.evaluate import evaluate

    _, run_dir = trained
    return evaluate(run_dir, subset="val", top_k=2)


def test_numbers_equal_a_hand_count_from_the_predictions_csv(trained, val_report):
    run, run_dir = trained
    rows = read_csv(run_dir / "eval" / "val_predictions.csv")
    classes = run.classes
    split = [r for r in read_csv(run_dir / "split.csv") if r["subset"] == "val"]
    assert sorted(r["path"] for r in rows) == sorted(r["path"] for r in split)
    assert {r["path"]: r["true"] for r in rows} == {r["path"]: r["class"] for r in split}
    losses = [float(r["loss"]) for r in rows]
    assert losses == sorted(losses, reverse=True)
    for r in rows:   # loss is -log(p_true); when the prediction is right p_true is the confidence
        if r["true"] == r["predicted"]:
            assert float(r["loss"]) == pytest.approx(-np.log(float(r["confidence"])), abs=2e-5)
    report = json.loads((run_dir / "eval" / "val.json").read_text())
    assert report["images"] == len(rows) == 20
    assert report["accuracy"] == pytest.approx(sum(r["true"] == r["predicted"] for r in rows) / len(rows))
    assert report["loss"] == pytest.approx(np.mean(losses), abs=1e-5)
    for c in classes:
        mine = [r for r in rows if r["true"] == c]
        assert report["per_class"][c]["support"] == len(mine)
        assert report["per_class"][c]["recall"] == pytest.approx(sum(r["predicted"] == c for r in mine) / len(mine))
        pred_c = [r for r in rows if r["predicted"] == c]
        if pred_c:
            assert report["per_class"][c]["precision"] == pytest.approx(
                sum(r["true"] == c for r in pred_c) / len(pred_c))
    recalls = [report["per_class"][c]["recall"] for c in classes]
    assert report["mean_class_accuracy"] == pytest.approx(np.mean(recalls))
    cm = np.array(report["confusion"])
    i, j = classes.index(rows[0]["true"]), classes.index(rows[0]["predicted"])   # the worst image's cell
    assert cm[i, j] == sum(r["true"] == rows[0]["true"] and r["predicted"] == rows[0]["predicted"] for r in rows)
    assert cm.sum() == 20
    assert report["top_k"] == 2 and report["top_k_accuracy"] >= report["accuracy"]
    # most-confused pairs: off-diagonal cells, largest first
    off = sorted((cm[a, b] for a in range(4) for b in range(4) if a != b and cm[a, b]), reverse=True)[:5]
    assert [p["count"] for p in report["most_confused"]] == off
    assert report == val_report | {}


def test_plots_are_written(trained, val_report):
    from PIL import Image

    _, run_dir = trained
    for name in ("val_confusion.png", "val_confusion_normalized.png", "val_top_losses.png"):
        with Image.open(run_dir / "eval" / name) as im:
            assert im.size[0] > 300, name


def test_tta_averages_the_flips(trained):
    import keras

    from leafnet.data.pipeline import load_image
    from leafnet.evaluate import evaluate

    run, run_dir = trained
    report = evaluate(run_dir, subset="val", tta=True, plots=False)
    assert report["tta"] is True
    rows = {r["path"]: r for r in read_csv(run_dir / "eval" / "val_tta_predictions.csv")}
    paths = sorted(rows)[:6]
    x = np.stack([load_image(p, 32).numpy() for p in paths]).astype("float32")
    model = keras.saving.load_model(run_dir / "model.keras")
    probs = (model.predict(x, verbose=0) + model.predict(x[:, :, ::-1], verbose=0)
             + model.predict(x[:, ::-1], verbose=0)) / 3
    for p, pr in zip(paths, probs):
        assert rows[p]["predicted"] == run.classes[int(pr.argmax())]
        assert float(rows[p]["confidence"]) == pytest.approx(float(pr.max()), abs=1e-5)


def test_tta_files_are_named_and_titled_tta_beside_the_plain_ones(trained, val_report):
    from PIL import Image

    from leafnet.evaluate import evaluate, saved_evaluations

    _, run_dir = trained
    plain = json.loads((run_dir / "eval" / "val.json").read_text())
    plain_rows = read_csv(run_dir / "eval" / "val_predictions.csv")
    report = evaluate(run_dir, subset="val", tta=True, top_k=2)
    names = {k: Path(v).name for k, v in report["files"].items()}
    assert names == {"report": "val_tta.json", "predictions": "val_tta_predictions.csv",
                     "confusion_csv": "val_tta_confusion.csv",
                     "confusion": "val_tta_confusion.png", "confusion_normalized": "val_tta_confusion_normalized.png",
                     "top_losses": "val_tta_top_losses.png"}
    assert json.loads((run_dir / "eval" / "val_tta.json").read_text())["tta"] is True
    # the plain evaluation is still there, unchanged
    assert json.loads((run_dir / "eval" / "val.json").read_text()) == plain == val_report
    assert read_csv(run_dir / "eval" / "val_predictions.csv") == plain_rows
    acc = f"{report['accuracy']:.3f}"
    titles = {}
    for stem in ("val", "val_tta"):
        for kind in ("confusion", "confusion_normalized", "top_losses"):
            with Image.open(run_dir / "eval" / f"{stem}_{kind}.png") as im:
                titles[stem, kind] = im.info["Title"]
    assert titles["val_tta", "confusion"] == f"val (TTA): 20 images, accuracy {acc}, counts"
    assert titles["val_tta", "confusion_normalized"] == f"val (TTA): 20 images, accuracy {acc}, row-normalised"
    assert titles["val_tta", "top_losses"] == "val (TTA): the 16 highest losses"
    assert titles["val", "top_losses"] == "val: the 16 highest losses"
    assert not any("TTA" in t for (stem, _), t in titles.items() if stem == "val")
    found = saved_evaluations(run_dir)
    assert [(e["label"], e["paths"]["report"].name) for e in found][:2] == [("val", "val.json"),
                                                                            ("val (TTA)", "val_tta.json")]


def test_cli_on_a_labelled_folder(trained, leaves, run_cli):
    _, run_dir = trained
    code, out, err = run_cli("evaluate", run_dir, "--data", leaves, "--top-k", "3")
    assert code == 0, err
    assert "accuracy" in out and "precision" in out and "most confused" in out
    report = json.loads((run_dir / "eval" / "leaves.json").read_text())
    assert report["images"] == 120 and report["top_k_accuracy"] >= report["accuracy"]
    assert len(read_csv(run_dir / "eval" / "leaves_predictions.csv")) == 120


def test_a_folder_with_other_classes_is_refused_naming_them(trained, leaves, tmp_path, run_cli):
    _, run_dir = trained
    other = tmp_path / "other"
    names = sorted(p.name for p in leaves.iterdir())
    for name in names[1:]:
        shutil.copytree(leaves / name, other / name)
    shutil.copytree(leaves / names[1], other / "zebra_grass")
    code, out, err = run_cli("evaluate", run_dir, "--data", other)
    assert code == 2
    assert err.startswith("error: ") and names[0] in err and "zebra_grass" in err
    assert len(err.strip().splitlines()) == 1
    assert not (run_dir / "eval" / "other.json").exists()
