"""Attribution maps: every method, the guided-backprop rule against a hand computation, layers."""

from __future__ import annotations

import numpy as np
import pytest

from leafnet.errors import LeafnetError
from leafnet.explain.attributions import CAM_METHODS, METHODS, attribute


@pytest.mark.parametrize("method", METHODS)
def test_each_method_gives_a_varying_map_of_the_image_size(tiny_subject, images32, method):
    a = attribute(tiny_subject, images32, [0, 2], method, max_n=8, smooth_samples=4)
    assert a.maps.shape == (2, 32, 32)
    assert np.isfinite(a.maps).all()
    assert a.maps.min() >= 0.0 and a.maps.max() <= 1.0
    for m in a.maps:
        assert m.std() > 1e-3, f"{method} gave a constant map"
        assert m.max() == pytest.approx(1.0)
    if method in CAM_METHODS:
        assert a.layer == "block5_relu"          # the last map larger than 1 x 1 at 32 px
    else:
        assert a.layer is None
    assert (a.rgb is not None) == method.startswith("guided")


def test_guided_backprop_differs_from_saliency(tiny_subject, images32):
    sal = attribute(tiny_subject, images32, [1, 1], "saliency").maps
    gb = attribute(tiny_subject, images32, [1, 1], "guided-backprop").maps
    assert np.abs(sal - gb).mean() > 0.02


def test_the_target_class_changes_the_saliency(tiny_subject, images32):
    a = attribute(tiny_subject, images32[:1], [0], "saliency").maps
    b = attribute(tiny_subject, images32[:1], [2], "saliency").maps
    assert np.abs(a - b).mean() > 1e-3


def _mlp(activation: str):
    import keras

    inp = keras.Input((4,), name="x")
    if activation == "relu-layer":
        h = keras.layers.ReLU(name="act")(keras.layers.Dense(3, name="h")(inp))
    elif activation == "relu-config":
        h = keras.layers.Dense(3, activation="relu", name="h")(inp)
    else:
        h = keras.layers.Activation("swish", name="act")(keras.layers.Dense(3, name="h")(inp))
    out = keras.layers.Dense(2, name="out")(h)
    model = keras.Model(inp, out)
    model.get_layer("h").set_weights([np.array([[1.0, -2.0, 0.5], [0.5, 1.0, -1.0], [-1.0, 0.5, 2.0],
                                                [2.0, 1.0, 1.0]], "float32"), np.array([0.1, -0.2, 0.3], "float32")])
    model.get_layer("out").set_weights([np.array([[1.5, -1.0], [-2.0, 0.5], [1.0, 1.0]], "float32"),
                                        np.zeros(2, "float32")])
    return model


@pytest.mark.parametrize("activation", ["relu-layer", "relu-config", "swish"])
def test_guided_gradient_matches_the_hand_computation(activation):
    import tensorflow as tf

    from leafnet.explain.guided import guided_model

    model = _mlp(activation)
    guided, replaced = guided_model(model)
    assert replaced == [("act" if activation != "relu-config" else "h")]
    # hidden pre-activations z = (-0.55, 0.2, 0.85) and upstream gradients (1.5, -2, 1): one unit
    # closed by its input, one by its gradient, one open
    x = np.array([[0.3, 0.9, 0.8, -0.3]], "float32")
    np.testing.assert_allclose(guided(x), model(x), rtol=1e-6)           # same forward pass

    w1, b1 = model.get_layer("h").get_weights()
    w2 = model.get_layer("out").get_weights()[0]
    z = x[0] @ w1 + b1
    dy = w2[:, 0]                                                          # d out_0 / d hidden
    sig = 1 / (1 + np.exp(-z))
    local = (z > 0).astype(float) if activation != "swish" else sig * (1 + z * (1 - sig))
    expected_guided = w1 @ (dy * (dy > 0) * (z > 0) * local)
    expected_plain = w1 @ (dy * local)
    np.testing.assert_allclose(z, [-0.55, 0.2, 0.85], atol=1e-6)

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        score = guided(xt)[0, 0]
    np.testing.assert_allclose(tape.gradient(score, xt)[0], expected_guided, rtol=1e-5, atol=1e-6)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        score = model(xt)[0, 0]
    np.testing.assert_allclose(tape.gradient(score, xt)[0], expected_plain, rtol=1e-5, atol=1e-6)
    assert not np.allclose(expected_guided, expected_plain)


