"""Class names that are numbers, formulas, unicode or hold a newline: the order stored at training
is the one predict and export use on another machine, and no output leaves the run folder."""

import json
import os
import shutil

import numpy as np
import pytest

from leafnet.runs import read_csv

pytestmark = pytest.mark.slow

NAMES = ["10", "2", "-1", "=cmd", "a\nb", "ünï 葉"]


def listing(root):
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)


@pytest.fixture(scope="module")
def odd_run(tmp_path_factory, leaves, tiny_config):
    import leafnet

    root = tmp_path_factory.mktemp("odd")
    species = sorted(p.name for p in leaves.iterdir())
    for k, name in enumerate(NAMES):
        (root / "data" / name).mkdir(parents=True)
        for i in range(1, 7):
            src = leaves / species[k % 4] / f"{species[k % 4]}_{i + 6 * (k // 4):04d}.png"
            shutil.copy(src, root / "data" / name / f"{i}.png")
    cfg = tiny_config(root / "data", root / "run", transfer__epochs=1, finetune__blocks=0, data__val_split=0.34)
    leafnet.fit(cfg)
    return root


def test_stored_order_is_string_order_and_survives_split_csv(odd_run, run_cli):
    from leafnet.data.prepare import read_split
    from leafnet.runs import RunDir

    run = RunDir(odd_run / "run")
    classes = json.loads(run.classes.read_text(encoding="utf-8"))
    assert classes == ["-1", "10", "2", "=cmd", "a\nb", "ünï 葉"]        # sorted as text, once
    text = run.split.read_text(encoding="utf-8")
    assert ",'-1," in text and ",'=cmd," in text                       # formulas escaped in the file
    split = read_split(run)                                            # ... and read back exactly
    assert split.classes == classes and sorted(set(split.labels.tolist())) == list(range(6))
    before = listing(odd_run)
    code, out, err = run_cli("evaluate", run.root)
    assert code == 0, err
    new = sorted(set(listing(odd_run)) - set(before))
    assert new and all(p.startswith(str(run.root / "eval") + os.sep) for p in new)
    rows = read_csv(run.root / "eval" / "val_predictions.csv")
    assert {r["true"] for r in rows} == set(classes)


def test_predict_and_export_on_another_machine_use_the_stored_order(odd_run, tmp_path, run_cli):
    import keras
    import tensorflow as tf

    from leafnet.data.pipeline import load_image

    images = [tmp_path / "in" / f"{k}.png" for k in range(len(NAMES))]
    images[0].parent.mkdir()
    for k, name in enumerate(NAMES):
        shutil.copy(odd_run / "data" / name / "1.png", images[k])
    other = tmp_path / "machine2" / "copied run"                        # another path, the data gone
    shutil.copytree(odd_run / "run", other)
    shutil.rmtree(other / "eval", ignore_errors=True)
    os.rename(odd_run / "data", odd_run / "data-away")
    try:
        out = tmp_path / "preds.csv"
        code, stdout, err = run_cli("predict", other, *images, "--out", out)
        assert code == 0, err
        code, stdout, err = run_cli("export", other, "--format", "savedmodel")
        assert code == 0, err
    finally:
        os.rename(odd_run / "data-away", odd_run / "data")
    classes = json.loads((other / "classes.json").read_text(encoding="utf-8"))
    rows = read_csv(out)
    model = keras.saving.load_model(other / "model.keras")
    x = np.stack([load_image(str(p), 32).numpy() for p in images]).astype("float32")
    probs = np.asarray(model(x, training=False))
    assert [r["class"] for r in rows] == [classes[i] for i in probs.argmax(1)]
    served = tf.saved_model.load(str(other / "export" / "savedmodel")).signatures["serving_bytes"](
        images=tf.constant([p.read_bytes() for p in images]))
    assert [c.decode() for c in served["class_name"].numpy()] == [r["class"] for r in rows]
    np.testing.assert_allclose(served["probabilities"].numpy(), probs, atol=1e-5)
    card = json.loads((other / "export" / "savedmodel" / "model_card.json").read_text(encoding="utf-8"))
    assert card["classes"] == classes
    assert all(p.startswith(str(other) + os.sep) for p in listing(tmp_path / "machine2"))
