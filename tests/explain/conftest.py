"""Fixtures of the explanation tests: a small random simple-cnn classifier at 32 px."""

from __future__ import annotations

import pytest


def tiny_classifier(num_classes: int = 3, size: int = 32, seed: int = 0):
    """simple-cnn + leafnet's head (with its augmentation block), random weights, 32 px."""
    import keras

    from leafnet.config import AugmentConfig, ModelConfig
    from leafnet.models.classifier import build_classifier
    from leafnet.models.registry import get_backbone

    keras.utils.set_random_seed(seed)
    return build_classifier(get_backbone("simple-cnn"), num_classes, size,
                            ModelConfig(backbone="simple-cnn", weights="none"), AugmentConfig(), seed=seed)


@pytest.fixture(scope="session")
def tiny_subject():
    from leafnet.explain.subject import load_subject

    return load_subject(tiny_classifier(), classes=["ash", "beech", "cedar"])


@pytest.fixture(scope="session")
def images32():
    """Two smooth, different 32 px RGB images (0..255)."""
    import numpy as np

    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    a = np.stack([255 * xx, 255 * yy, 128 + 0 * xx], axis=-1)
    b = np.stack([255 * (1 - yy), 60 + 120 * xx * yy, 255 * (xx > 0.5)], axis=-1)
    return np.stack([a, b]).astype("float32")