def test_gradients_are_taken_before_the_softmax(tiny_subject, images32):
    import keras

    assert tiny_subject.model.get_layer("predictions").activation is keras.activations.softmax
    logits = np.asarray(tiny_subject.logit_model(images32, training=False))
    probs = np.asarray(tiny_subject.model(images32, training=False))
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(e / e.sum(axis=1, keepdims=True), probs, rtol=1e-4, atol=1e-6)


def test_layers_by_name_and_block(tiny_subject):
    s = tiny_subject
    assert s.default_cam_layer() == "block5_relu"
    assert s.resolve_layer("block:1") == "block1_pool"
    assert s.resolve_layer("block:3") == "block3_pool"
    assert s.resolve_layer("block:last") == "block5_pool"
    assert s.resolve_layer("block:block2") == "block2_pool"
    assert s.resolve_layer("block3_conv") == "block3_conv"
    with pytest.raises(LeafnetError, match="out of range.*1..5"):
        s.resolve_layer("block:6")
    with pytest.raises(LeafnetError, match="no layer 'block3_cnv'.*block3_conv"):
        s.resolve_layer("block3_cnv")
    with pytest.raises(LeafnetError, match="4D output"):
        s.resolve_layer("head_pool")


@pytest.mark.parametrize("backbone, needs, expected", [
    ("simple-cnn", "map", ["block1_pool", "block2_pool", "block3_pool", "block4_pool", "block5_pool"]),
    ("simple-cnn", "kernel", ["block1_conv", "block2_conv", "block3_conv", "block4_conv", "block5_conv"]),
    ("alexnet", "map", ["conv1_pool", "conv2_pool", "conv3_relu", "conv4_relu", "conv5_pool"]),
    ("alexnet", "kernel", ["conv1_conv", "conv2_conv", "conv3_conv", "conv4_conv", "conv5_conv"]),
])
def test_block_n_is_the_blocks_last_layer_with_what_is_needed(backbone, needs, expected):
    """CAMs need a block's output map, filter ranking a kernel: the pool after a conv has none."""
    from leafnet.config import ModelConfig
    from leafnet.explain.subject import load_subject
    from leafnet.models.classifier import build_classifier
    from leafnet.models.registry import get_backbone

    model = build_classifier(get_backbone(backbone), 2, 32, ModelConfig(backbone=backbone, weights="none"), None)
    s = load_subject(model, classes=["a", "b"])
    assert [s.resolve_layer(f"block:{n}", needs=needs) for n in range(1, 6)] == expected
    assert s.resolve_layer("block:last", needs=needs) == expected[-1]
    assert s.resolve_layer(f"block:{expected[1].split('_')[0]}", needs=needs) == expected[1]
    assert s.resolve_layer(None, needs="kernel") == expected[-1].split("_")[0] + "_conv"
    with pytest.raises(LeafnetError, match="block:6 is out of range.*1..5"):
        s.resolve_layer("block:6", needs=needs)


def test_gradcam_against_a_hand_computation(tiny_subject, images32):
    """Grad-CAM at block3_pool (4 x 4): channel weights = mean gradient of the class logit,
    map = ReLU(sum of weighted channels), upsampled bilinearly to 32 x 32, scaled to 0..1."""
    import keras
    import tensorflow as tf
    from scipy.ndimage import zoom

    model = tiny_subject.logit_model
    sub = keras.Model(model.inputs[0], [model.get_layer("block3_pool").output, model.output])
    x = tf.constant(images32)
    with tf.GradientTape() as tape:
        feats, logits = sub(x, training=False)
        score = tf.reduce_sum(logits[:, 1])
    grads = np.asarray(tape.gradient(score, feats))
    feats = np.asarray(feats)
    cam = np.maximum((feats * grads.mean(axis=(1, 2), keepdims=True)).sum(axis=-1), 0)
    assert cam.shape == (2, 4, 4)
    expected = zoom(cam, (1, 8, 8), order=1)
    lo, hi = expected.min(axis=(1, 2), keepdims=True), expected.max(axis=(1, 2), keepdims=True)
    expected = (expected - lo) / (hi - lo)
    got = attribute(tiny_subject, images32, [1, 1], "gradcam", layer="block:3")
    assert got.layer == "block3_pool"
    np.testing.assert_allclose(got.maps, expected, atol=1e-4)
