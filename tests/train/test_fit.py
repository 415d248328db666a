"""End-to-end: two-phase fits on the synthetic leaves, the run folder, resume after SIGKILL."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

import leafnet
from leafnet.errors import LeafnetError

pytestmark = pytest.mark.slow


def final_weights(run_dir):
    state = json.loads((run_dir / "backup" / "state.json").read_text())
    with np.load(run_dir / "backup" / state["weights"]) as data:
        return {k: data[k] for k in data.files if k.startswith("w")}


def history(run_dir):
    with open(run_dir / "history.csv") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def finished(leaves, tmp_path_factory, tiny_config):
    run_dir = tmp_path_factory.mktemp("runs") / "run"
    cfg = tiny_config(leaves, run_dir, transfer__epochs=15, finetune__epochs=3, transfer__schedule="cosine",
                      transfer__lr=2e-3, data__image_size=40, model__pooling="max")
    return leafnet.fit(cfg), run_dir


def test_two_phase_fit_learns(finished):
    run, _ = finished
    # 4 classes, 24 training images each, 18 epochs from scratch: chance is 0.25.
    assert run.metrics["val_accuracy"] >= 0.55


def test_run_folder_files_exist_and_parse(finished, leaves):
    run, run_dir = finished
    for name in ("config.yaml", "classes.json", "split.csv", "data_report.json", "history.csv",
                 "best.keras", "model.keras", "metrics.json", "plots/curves.png", "plots/confusion_val.png"):
        assert (run_dir / name).is_file(), name
    classes = json.loads((run_dir / "classes.json").read_text())
    assert classes == sorted(p.name for p in leaves.iterdir())
    report = json.loads((run_dir / "data_report.json").read_text())
    assert report["used"] == 120 and report["skipped"] == [] and sum(report["classes"].values()) == 120
    with open(run_dir / "split.csv") as f:
        rows = list(csv.DictReader(f))
    assert [len(r["sha1"]) for r in rows] == [40] * 120
    assert sum(r["subset"] == "val" for r in rows) == 4 * round(30 / 6)
    rows = history(run_dir)
    assert [r["phase"] for r in rows] == ["transfer"] * 15 + ["finetune"] * 3
    assert [int(r["epoch"]) for r in rows] == list(range(1, 19))
    assert {"lr", "epoch_seconds", "val_loss", "val_accuracy"} <= set(rows[0])
    assert float(rows[0]["lr"]) == pytest.approx(2e-3, rel=1e-6)
    assert float(rows[14]["lr"]) < float(rows[1]["lr"]) < float(rows[0]["lr"])     # cosine decay
    assert float(rows[-1]["lr"]) == pytest.approx(3e-4, rel=1e-6)
    m = run.metrics
    assert set(m["per_class"]) == set(classes)
    assert np.array(m["confusion"]).sum() == m["val_images"]
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert cfg["run"]["dir"] is None and cfg["data"]["image_size"] == 40
    from PIL import Image

    assert Image.open(run_dir / "plots" / "curves.png").size[0] > 800


def test_model_reloads_and_predicts_the_same(finished):
    """model.keras, reloaded, is the model whose validation metrics fit reported: its own
    predictions on split.csv's val images give metrics.json's confusion matrix and accuracy."""
    run, run_dir = finished
    from leafnet.data.pipeline import ImageSet

    classes = run.classes
    with open(run_dir / "split.csv") as f:
        val = [r for r in csv.DictReader(f) if r["subset"] == "val"]
    labels = np.array([classes.index(r["class"]) for r in val])
    model = run.load_model()
    pred = model.predict(ImageSet([r["path"] for r in val], labels, len(classes), 40).dataset(16), verbose=0)
    confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(confusion, (labels, pred.argmax(axis=1)), 1)
    m = run.metrics
    assert len(val) == m["val_images"] == 20
    np.testing.assert_array_equal(confusion, np.array(m["confusion"]))
    assert float((pred.argmax(axis=1) == labels).mean()) == m["val_accuracy"]
    assert model.get_layer("predictions").output.shape[-1] == 4


def test_config_yaml_reproduces_the_run(finished, tmp_path):
    _, run_dir = finished
    again = leafnet.fit(str(run_dir / "config.yaml"), **{"run.dir": str(tmp_path / "again"), "run.verbose": 0})
    a, b = final_weights(run_dir), final_weights(tmp_path / "again")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert again.metrics["val_accuracy"] == leafnet.Run(run_dir).metrics["val_accuracy"]


def test_a_finished_run_is_not_retrained_and_another_config_is_refused(finished, tiny_config):
    run, run_dir = finished
    cfg = tiny_config(run.metrics and run_dir.parent, run_dir)
    with pytest.raises(LeafnetError, match="holds a different run"):
        leafnet.fit(cfg)
    before = (run_dir / "model.keras").stat().st_mtime_ns
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    cfg["run"]["dir"] = str(run_dir)
    leafnet.fit(cfg)
    assert (run_dir / "model.keras").stat().st_mtime_ns == before


def _cli(leaves, run_dir):
    return [sys.executable, "-m", "leafnet", "fit", "--data", str(leaves), "--backbone", "simple-cnn",
            "--weights", "none", "--image-size", "32", "--batch-size", "16", "--epochs", "3", "--lr", "3e-3",
            "--finetune-epochs", "3", "--finetune-blocks", "2", "--seed", "11", "--run-dir", str(run_dir),
            "--set", "transfer.early_stopping=0", "--set", "run.verbose=2", "--set", "augment.rotation=0.2"]


@pytest.mark.parametrize("kill_after", [2, 4])   # inside the transfer phase; inside fine-tuning
def test_sigkill_then_rerun_equals_an_uninterrupted_run(leaves, tmp_path, kill_after):
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run(_cli(leaves, ref), check=True, env=env, capture_output=True)
    proc = subprocess.Popen(_cli(leaves, killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:
        if (killed / "history.csv").exists() and len(history(killed)) >= kill_after:
            break
        if proc.poll() is not None:
            pytest.fail("the run ended before it could be killed")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "metrics.json").exists()
    out = subprocess.run(_cli(leaves, killed), env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "resuming" in out.stdout
    rows = history(killed)
    assert [int(r["epoch"]) for r in rows] == list(range(1, 7))     # every epoch once
    ref_rows = history(ref)
    for a, b in zip(rows, ref_rows):
        assert a["val_loss"] == b["val_loss"] and a["phase"] == b["phase"]
    a, b = final_weights(ref), final_weights(killed)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], atol=1e-6, rtol=0)
    # No stray temporary files under final names, and every artifact parses.
    assert not list(killed.rglob("*.tmp*"))
    json.loads((killed / "metrics.json").read_text())


def test_a_poisoned_batch_stops_the_run_with_a_clear_message(leaves, tmp_path, tiny_config, monkeypatch):
    import tensorflow as tf

    from leafnet.data.pipeline import ImageSet

    original = ImageSet.dataset
    calls = {"train": 0}

    def poisoned(self, batch_size, order=None):
        ds = original(self, batch_size, order)
        if order is None:                 # validation: untouched
            return ds
        calls["train"] += 1
        if calls["train"] < 3:            # epochs 1-2 are fine, epoch 3 has a NaN batch
            return ds
        return ds.enumerate().map(lambda i, b: (tf.where(i == 1, b[0] * np.nan, b[0]), b[1]))

    monkeypatch.setattr(ImageSet, "dataset", poisoned)
    monkeypatch.setattr("leafnet.train.trainer.BEST_EVERY_SECONDS", 1e9)   # only the first improvement writes at once
    run_dir = tmp_path / "nan"
    # Keras' BatchNormalization turns the NaN batch into a NaN loss, caught at that batch; with
    # the fused kernel the loss stayed finite and the NaN moving statistics are caught at the
    # epoch's end. Either way: one clear message, the last good epochs kept.
    cfg = tiny_config(leaves, run_dir)
    with pytest.raises(leafnet.LeafnetError, match="loss became nan at epoch 3 .*batch 2"):
        leafnet.fit({**cfg, "run": {**cfg["run"], "fused_batchnorm": False}})
    assert [int(r["epoch"]) for r in history(run_dir)] == [1, 2]
    shutil.rmtree(run_dir)
    calls["train"] = 0
    with pytest.raises(leafnet.LeafnetError, match="training diverged.* at epoch 3 "):
        leafnet.fit(cfg)
    assert not (run_dir / "model.keras").exists()
    assert [int(r["epoch"]) for r in history(run_dir)] == [1, 2]       # the last good epochs are kept
    import keras

    best = keras.saving.load_model(run_dir / "best.keras")
    assert all(np.isfinite(np.array(w)).all() for w in best.weights)
    state = json.loads((run_dir / "backup" / "state.json").read_text())
    assert state["epochs"] == 2 and state["best_saved"]
    # best.keras holds the best epoch's weights, also when the last improvement was not yet
    # written (within a phase it is written at most once a minute) when the run stopped.
    with np.load(run_dir / "backup" / state["best_weights"]) as saved:
        expected = [saved[k] for k in sorted(k for k in saved.files if k.startswith("w"))]
    assert len(expected) == len(best.weights)
    for w, e in zip(best.weights, expected):
        np.testing.assert_array_equal(np.asarray(w), e)
