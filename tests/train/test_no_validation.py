"""``--val-split 0``: every image trains, nothing is validated, the last epoch is the model."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest


@pytest.mark.slow
def test_val_split_0_trains_on_everything_and_keeps_the_last_epoch(leaves, tmp_path, run_cli):
    import keras

    run = tmp_path / "run"
    code, out, err = run_cli("fit", "--data", leaves, "--backbone", "simple-cnn", "--image-size", "32",
                             "--epochs", "2", "--finetune-epochs", "1", "--val-split", "0", "--run-dir", run)
    assert code == 0, err
    assert "note: --val-split 0: no validation" in out
    rows = list(csv.DictReader(open(run / "split.csv")))
    assert len(rows) == 120 and {r["subset"] for r in rows} == {"train"}
    history = list(csv.DictReader(open(run / "history.csv")))
    assert len(history) == 3 and all(r["val_loss"] == "" for r in history)   # no early stop, no restore
    assert not (run / "best.keras").exists()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["val_accuracy"] is None and metrics["train_images"] == 120 and metrics["val_images"] == 0
    assert "no validation (val_split 0): the model is the last epoch's weights" in out
    # model.keras holds the last epoch's weights: the backup of epoch 3
    state = json.loads((run / "backup" / "state.json").read_text())
    last = np.load(run / "backup" / state["weights"])
    model = keras.saving.load_model(run / "model.keras")
    assert all(np.array_equal(np.asarray(v), last[f"w{i:05d}"]) for i, v in enumerate(model.weights))


def test_a_search_refuses_val_split_0(leaves, tmp_path, run_cli):
    code, _, err = run_cli("search", "--data", leaves, "--val-split", "0", "--run-dir", tmp_path / "s")
    assert code == 2
    assert "a search ranks its trials on the validation set: --val-split must be > 0" in err
