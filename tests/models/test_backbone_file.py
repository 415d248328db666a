"""backbone.keras: the backbone alone, with its registry name and image size recorded."""

import keras
import numpy as np
import pytest

from leafnet.config import AugmentConfig, ModelConfig
from leafnet.errors import LeafnetError
from leafnet.models.classifier import backbone_layers, build_classifier
from leafnet.models.registry import get_backbone
from leafnet.models.weights import (extract_backbone, load_backbone_file, load_backbone_weights, read_backbone_info,
                                    save_backbone)


def classifier(name="simple-cnn", seed=0, size=32):
    keras.utils.set_random_seed(seed)
    return build_classifier(get_backbone(name), 3, size, ModelConfig(weights="none"), AugmentConfig(), seed=seed)


def arrays(model, name="simple-cnn"):
    return [np.array(w) for l in backbone_layers(model, get_backbone(name)) for w in l.weights]


@pytest.mark.parametrize("name", ["simple-cnn", "alexnet"])
def test_save_and_load_round_trip(tmp_path, name):
    model = classifier(name, seed=1)
    path = tmp_path / "backbone.keras"
    save_backbone(model, get_backbone(name), 32, path, info={"note": "x"})
    info = read_backbone_info(path)
    assert (info["backbone"], info["image_size"], info["note"]) == (name, 32, "x")
    assert info["blocks"] == get_backbone(name).block_names
    loaded, info2 = load_backbone_file(path)
    assert info2 == info and loaded.inputs[0].name == "image"
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    ref = extract_backbone(model, get_backbone(name), 32)(x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(ref), rtol=0, atol=0)
    # and --weights accepts it: a fresh classifier gets the same backbone
    dst = classifier(name, seed=2)
    load_backbone_weights(dst, get_backbone(name), path)
    for a, b in zip(arrays(model, name), arrays(dst, name)):
        np.testing.assert_array_equal(a, b)


def test_backbone_weights_h5_loads_into_a_classifier(tmp_path):
    model = classifier(seed=3)
    backbone = extract_backbone(model, get_backbone("simple-cnn"), 32)
    backbone.save_weights(tmp_path / "b.weights.h5")
    dst = classifier(seed=4)
    assert load_backbone_weights(dst, get_backbone("simple-cnn"), tmp_path / "b.weights.h5") == 10
    for a, b in zip(arrays(model), arrays(dst)):
        np.testing.assert_array_equal(a, b)


def test_a_plain_keras_file_is_not_a_backbone_file(tmp_path):
    classifier().save(tmp_path / "m.keras")
    assert read_backbone_info(tmp_path / "m.keras") is None
    with pytest.raises(LeafnetError, match="not a leafnet backbone file"):
        load_backbone_file(tmp_path / "m.keras")


def test_another_backbones_file_is_refused_naming_both_and_nothing_is_loaded(tmp_path):
    other = build_classifier(get_backbone("alexnet"), 3, 32, ModelConfig(weights="none"))
    save_backbone(other, get_backbone("alexnet"), 32, tmp_path / "alex.keras")
    dst = classifier(seed=5)
    before = arrays(dst)
    with pytest.raises(LeafnetError, match=r"no layer 'block1_conv'.*holds a alexnet backbone"):
        load_backbone_weights(dst, get_backbone("simple-cnn"), tmp_path / "alex.keras")
    for a, b in zip(before, arrays(dst)):
        np.testing.assert_array_equal(a, b)
