"""A folder laid out as train/ val/ test/ is the split, not three classes; test is held out."""

from __future__ import annotations

import csv
import json
from collections import Counter

import pytest

from leafnet.data.layout import split_layout


def _classes(root, *names):
    for n in names:
        (root / n).mkdir(parents=True)


def test_split_folders_are_recognised(tmp_path):
    _classes(tmp_path, "train/oak", "train/maple", "val/oak", "val/maple", "test/oak", "test/maple")
    assert split_layout(tmp_path) == {r: str(tmp_path / r) for r in ("train", "val", "test")}


def test_train_and_test_alone_and_other_spellings(tmp_path):
    _classes(tmp_path / "a", "training/oak", "testing/oak")
    assert split_layout(tmp_path / "a") == {"train": str(tmp_path / "a/training"), "test": str(tmp_path / "a/testing")}
    _classes(tmp_path / "b", "train/oak", "valid/oak", ".cache/x")
    assert set(split_layout(tmp_path / "b")) == {"train", "val"}


@pytest.mark.parametrize("folders", [
    ("train/oak", "val/oak", "birch/x"),      # a class folder beside them: class folders after all
    ("train/oak",),                            # train alone: a class named train
    ("train", "val"),                          # no class folders inside
    ("train/oak", "val/oak", "validation/oak"),  # two folders for one role
])
def test_class_folders_are_not_mistaken_for_a_split(tmp_path, folders):
    _classes(tmp_path, *folders)
    assert split_layout(tmp_path) is None


@pytest.mark.slow
def test_fit_uses_the_split_and_holds_test_out(tmp_path, run_cli):
    from leafnet.datasets import generate

    root = tmp_path / "data"
    for sub, n, seed in (("train", 12, 1), ("val", 4, 2), ("test", 5, 3)):
        generate(root / sub, classes=3, per_class=n, size=32, seed=seed)
    run = tmp_path / "run"
    code, out, err = run_cli("fit", "--data", root, "--backbone", "simple-cnn", "--image-size", "32",
                             "--epochs", "1", "--finetune-epochs", "1", "--run-dir", run)
    assert code == 0, err
    assert f"note: {root} is laid out as train/ val/ test/: using train, val, test (held out" in out
    assert json.loads((run / "classes.json").read_text()) == ["ginkgo_fan", "maple_palmate", "oak_pinnate"]
    rows = list(csv.DictReader(open(run / "split.csv")))
    assert Counter(r["subset"] for r in rows) == {"train": 36, "val": 12, "test": 15}
    assert all(f"/{r['subset']}/" in r["path"] for r in rows)       # each file in the subset of its folder
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["train_images"] == 36 and metrics["val_images"] == 12 and metrics["test"]["images"] == 15
    assert f"test accuracy {metrics['test']['accuracy']:.2%}" in out
    # evaluate --subset test computes the same accuracy on the same 15 images, its own way
    code, out, err = run_cli("evaluate", run, "--subset", "test")
    assert code == 0, err
    report = json.loads((run / "eval" / "test.json").read_text())
    assert report["images"] == 15 and report["accuracy"] == pytest.approx(metrics["test"]["accuracy"])
