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


SNIPPET_SCRIPT = """
import json, sys
import numpy as np
images = np.zeros((3, 32, 32, 3), np.float32)
exec(open(sys.argv[1]).read())
probs = np.asarray(probs)
print(json.dumps({"shape": list(probs.shape), "sums": probs.sum(axis=1).tolist(), "input": list(%s)}))
"""

# the loaded model's input shape, asked the way each library reports it
LOADED_INPUT = {
    "savedmodel": 'model.signatures["serving_default"].structured_input_signature[1]["images"].shape.as_list()',
    "keras": "model.input_shape",
    "tflite": '[None if n < 0 else int(n) for n in run.get_input_details()["images"]["shape_signature"]]',
    "onnx": "[d if isinstance(d, int) else None for d in session.get_inputs()[0].shape]",
    "submission": 'model(sys.path[0])._serve.structured_input_signature[1]["images"].shape.as_list()',
}
PROGRESS = {
    "savedmodel": ["loading {model}", "building the SavedModel (signatures serving_default, serving_bytes) and writing it"],
    "keras": ["loading {model}", "copying {model}"],     # loaded first: a damaged file is refused, not copied
    "tflite": ["loading {model}", "converting to TFLite (quantization: none) and writing model.tflite",
               "checking parity with the Keras model on {val} validation images"],
    "onnx": ["loading {model}", "converting to ONNX (tf2onnx) and writing model.onnx",
             "checking parity with the Keras model on {val} validation images"],
    "submission": ["loading {model}", "building the SavedModel (signatures serving_default, serving_bytes) and writing it",
                   "writing model.py"],
}


@pytest.mark.parametrize("fmt", ["savedmodel", "keras", "tflite", "onnx", "submission"])
def test_export_prints_its_steps_signatures_and_a_snippet_that_runs(fmt, trained, tmp_path, run_cli):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'leafnet[onnx]')")
    import ast
    import re

    run, run_dir = trained
    out = tmp_path / fmt
    code, stdout, err = run_cli("export", run_dir, "--format", fmt, "--out", out)
    assert code == 0, err
    lines = stdout.splitlines()
    done = lines.index(f"exported ({fmt}): {out}")
    steps = [s.format(model=run_dir / "model.keras", val=run.metrics["val_images"]) for s in PROGRESS[fmt]]
    assert lines[:done] == [*steps, "writing model_card.json and classes.json"], stdout
    start = lines.index("load it in Python:")
    snippet = lines[start + 1:]
    assert len(snippet) == 3 and str(out) in "\n".join(snippet), stdout
    (tmp_path / "snippet.py").write_text("\n".join(snippet) + "\n")
    got = _run_clean(SNIPPET_SCRIPT % LOADED_INPUT[fmt], tmp_path / "snippet.py")
    assert got["shape"] == [3, len(run.classes)]
    np.testing.assert_allclose(got["sums"], 1.0, atol=1e-5)
    sigs = lines[lines.index("signatures:") + 1:start]
    assert sigs and all(s.startswith("  ") for s in sigs), stdout
    printed = re.match(r"  (\S+): (\S+) float32 (\(.*?\)) -> ", sigs[0])
    assert printed, sigs[0]
    assert list(ast.literal_eval(printed.group(3))) == got["input"], (sigs[0], got["input"])
    assert list(ast.literal_eval(printed.group(3)))[1:] == ([None, None, 3] if fmt in ("savedmodel", "submission")
                                                            else [32, 32, 3])


def test_keras_snippet_imports_leafnet_when_the_model_needs_it(trained, tmp_path):
    import keras

    from leafnet.data.augment import RandomNoise
    from leafnet.export import export
    from leafnet.export_usage import snippet

    run, run_dir = trained
    out = export(run_dir, format="keras", out=tmp_path / "k")
    assert snippet(out).splitlines()[0] == "import keras"   # plain Keras layers only: Keras alone loads it
    wrapped = keras.Sequential([keras.Input((32, 32, 3)), RandomNoise(0.02, seed=1), run.load_model()])
    wrapped.save(out / "model.keras")
    lines = snippet(out).splitlines()
    assert lines[0] == "import keras, leafnet   # leafnet registers its Keras objects"
    script = "import numpy as np\nimages = np.zeros((2, 32, 32, 3), np.float32)\n" + "\n".join(lines) + \
        "\nprint(list(probs.shape), round(float(probs.sum()), 4))\n"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["[2,", f"{len(run.classes)}]", "2.0"]


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
    code, _, err = run_cli("export", tmp_path, "--format", "pmml")
    assert code == 2 and err.startswith("error: ") and "pmml" in err
    code, _, err = run_cli("export", tmp_path)
    assert code == 2 and "not a leafnet run folder" in err


FLAT_SCRIPT = """
import json, sys
import numpy as np
path, x, fmt = sys.argv[1], np.load(sys.argv[2]), sys.argv[3]
if fmt == "tflite":
    import tensorflow as tf
    runner = tf.lite.Interpreter(model_path=path).get_signature_runner()
    probs = runner(images=x)["output_0"]
else:
    import onnxruntime
    s = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    probs = s.run(None, {s.get_inputs()[0].name: x})[0]
print(json.dumps({"probabilities": np.asarray(probs).tolist()}))
"""


