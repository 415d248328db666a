"""leafnet export: the SavedModel's two signatures and the submission folder, loaded in a
subprocess that never imports leafnet, agree with ``leafnet predict``."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from leafnet.runs import read_csv

pytestmark = pytest.mark.slow

TOL = 1e-5


@pytest.fixture(scope="module")
def trained(shared_run):
    return shared_run


def _images(leaves):
    classes = sorted(p.name for p in leaves.iterdir())
    return [str(leaves / c / f"{c}_{i:04d}.png") for c in classes for i in (3, 17)]


def _run_clean(script: str, *args) -> dict:
    """Run ``script`` in a fresh interpreter (no leafnet import allowed); return its JSON stdout."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    code = textwrap.dedent(script) + "\nassert not any(m.startswith('leafnet') for m in sys.modules), 'leafnet imported'\n"
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, env=env,
                         cwd=os.path.dirname(str(args[0])))
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


SAVEDMODEL_SCRIPT = """
import json, sys
import numpy as np
import tensorflow as tf
from PIL import Image
path, files = sys.argv[1], sys.argv[2:]
m = tf.saved_model.load(path)
raw = [open(f, "rb").read() for f in files]
b = m.signatures["serving_bytes"](images=tf.constant(raw))
x = np.stack([np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) for f in files])
d = m.signatures["serving_default"](images=tf.constant(x))
print(json.dumps({k: {"probabilities": o["probabilities"].numpy().tolist(), "class_id": o["class_id"].numpy().tolist(),
                      "class_name": [s.decode() for s in o["class_name"].numpy()]} for k, o in (("bytes", b), ("default", d))}))
"""

SUBMISSION_SCRIPT = """
import json, sys
import numpy as np
from PIL import Image
folder, files = sys.argv[1], sys.argv[2:]
sys.path.insert(0, folder)
from model import model
m = model(folder)
X = np.stack([np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) for f in files])
ids = m.predict(X)
assert isinstance(ids, np.ndarray) and ids.shape == (len(files),)
print(json.dumps({"ids": ids.tolist()}))
"""


def test_savedmodel_signatures_match_leafnet_predict(trained, leaves, tmp_path, run_cli):
    run, run_dir = trained
    files = _images(leaves)
    out = tmp_path / "sm"
    code, stdout, err = run_cli("export", run_dir, "--format", "savedmodel", "--out", out)
    assert code == 0, err
    assert str(out) in stdout and (out / "saved_model.pb").is_file()
    card = json.loads((out / "model_card.json").read_text())
    assert card["classes"] == run.classes and card["image_size"] == 32 and card["backbone"] == "simple-cnn"
    assert card["val_metrics"]["val_accuracy"] == run.metrics["val_accuracy"]
    assert card["training_data"]["used"] == 120 and card["versions"]["tensorflow"]
    code, _, err = run_cli("predict", run_dir, *files, "--out", tmp_path / "p.csv", "--top-k", "1")
    assert code == 0, err
    rows = read_csv(tmp_path / "p.csv")
    from leafnet.predict import predict

    ref = np.stack([r["probabilities"] for r in predict(run, files)])
    got = _run_clean(SAVEDMODEL_SCRIPT, out, *files)
    for sig in ("bytes", "default"):
        probs = np.array(got[sig]["probabilities"])
        assert np.abs(probs - ref).max() <= TOL, (sig, np.abs(probs - ref).max())
        assert got[sig]["class_name"] == [r["class"] for r in rows]
        assert got[sig]["class_id"] == [run.classes.index(r["class"]) for r in rows]
        np.testing.assert_allclose(probs.max(axis=1), [float(r["confidence"]) for r in rows], atol=TOL)


def test_submission_model_py_predicts_class_indices(trained, leaves, tmp_path):
    from leafnet.export import export
    from leafnet.predict import predict

    run, run_dir = trained
    files = _images(leaves)
    out = export(run_dir, format="submission", out=tmp_path / "sub")
    assert (out / "model.py").is_file() and (out / "savedmodel" / "saved_model.pb").is_file()
    assert json.loads((out / "model_card.json").read_text())["format"] == "submission"
    got = _run_clean(SUBMISSION_SCRIPT, out, *files)
    assert got["ids"] == [run.classes.index(r["class"]) for r in predict(run, files)]


def test_keras_export_replaces_atomically(trained, tmp_path):
    import keras

    from leafnet.export import export

    run, run_dir = trained
    target = tmp_path / "k"
    target.mkdir()
    (target / "stale.txt").write_text("old export")
    out = export(run_dir, format="keras", out=target)
    assert sorted(p.name for p in out.iterdir()) == ["classes.json", "model.keras", "model_card.json"]
    assert json.loads((out / "classes.json").read_text()) == run.classes
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]      # no temporaries left
    m = keras.saving.load_model(out / "model.keras")
    assert m.output_shape[-1] == len(run.classes)


def test_unknown_format_and_non_run_are_one_line_errors(tmp_path, run_cli):
    code, _, err = run_cli("export", tmp_path, "--format", "onnx")
    assert code == 2 and err.startswith("error: ") and "onnx" in err
    code, _, err = run_cli("export", tmp_path)
    assert code == 2 and "not a leafnet run folder" in err
