"""BatchNormalization through TensorFlow's fused kernel: Keras' numbers, Keras' files."""

import json
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from leafnet.models.fused_bn import use_fused_batchnorm


def _pair(momentum=0.9):
    """Two identical BatchNormalization layers (non-trivial gamma, beta, moving stats); the second fused."""
    rng = np.random.default_rng(0)
    stock, fused = keras.layers.BatchNormalization(momentum=momentum), keras.layers.BatchNormalization(momentum=momentum)
    for layer in (stock, fused):
        layer.build((None, 6, 6, 5))
    values = [rng.uniform(0.5, 2, 5), rng.normal(0, 1, 5), rng.normal(0, 1, 5), rng.uniform(0.5, 2, 5)]
    for layer in (stock, fused):
        for v, a in zip((layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance), values):
            v.assign(a.astype("float32"))
    wrapper = keras.Sequential([fused])
    assert use_fused_batchnorm(wrapper) == 1
    return stock, fused


def test_training_step_matches_keras_outputs_gradients_and_moving_statistics():
    stock, fused = _pair()
    x = tf.constant(np.random.default_rng(1).normal(2, 3, (8, 6, 6, 5)).astype("float32"))
    grads = []
    for layer in (stock, fused):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * tf.sin(y))      # a loss whose gradient is not constant
        grads.append((y, *tape.gradient(loss, [x, layer.gamma, layer.beta])))
    for a, b in zip(*grads):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=1e-4)
    # Keras' moving variance takes the biased batch variance; the fused kernel's is unbiased.
    np.testing.assert_allclose(np.asarray(fused.moving_mean), np.asarray(stock.moving_mean), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(fused.moving_variance), np.asarray(stock.moving_variance), rtol=1e-5)
    biased = np.var(np.asarray(x), axis=(0, 1, 2))
    assert not np.allclose(biased * 8 * 36 / (8 * 36 - 1), biased, rtol=1e-4)   # the two variances differ here
    for layer in (stock, fused):
        np.testing.assert_allclose(np.asarray(layer(x, training=False)), np.asarray(stock(x, training=False)),
                                   rtol=1e-5, atol=1e-5)


def test_frozen_layer_and_other_inputs_use_keras_numbers():
    stock, fused = _pair()
    x = np.random.default_rng(2).normal(0, 1, (4, 6, 6, 5)).astype("float32")
    stock.trainable = fused.trainable = False          # frozen: inference mode even with training=True
    np.testing.assert_allclose(np.asarray(fused(x, training=True)), np.asarray(stock(x, training=True)), atol=1e-5)
    flat = keras.layers.BatchNormalization()
    assert use_fused_batchnorm(keras.Sequential([flat])) == 1
    v = np.random.default_rng(3).normal(0, 1, (16, 5)).astype("float32")    # 2-D: Keras' own call
    ref = (v - v.mean(0)) / np.sqrt(v.var(0) + 1e-3)
    np.testing.assert_allclose(np.asarray(flat(v, training=True)), ref, atol=1e-4)


@pytest.mark.parametrize("fused", [True, False])
def test_leafnet_models_train_through_the_fused_kernel_and_save_plain_keras(fused, tmp_path):
    from leafnet.train.fit import as_config, build_model, resolve_config

    cfg, spec, _ = resolve_config(as_config(None, **{"model.backbone": "simple-cnn", "model.weights": "none",
                                                     "data.image_size": 32, "run.fused_batchnorm": fused,
                                                     "run.verbose": 0}))
    model = build_model(cfg, spec, 3)
    graph = tf.function(lambda x: model(x, training=True)).get_concrete_function(
        tf.TensorSpec([None, 32, 32, 3], tf.float32)).graph
    assert ("FusedBatchNormV3" in {op.type for op in graph.get_operations()}) == fused
    model.save(tmp_path / "m.keras")
    config = zipfile.ZipFile(tmp_path / "m.keras").read("config.json").decode()
    assert '"BatchNormalization"' in config and "fused" not in config.lower()
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    json.loads(config)
