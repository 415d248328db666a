"""SigmoidFocalCrossEntropy against the focal formula in NumPy; its reductions to binary
cross-entropy; Keras' CategoricalFocalCrossentropy at gamma=0; config round trips."""

import copy

import keras
import numpy as np
import pytest

from leafnet.train.losses import SigmoidFocalCrossEntropy

Y = np.array([[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 1]], dtype="float32")
LOGITS = np.array([[2.0, -1.0, 0.5, -0.3], [-1.5, 0.2, 1.0, -2.0], [0.3, -0.7, 3.0, 1.2]], dtype="float32")
P = 1.0 / (1.0 + np.exp(-LOGITS.astype("float64")))


def np_focal(y, p, alpha=0.25, gamma=2.0, label_smoothing=0.0):
    """Per sample: sum over classes of alpha_t (1 - p_t)^gamma BCE (float64)."""
    y = y.astype("float64") * (1 - label_smoothing) + 0.5 * label_smoothing
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    p_t = y * p + (1 - y) * (1 - p)
    alpha_t = y * alpha + (1 - y) * (1 - alpha) if alpha else 1.0
    return np.sum(alpha_t * (1 - p_t) ** gamma * bce, axis=-1)


def np_bce_sum(y, p):
    return np_focal(y, p, alpha=None, gamma=0.0)


def test_focal_matches_numpy_formula_per_sample_and_reduced():
    per_sample = SigmoidFocalCrossEntropy(reduction=None)(Y, P.astype("float32"))
    want = np_focal(Y, P)
    assert per_sample.shape == (3,)
    np.testing.assert_allclose(np.asarray(per_sample), want, rtol=1e-5)
    mean = SigmoidFocalCrossEntropy()(Y, P.astype("float32"))
    np.testing.assert_allclose(float(mean), want.mean(), rtol=1e-5)
    total = SigmoidFocalCrossEntropy(reduction="sum")(Y, P.astype("float32"))
    np.testing.assert_allclose(float(total), want.sum(), rtol=1e-5)


@pytest.mark.parametrize("alpha,gamma", [(0.25, 2.0), (0.6, 0.5), (None, 3.0)])
def test_focal_from_logits_both_ways(alpha, gamma):
    want = np_focal(Y, P, alpha=alpha, gamma=gamma)
    from_logits = SigmoidFocalCrossEntropy(from_logits=True, alpha=alpha, gamma=gamma, reduction=None)(Y, LOGITS)
    from_probs = SigmoidFocalCrossEntropy(from_logits=False, alpha=alpha, gamma=gamma, reduction=None)(
        Y, P.astype("float32"))
    np.testing.assert_allclose(np.asarray(from_logits), want, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(from_probs), want, rtol=1e-5)
    # logits passed as probabilities give something else: the flag is honoured
    wrong = SigmoidFocalCrossEntropy(from_logits=False, alpha=alpha, gamma=gamma, reduction=None)(
        Y, np.clip(LOGITS, 1e-3, 1 - 1e-3))
    assert not np.allclose(np.asarray(wrong), want, rtol=1e-2)


def test_focal_down_weights_easy_examples():
    easy = SigmoidFocalCrossEntropy(reduction=None)(np.array([[1.0]]), np.array([[0.95]], dtype="float32"))
    hard = SigmoidFocalCrossEntropy(reduction=None)(np.array([[1.0]]), np.array([[0.3]], dtype="float32"))
    bce_easy, bce_hard = -np.log(0.95), -np.log(0.3)
    # modulation (1 - p_t)^2: 0.05^2 = 0.0025 for the easy one, 0.7^2 = 0.49 for the hard one
    assert float(easy[0]) / bce_easy < 0.01 * float(hard[0]) / bce_hard
    np.testing.assert_allclose(float(easy[0]), 0.25 * 0.05 ** 2 * bce_easy, rtol=1e-4)


def test_gamma_zero_is_binary_crossentropy_summed_over_classes():
    n_classes = Y.shape[1]
    bce_mean = float(keras.losses.BinaryCrossentropy()(Y, P.astype("float32")))  # mean over classes and batch
    plain = float(SigmoidFocalCrossEntropy(alpha=None, gamma=0.0)(Y, P.astype("float32")))
    np.testing.assert_allclose(plain, n_classes * bce_mean, rtol=1e-5)
    np.testing.assert_allclose(plain, np_bce_sum(Y, P).mean(), rtol=1e-5)
    # alpha = 0.5 weighs positives and negatives alike: half of it
    half = float(SigmoidFocalCrossEntropy(alpha=0.5, gamma=0.0)(Y, P.astype("float32")))
    np.testing.assert_allclose(half, 0.5 * plain, rtol=1e-5)
    # alpha = 0 is "no alpha" (tfa's `if alpha:`)
    np.testing.assert_allclose(float(SigmoidFocalCrossEntropy(alpha=0.0, gamma=0.0)(Y, P.astype("float32"))),
                               plain, rtol=1e-6)
    # and the default (alpha 0.25, gamma 2) is much smaller than plain BCE
    assert float(SigmoidFocalCrossEntropy()(Y, P.astype("float32"))) < 0.25 * plain


