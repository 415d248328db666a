"""k-fold cross-validation: folds partition the data, stratified, duplicates kept together;
an end-to-end 3-fold run whose summary is the mean and std of its folds."""

import json
import shutil

import numpy as np
import pytest

import leafnet
from leafnet.errors import DataError
from leafnet.tune.cv import fold_masks


def test_folds_partition_stratify_and_keep_copies_together():
    labels = np.repeat([0, 1, 2], [30, 12, 9])
    hashes = [f"h{i}" for i in range(len(labels))]
    hashes[1] = hashes[0]          # a byte-identical copy
    masks = fold_masks(labels, hashes, 3, seed=0)
    assert len(masks) == 3
    assert (np.sum(masks, axis=0) == 1).all()                 # every file validated exactly once
    for m in masks:
        counts = np.bincount(labels[m], minlength=3)
        assert abs(counts[0] - 10) <= 1 and abs(counts[1] - 4) <= 1 and abs(counts[2] - 3) <= 1
        assert m[0] == m[1]
    again = fold_masks(labels, hashes, 3, seed=0)
    assert all((a == b).all() for a, b in zip(masks, again))   # seeded


def test_too_few_images_per_class_is_a_clear_error():
    with pytest.raises(DataError, match="at least 5 images in every class; the smallest class has 3"):
        fold_masks(np.array([0] * 10 + [1] * 3), [str(i) for i in range(13)], 5, seed=0)


@pytest.mark.slow
def test_three_fold_cv_end_to_end(leaves, tmp_path, tiny_config, run_cli):
    root = tmp_path / "cv"
    code, out, err = run_cli("cv", "--data", leaves, "--backbone", "simple-cnn", "--weights", "none",
                             "--image-size", "32", "--epochs", "1", "--finetune-epochs", "0", "--folds", "3",
                             "--run-dir", root)
    assert code == 0, err
    assert "mean" in out and "std" in out and str(root / "cv_summary.json") in out
    summary = json.loads((root / "cv_summary.json").read_text())
    accs = [leafnet.Run(root / f"fold-{k}").metrics["val_accuracy"] for k in (1, 2, 3)]
    assert [r["val_accuracy"] for r in summary["folds"]] == accs
    assert summary["mean"]["val_accuracy"] == pytest.approx(np.mean(accs))
    assert summary["std"]["val_accuracy"] == pytest.approx(np.std(accs, ddof=1))
    vals = [set(r["path"] for r in leafnet.runs.read_csv(root / f"fold-{k}" / "split.csv") if r["subset"] == "val")
            for k in (1, 2, 3)]
    assert not (vals[0] & vals[1]) and not (vals[1] & vals[2]) and sum(map(len, vals)) == 120
    # a rerun resumes (every fold complete: nothing retrained) and gives the same summary
    shutil.rmtree(root / "fold-2" / "plots")
    code, out, err = run_cli("cv", "--data", leaves, "--backbone", "simple-cnn", "--weights", "none",
                             "--image-size", "32", "--epochs", "1", "--finetune-epochs", "0", "--folds", "3",
                             "--run-dir", root, "--quiet")
    assert code == 0, err
    assert json.loads((root / "cv_summary.json").read_text()) == summary
    assert not (root / "fold-2" / "plots").exists()
