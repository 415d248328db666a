import keras
import numpy as np
import pytest

from leafnet.config import AugmentConfig
from leafnet.data.augment import RandomCropResize, build_augmentation

ALL_ON = AugmentConfig(flip="horizontal_and_vertical", rotation=0.2, zoom=0.2, translation=0.1, contrast=0.3,
                       brightness=0.2, crop=0.3, noise=0.02)


def images(n=4, size=24):
    return np.random.default_rng(0).uniform(0, 255, (n, size, size, 3)).astype("float32")


def test_every_layer_from_config_and_none_when_off():
    aug = build_augmentation(ALL_ON, seed=1)
    assert [l.name for l in aug.layers] == ["aug_flip", "aug_rotation", "aug_zoom", "aug_translation",
                                           "aug_crop", "aug_contrast", "aug_brightness", "aug_noise"]
    off = AugmentConfig(flip="none", rotation=0, zoom=0, translation=0)
    assert build_augmentation(off).layers == []


def test_active_only_in_training():
    aug = build_augmentation(ALL_ON, seed=1)
    x = images()
    np.testing.assert_array_equal(np.asarray(aug(x, training=False)), x)
    y = np.asarray(aug(x, training=True))
    assert y.shape == x.shape and np.abs(y - x).mean() > 1.0


def test_crop_resize_keeps_size_and_zooms_in():
    layer = RandomCropResize(0.5, seed=3)
    x = np.zeros((2, 20, 20, 3), "float32")
    x[:, :, 10:] = 255.0     # right half white
    y = np.asarray(layer(x, training=True))
    assert y.shape == x.shape
    assert not np.allclose(y, x)
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    with pytest.raises(ValueError, match="fraction"):
        RandomCropResize(1.0)


def test_crop_layer_round_trips_through_keras_saving(tmp_path):
    inputs = keras.Input((20, 20, 3))
    model = keras.Model(inputs, RandomCropResize(0.25, seed=2, name="crop")(inputs))
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert again.get_layer("crop").get_config()["fraction"] == 0.25
