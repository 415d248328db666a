"""Swish with its gradient fused by XLA: the derivative's numbers, Keras' files."""

import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from leafnet.models import fused_swish
from leafnet.models.fused_swish import silu, use_fused_swish


def _grad(fn, x, dy):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
    return y.numpy(), tape.gradient(y, x, output_gradients=tf.constant(dy)).numpy()


def test_value_and_gradient_match_the_derivative_by_hand_and_tensorflows():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 3, 200), [-100.0, -30.0, -1e-3, 0.0, 1e-3, 30.0, 100.0]]).astype("float32")
    dy = rng.normal(0, 1, x.shape).astype("float32")
    y, g = _grad(silu, x, dy)
    x64 = x.astype("float64")
    s = 1.0 / (1.0 + np.exp(-x64))
    np.testing.assert_allclose(y, x64 * s, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(g, dy * (s + x64 * s * (1.0 - s)), rtol=1e-5, atol=1e-6)   # d/dx x*sigmoid(x)
    central = (silu(x64 + 1e-6) - silu(x64 - 1e-6)).numpy() / 2e-6                        # and numerically
    np.testing.assert_allclose(g[:200], (dy * central)[:200], rtol=1e-4, atol=1e-4)
    ref_y, ref_g = _grad(tf.nn.silu, x, dy)
    np.testing.assert_allclose(g, ref_g, rtol=1e-6, atol=1e-6)
    assert np.isfinite(g).all()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_inputs_keep_their_dtype(dtype):
    x = tf.cast(tf.linspace(-4.0, 4.0, 17), dtype)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = silu(x)
    g = tape.gradient(y, x)
    assert y.dtype == g.dtype == tf.as_dtype(dtype)
    x32 = tf.cast(x, tf.float32)
    _, ref = _grad(tf.nn.silu, x32.numpy(), np.ones(17, "float32"))
    np.testing.assert_allclose(tf.cast(g, tf.float32).numpy(), ref, atol=3e-2)


def _b0(fused: bool):
    from leafnet.train.fit import as_config, build_model, resolve_config

    cfg, spec, _ = resolve_config(as_config(None, **{"model.backbone": "b0", "model.weights": "none",
                                                     "data.image_size": 32, "run.fused_swish": fused,
                                                     "run.verbose": 0}))
    model = build_model(cfg, spec, 3)
    for layer in model._flatten_layers():
        layer.trainable = True
    return model


def test_efficientnet_gets_the_same_gradients_and_saves_plain_keras(tmp_path):
    stock, fused = _b0(False), _b0(True)
    acts = [layer.activation for layer in fused._flatten_layers() if hasattr(layer, "activation")]
    assert sum(a is silu for a in acts) == 49 and keras.activations.silu not in acts    # every swish of B0
    assert not any(getattr(layer, "activation", None) is silu for layer in stock._flatten_layers())
    def activations(model):
        return [layer.get_config()["activation"] for layer in model._flatten_layers() if hasattr(layer, "activation")]

    assert activations(fused) == activations(stock) and activations(fused).count("silu") == 49
    x = tf.constant(np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3)).astype("float32"))
    y = tf.one_hot([0, 1, 2, 0], 3)
    results = []
    for model in (stock, fused):
        with tf.GradientTape() as tape:
            loss = keras.losses.categorical_crossentropy(y, model(x, training=True))
        results.append((loss.numpy(), tape.gradient(loss, model.trainable_variables)))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-6)
    scale = max(float(tf.reduce_max(tf.abs(g))) for g in results[0][1])
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(b.numpy(), a.numpy(), atol=1e-5 * scale)
    fused.save(tmp_path / "m.keras")
    config = zipfile.ZipFile(tmp_path / "m.keras").read("config.json").decode()
    assert "leafnet" not in config and '"silu"' in config
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    assert not any(getattr(layer, "activation", None) is silu for layer in reloaded._flatten_layers())
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), fused.predict(x, verbose=0), atol=1e-5)


def test_not_used_where_tensorflow_sees_a_gpu(monkeypatch):
    fused_swish.available.cache_clear()
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: [tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU")])
    try:
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="swish")])
        assert use_fused_swish(model) == 0
        assert model.layers[0].activation is keras.activations.silu
    finally:
        fused_swish.available.cache_clear()