def test_focal_label_smoothing():
    got = SigmoidFocalCrossEntropy(label_smoothing=0.2, reduction=None)(Y, P.astype("float32"))
    np.testing.assert_allclose(np.asarray(got), np_focal(Y, P, label_smoothing=0.2), rtol=1e-5)
    assert not np.allclose(np.asarray(got), np_focal(Y, P), rtol=1e-2)
    # gamma 0, no alpha: Keras' BinaryCrossentropy with the same smoothing, times the classes
    plain = SigmoidFocalCrossEntropy(alpha=None, gamma=0.0, label_smoothing=0.2)(Y, P.astype("float32"))
    bce = keras.losses.BinaryCrossentropy(label_smoothing=0.2)(Y, P.astype("float32"))
    np.testing.assert_allclose(float(plain), Y.shape[1] * float(bce), rtol=1e-5)


def test_focal_sample_weight_and_gamma_check():
    w = np.array([1.0, 0.0, 2.0], dtype="float32")
    got = float(SigmoidFocalCrossEntropy(reduction="sum")(Y, P.astype("float32"), sample_weight=w))
    np.testing.assert_allclose(got, np.sum(w * np_focal(Y, P)), rtol=1e-5)
    with pytest.raises(ValueError, match="gamma"):
        SigmoidFocalCrossEntropy(gamma=-1.0)


def test_keras_categorical_focal_at_gamma_zero_is_categorical_crossentropy():
    """Keras' own CategoricalFocalCrossentropy (what leafnet would use for softmax heads):
    with gamma=0 it is alpha x categorical cross-entropy, so alpha=1 gives exactly CCE."""
    y = np.eye(4, dtype="float32")[[0, 2, 3]]
    probs = keras.ops.convert_to_numpy(keras.ops.softmax(LOGITS))
    cce = float(keras.losses.CategoricalCrossentropy()(y, probs))
    focal = float(keras.losses.CategoricalFocalCrossentropy(alpha=1.0, gamma=0.0)(y, probs))
    np.testing.assert_allclose(focal, cce, rtol=1e-6)
    default_alpha = float(keras.losses.CategoricalFocalCrossentropy(gamma=0.0)(y, probs))
    np.testing.assert_allclose(default_alpha, 0.25 * cce, rtol=1e-6)
    logits_way = float(keras.losses.CategoricalFocalCrossentropy(alpha=1.0, gamma=0.0, from_logits=True)(y, LOGITS))
    np.testing.assert_allclose(logits_way, cce, rtol=1e-5)
    want = -np.mean(np.sum(y * np.log(probs), axis=-1))
    np.testing.assert_allclose(cce, want, rtol=1e-5)
    # gamma > 0 changes it
    assert float(keras.losses.CategoricalFocalCrossentropy(alpha=1.0, gamma=2.0)(y, probs)) < 0.9 * cce


@pytest.mark.parametrize("kwargs", [{}, dict(from_logits=True, alpha=None, gamma=0.5, reduction="sum", name="fl",
                                             label_smoothing=0.1)])
def test_focal_config_round_trip(kwargs):
    loss = SigmoidFocalCrossEntropy(**kwargs)
    config = loss.get_config()
    for key, value in kwargs.items():
        assert config[key] == value
    again = SigmoidFocalCrossEntropy.from_config(copy.deepcopy(config))
    assert again.get_config() == config
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is SigmoidFocalCrossEntropy and restored.get_config() == config
    np.testing.assert_allclose(np.asarray(restored(Y, LOGITS if loss.from_logits else P.astype("float32"))),
                               np.asarray(loss(Y, LOGITS if loss.from_logits else P.astype("float32"))))


def test_focal_in_compiled_model_saves_and_reloads(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
    model.compile("sgd", SigmoidFocalCrossEntropy(from_logits=True, gamma=1.0), jit_compile=False)
    x = np.random.default_rng(0).normal(size=(6, 3)).astype("float32")
    y = Y[[0, 1, 2, 0, 1, 2]]
    before = model.evaluate(x, y, verbose=0)
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(reloaded.loss, SigmoidFocalCrossEntropy) and reloaded.loss.gamma == 1.0
    assert reloaded.evaluate(x, y, verbose=0) == pytest.approx(before, rel=1e-6)
