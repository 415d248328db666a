"""Untrusted model files: Lambda layers, forged configs and SavedModels are refused unless --trust."""

import json
import zipfile

import keras
import numpy as np
import pytest
from PIL import Image

from leafnet.config import ModelConfig
from leafnet.errors import LeafnetError
from leafnet.models.classifier import build_classifier
from leafnet.models.registry import get_backbone
from leafnet.models.weights import load_backbone_weights
from leafnet.runs import read_csv
from leafnet.trust import load_model_file, trusted

MARKER = "leafnet-trust-test-marker"


def lambda_model() -> keras.Model:
    """leafnet's simple-cnn classifier with a Lambda layer on its output (Python code in the file)."""
    keras.utils.set_random_seed(0)
    base = build_classifier(get_backbone("simple-cnn"), 2, 32, ModelConfig(weights="none"))
    out = keras.layers.Lambda(lambda t: t * 1.0, name="code")(base.output)
    return keras.Model(base.input, out)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("trust")
    model = lambda_model()
    model.save(root / "lambda.keras")
    model.save(root / "lambda.h5")
    # a forged config: the .keras archive of a plain model whose config names os.system
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    plain.save(root / "plain.keras")
    with zipfile.ZipFile(root / "plain.keras") as z:
        entries = {n: z.read(n) for n in z.namelist()}
    cfg = json.loads(entries["config.json"])
    cfg["config"]["layers"][1] = {"module": "os", "class_name": "system", "config": {"command": f"echo {MARKER}"},
                                  "registered_name": "system"}
    with zipfile.ZipFile(root / "forged.keras", "w") as z:
        for name, data in entries.items():
            z.writestr(name, json.dumps(cfg) if name == "config.json" else data)
    # a forged config: a TFSMLayer that would load (and run) a SavedModel from any path
    cfg = json.loads(entries["config.json"])
    cfg["config"]["layers"][1] = {"module": "keras.layers", "class_name": "TFSMLayer",
                                  "config": {"filepath": str(root / "some_savedmodel"), "name": "tfsm"},
                                  "registered_name": None}
    with zipfile.ZipFile(root / "tfsm.keras", "w") as z:
        for name, data in entries.items():
            z.writestr(name, json.dumps(cfg) if name == "config.json" else data)
    img = root / "leaf.png"
    Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype("uint8")).save(img)
    return root


@pytest.mark.parametrize("name", ["lambda.keras", "lambda.h5"])
def test_lambda_model_is_refused_by_default_and_accepted_with_trust(files, name, run_cli, tmp_path):
    out = tmp_path / "p.csv"
    code, stdout, err = run_cli("predict", files / name, files / "leaf.png", "--out", out)
    assert code == 2 and not out.exists()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "rerun with --trust" in lines[0], err
    assert "Lambda" in lines[0]
    code, stdout, err = run_cli("predict", files / name, files / "leaf.png", "--out", out, "--trust")
    assert code == 0, err
    rows = read_csv(out)
    assert len(rows) == 1 and rows[0]["class"] in ("0", "1") and rows[0]["error"] == ""


@pytest.mark.parametrize("name", ["forged.keras", "tfsm.keras"])
def test_forged_configs_are_refused(files, name, capfd):
    with pytest.raises(LeafnetError) as e:
        load_model_file(files / name, "model")
    assert str(e.value).startswith(f"model {files / name}: ") and "\n" not in str(e.value)
    assert MARKER not in capfd.readouterr().out        # os.system never ran


def test_weights_file_with_a_lambda_layer_needs_trust(files):
    spec = get_backbone("simple-cnn")
    keras.utils.set_random_seed(1)
    dst = build_classifier(spec, 3, 32, ModelConfig(weights="none"))
    before = [np.array(w) for w in dst.get_layer("block1_conv").weights]
    with pytest.raises(LeafnetError, match=r"--weights .*lambda.keras: refused, .*rerun with --trust"):
        load_backbone_weights(dst, spec, files / "lambda.keras")
    np.testing.assert_array_equal(np.array(dst.get_layer("block1_conv").weights[0]), before[0])
    with trusted():
        assert load_backbone_weights(dst, spec, files / "lambda.keras") == 10
    src = keras.saving.load_model(files / "lambda.keras", safe_mode=False)
    np.testing.assert_array_equal(np.array(dst.get_layer("block1_conv").kernel),
                                  np.array(src.get_layer("block1_conv").kernel))
    # Keras 2 / 3 weights-only .h5 files are arrays (h5py): no code, no trust needed
    src.save_weights(files / "arrays.weights.h5")
    assert load_backbone_weights(dst, spec, files / "arrays.weights.h5") == 10


def test_fit_refuses_lambda_weights_before_the_run_folder_exists(files, leaves, run_cli, tmp_path):
    args = ["fit", "--data", leaves, "--backbone", "simple-cnn", "--weights", files / "lambda.keras",
            "--image-size", "32", "--epochs", "1", "--finetune-blocks", "0", "--run-dir", tmp_path / "r", "--quiet"]
    code, out, err = run_cli(*args)
    assert code == 2 and "rerun with --trust" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_predict_refuses_a_savedmodel(tmp_path, run_cli):
    import tensorflow as tf

    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
        def __call__(self, x):
            return x

    tf.saved_model.save(M(), str(tmp_path / "sm"))
    (tmp_path / "x.png").write_bytes(b"")
    code, out, err = run_cli("predict", tmp_path / "sm", tmp_path / "x.png", "--out", tmp_path / "p.csv")
    assert code == 2 and "is a SavedModel: leafnet does not load SavedModels" in err
    assert not (tmp_path / "p.csv").exists()
