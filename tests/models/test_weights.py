import keras
import numpy as np
import pytest

from leafnet.config import ModelConfig
from leafnet.errors import LeafnetError
from leafnet.models.classifier import backbone_layers, build_classifier
from leafnet.models.registry import get_backbone
from leafnet.models.weights import load_backbone_weights


def model_for(name, classes=3, seed=0, dense=0):
    keras.utils.set_random_seed(seed)
    return build_classifier(get_backbone(name), classes, 32, ModelConfig(weights="none", dense_units=dense))


def backbone_arrays(model, name):
    return [np.array(w) for l in backbone_layers(model, get_backbone(name)) for w in l.weights]


@pytest.mark.parametrize("fmt", ["keras", "weights.h5", "run-folder"])
def test_backbone_weights_transfer_and_head_is_dropped(tmp_path, fmt):
    src = model_for("simple-cnn", classes=5, seed=1, dense=16)
    if fmt == "keras":
        path = tmp_path / "m.keras"
        src.save(path)
    elif fmt == "weights.h5":
        path = tmp_path / "m.weights.h5"
        src.save_weights(path)
    else:
        path = tmp_path / "run"
        path.mkdir()
        src.save(path / "model.keras")
    dst = model_for("simple-cnn", classes=3, seed=2)
    head_before = np.array(dst.get_layer("predictions").kernel)
    n = load_backbone_weights(dst, get_backbone("simple-cnn"), path)
    assert n == 10  # 5 conv + 5 BN
    for a, b in zip(backbone_arrays(src, "simple-cnn"), backbone_arrays(dst, "simple-cnn")):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.array(dst.get_layer("predictions").kernel), head_before)


def test_another_backbone_is_refused_and_nothing_is_loaded(tmp_path):
    path = tmp_path / "alex.keras"
    model_for("alexnet").save(path)
    dst = model_for("simple-cnn")
    before = backbone_arrays(dst, "simple-cnn")
    with pytest.raises(LeafnetError, match="has no layer 'block1_conv'"):
        load_backbone_weights(dst, get_backbone("simple-cnn"), path)
    for a, b in zip(before, backbone_arrays(dst, "simple-cnn")):
        np.testing.assert_array_equal(a, b)


def test_shape_mismatch_names_the_first_layer(tmp_path):
    # Same layer names, different widths: the first conv's kernel differs once channels differ.
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(32, 3, use_bias=False, name="block1_conv")(inputs)
    x = keras.layers.BatchNormalization(name="block1_bn")(x)
    x = keras.layers.Conv2D(8, 3, use_bias=False, name="block2_conv")(x)
    path = tmp_path / "other.keras"
    keras.Model(inputs, x).save(path)
    dst = model_for("simple-cnn")
    before = backbone_arrays(dst, "simple-cnn")
    with pytest.raises(LeafnetError, match="layer 'block2_conv' has shapes"):
        load_backbone_weights(dst, get_backbone("simple-cnn"), path)
    for a, b in zip(before, backbone_arrays(dst, "simple-cnn")):
        np.testing.assert_array_equal(a, b)


def test_bad_paths(tmp_path):
    dst = model_for("simple-cnn")
    with pytest.raises(LeafnetError, match="no such file or folder"):
        load_backbone_weights(dst, get_backbone("simple-cnn"), tmp_path / "nope.keras")
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(LeafnetError, match="unsupported file type"):
        load_backbone_weights(dst, get_backbone("simple-cnn"), tmp_path / "x.txt")
    (tmp_path / "forged.keras").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(LeafnetError, match="damaged, not a readable .keras archive"):
        load_backbone_weights(dst, get_backbone("simple-cnn"), tmp_path / "forged.keras")