def _reference(run, files):
    """The images exactly as leafnet feeds them (decoded, resized to the run's size) and
    leafnet's probabilities for them."""
    from leafnet.data.pipeline import ImageSet
    from leafnet.predict import predict

    images = ImageSet(files, [0] * len(files), len(run.classes), 32)
    x = np.concatenate([b.numpy() for b, _ in images.dataset(64)])
    return x.astype(np.float32), np.stack([r["probabilities"] for r in predict(run, files)])


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_flat_exports_match_leafnet_predict_without_leafnet(fmt, trained, leaves, tmp_path, run_cli):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'leafnet[onnx]')")
    run, run_dir = trained
    files = _images(leaves)
    code, stdout, err = run_cli("export", run_dir, "--format", fmt, "--out", tmp_path / fmt)
    assert code == 0, err
    assert "same class 100.00%" in stdout
    card = json.loads((tmp_path / fmt / "model_card.json").read_text())
    assert card["parity"]["images"] == run.metrics["val_images"] and card["parity"]["max_abs_diff"] <= TOL
    assert card["parity"]["keras_val_accuracy"] == pytest.approx(run.metrics["val_accuracy"])
    x, ref = _reference(run, files)
    np.save(tmp_path / "x.npy", x)
    got = np.array(_run_clean(FLAT_SCRIPT, tmp_path / fmt / f"model.{fmt}", tmp_path / "x.npy", fmt)["probabilities"])
    assert got.shape == ref.shape and np.abs(got - ref).max() <= TOL, np.abs(got - ref).max()


def test_quantized_tflite_reports_its_accuracy_change(trained, tmp_path):
    from leafnet.export import export, tflite_runner

    run, run_dir = trained
    full = export(run_dir, format="tflite", out=tmp_path / "f32")
    for q in ("float16", "dynamic"):
        out = export(run_dir, format="tflite", out=tmp_path / q, quantize=q)
        card = json.loads((out / "model_card.json").read_text())
        p = card["parity"]
        assert card["quantization"] == q and p["images"] == run.metrics["val_images"]
        assert p["accuracy_change"] == pytest.approx(p["export_val_accuracy"] - p["keras_val_accuracy"])
        assert 0 < p["max_abs_diff"] < 0.1 and p["same_class"] >= 0.9
        # weights stored at 16 or 8 bits: the file shrinks to about 1/2 or 1/4
        ratio = (out / "model.tflite").stat().st_size / (full / "model.tflite").stat().st_size
        assert ratio < (0.6 if q == "float16" else 0.35), ratio
        x = np.zeros((2, 32, 32, 3), np.float32)
        assert np.allclose(tflite_runner(out / "model.tflite")(x).sum(axis=1), 1.0, atol=1e-3)


def test_quantize_needs_tflite(trained, run_cli):
    code, _, err = run_cli("export", trained[1], "--format", "keras", "--quantize", "dynamic")
    assert code == 2 and "--format tflite only" in err


def test_exported_files_are_readable_by_others(trained, tmp_path):
    from leafnet.export import export

    mask = os.umask(0o022)
    try:
        out = export(trained[1], format="keras", out=tmp_path / "k")
    finally:
        os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o755
    assert {(p.name, p.stat().st_mode & 0o777) for p in out.iterdir()} == {
        ("classes.json", 0o644), ("model.keras", 0o644), ("model_card.json", 0o644)}


def test_keras_load_model_works_after_a_bare_import_leafnet(trained, tmp_path):
    """``import leafnet`` registers leafnet's Keras objects (optimizers, schedules, losses,
    augmentation layers) without importing TensorFlow itself."""
    import keras

    from leafnet.data.augment import RandomNoise
    from leafnet.train import Ranger, SigmoidFocalCrossEntropy, TriangularCyclicalLearningRate

    model = trained[0].load_model()
    wrapped = keras.Sequential([keras.Input((32, 32, 3)), RandomNoise(0.02, seed=1), model])
    wrapped.compile(optimizer=Ranger(TriangularCyclicalLearningRate(1e-4, 1e-3, 10)), loss=SigmoidFocalCrossEntropy())
    path = tmp_path / "custom.keras"
    wrapped.save(path)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    code = f"""
import sys
import leafnet
assert "tensorflow" not in sys.modules and "keras" not in sys.modules
import keras
m = keras.saving.load_model({str(path)!r})
print(type(m.optimizer).__name__, type(m.loss).__name__, type(m.layers[0]).__name__)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["Ranger", "SigmoidFocalCrossEntropy", "RandomNoise"]
    bare = subprocess.run([sys.executable, "-c", f"import keras; keras.saving.load_model({str(path)!r})"],
                          capture_output=True, text=True, env=env)
    assert bare.returncode != 0 and "leafnet>" in bare.stderr   # the registration is what makes it work


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_efficientnet_exports_run_and_match_keras(fmt, tmp_path):
    """EfficientNet's Normalization layer keeps its mean and variance as eager tensors; the
    ONNX export once left them as graph inputs nobody feeds, and ONNX Runtime refused the file."""
    if fmt == "onnx":
        pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'leafnet[onnx]')")
    from leafnet.config import ModelConfig
    from leafnet.export import inference_model, onnx_runner, save_onnx, save_tflite, tflite_runner
    from leafnet.models.classifier import build_classifier
    from leafnet.models.registry import get_backbone

    model = build_classifier(get_backbone("b0"), 3, 32, ModelConfig(weights="none"), None, seed=0)
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    ref = inference_model(model).predict(x, verbose=0)
    path = tmp_path / f"model.{fmt}"
    (save_onnx if fmt == "onnx" else save_tflite)(model, 32, path)
    got = (onnx_runner if fmt == "onnx" else tflite_runner)(path)(x)
    np.testing.assert_allclose(got, ref, atol=1e-4)
    # the export leaves the Keras model as it was
    np.testing.assert_array_equal(inference_model(model).predict(x, verbose=0), ref)
