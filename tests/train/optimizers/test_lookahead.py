"""Lookahead and Ranger: steps by hand, golden and NumPy trajectories, fit / save / reload /
continue (also under mixed_float16), LossScaleOptimizer, EMA, plateaus, configs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from leafnet.train.optimizers import Lookahead, RAdam, Ranger
from leafnet.train.schedules import TriangularCyclicalLearningRate, WarmupCosineDecay

# --- Lookahead -----------------------------------------------------------------------------


def test_lookahead_sgd_by_hand():
    """f(x) = x^2 / 2, SGD lr 0.1 (x *= 0.9 per step), sync every 3 steps, alpha 0.5."""
    x = keras.Variable(np.array([1.0], dtype="float32"))
    opt = Lookahead(keras.optimizers.SGD(0.1), sync_period=3, slow_step_size=0.5)
    seen = []
    for _ in range(7):
        opt.apply([x.value * 1.0], [x])
        seen.append(float(x.numpy()[0]))
    s1 = 1.0 + 0.5 * (0.729 - 1.0)  # 0.8645
    s2 = s1 + 0.5 * (s1 * 0.729 - s1)
    want = [0.9, 0.81, s1, s1 * 0.9, s1 * 0.81, s2, s2 * 0.9]
    np.testing.assert_allclose(seen, want, rtol=1e-6)
    assert int(opt.iterations) == 7 and int(opt.inner_optimizer.iterations) == 7


@pytest.mark.parametrize("sync_period,alpha", [(3, 0.5), (5, 0.8)])
def test_lookahead_sgd_momentum_matches_numpy(ref, sync_period, alpha):
    steps = 4 * sync_period + 2
    lr, mu = 0.05, 0.9
    got = ref.keras_trajectory(Lookahead(keras.optimizers.SGD(lr, momentum=mu), sync_period, alpha),
                               "logcosh_sin", "5d", steps)
    vel = {"v": 0.0}

    def sgd(x, g):
        vel["v"] = mu * vel["v"] - lr * g  # momentum is kept across syncs
        return x + vel["v"]

    want = ref.numpy_trajectory(ref.numpy_lookahead(sgd, sync_period, alpha), "logcosh_sin", "5d", steps)
    plain = ref.keras_trajectory(keras.optimizers.SGD(lr, momentum=mu), "logcosh_sin", "5d", steps)
    assert np.abs(plain[-1] - want[-1]).max() > 1e-2
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_lookahead_exposes_inner_learning_rate_and_accepts_names():
    opt = Lookahead(keras.optimizers.SGD(0.1))
    assert float(opt.learning_rate) == pytest.approx(0.1)
    opt.learning_rate = 0.02
    assert float(opt.inner_optimizer.learning_rate) == pytest.approx(0.02)
    opt.learning_rate.assign(0.03)  # what leafnet's trainer does on a plateau
    assert float(opt.inner_optimizer.learning_rate) == pytest.approx(0.03)
    assert isinstance(Lookahead("adam").inner_optimizer, keras.optimizers.Adam)
    by_config = Lookahead(keras.saving.serialize_keras_object(RAdam(0.5, beta_1=0.7)))
    assert isinstance(by_config.inner_optimizer, RAdam) and by_config.inner_optimizer.beta_1 == 0.7
    scaled = Lookahead(keras.optimizers.SGD(0.1, loss_scale_factor=128.0))
    assert scaled.loss_scale_factor == 128.0 and float(scaled.scale_loss(keras.ops.ones(()))) == 128.0
    keras.optimizers.LossScaleOptimizer(scaled)  # takes over loss scaling: the inner one must not unscale
    assert scaled.inner_optimizer.loss_scale_factor is None
    with pytest.raises(ValueError, match="clipnorm"):
        Lookahead("sgd", clipnorm=1.0)
    with pytest.raises(ValueError, match="sync_period"):
        Lookahead("sgd", sync_period=0)


def test_lookahead_forwards_inner_ema_to_fit(fit_setup):
    """An inner optimizer with use_ema: fit ends by moving the weights to the average."""
    fit_data, fit_model = fit_setup
    x, y = fit_data()
    model = fit_model()
    model.compile(Lookahead(keras.optimizers.SGD(0.1, use_ema=True, ema_momentum=0.5), sync_period=2), "mse",
                  jit_compile=False)
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    averages = model.optimizer.inner_optimizer._model_variables_moving_average
    assert model.optimizer._model_variables_moving_average is averages
    for w, a in zip(model.trainable_weights, averages):
        np.testing.assert_array_equal(w.numpy(), a.numpy())
    assert float(np.abs(averages[0].numpy() - fit_model().trainable_weights[0].numpy()).max()) > 1e-3


def test_lookahead_reduce_lr_on_plateau_in_fit(fit_setup):
    fit_data, fit_model = fit_setup
    x, y = fit_data()
    model = fit_model()
    model.compile(Lookahead(keras.optimizers.SGD(0.1)), "mse", jit_compile=False)
    cb = keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=1e9, verbose=0)
    model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0, callbacks=[cb])
    # epoch 1 sets the best loss; epochs 2 and 3 do not improve by 1e9: halved twice
    assert float(model.optimizer.inner_optimizer.learning_rate) == pytest.approx(0.025)


def test_lookahead_fit_save_reload_continue(save_reload):
    """Also checks that continuing with a fresh optimizer (weights only) ends elsewhere."""
    save_reload(lambda model: Lookahead(keras.optimizers.SGD(0.05, momentum=0.9), sync_period=4,
                                        slow_step_size=0.6))
    save_reload(lambda model: Lookahead(keras.optimizers.SGD(0.1), sync_period=3))


def test_loss_scale_optimizer_skips_lookahead_step_on_nonfinite_gradients():
    v = keras.Variable(np.ones(2, dtype="float32"))
    lso = keras.optimizers.LossScaleOptimizer(Lookahead(keras.optimizers.SGD(0.1), sync_period=2))

    @tf.function
    def step(g):
        lso.apply([g], [v])

    scale = 2.0 ** 15
    step(tf.constant([1.0, 1.0]) * scale)  # unscaled gradient 1: v = 0.9
    step(tf.constant([np.inf, 1.0]))  # skipped: no step, no sync, scale halved
    np.testing.assert_allclose(v.numpy(), 0.9, rtol=1e-6)
    assert int(lso.iterations) == 1 and float(lso.dynamic_scale) == scale / 2
    step(tf.constant([1.0, 1.0]) * scale / 2)  # v = 0.8, then sync: slow = 1 + 0.5 (0.8 - 1)
    np.testing.assert_allclose(v.numpy(), 0.9, rtol=1e-6)
    np.testing.assert_allclose(lso.inner_optimizer._slow_weights[0].numpy(), 0.9, rtol=1e-6)
    assert int(lso.iterations) == 2


# --- Ranger --------------------------------------------------------------------------------


def test_ranger_single_step_by_hand():
    """sync_period=1: RAdam's first step is lr * g (sma_1 = 1 < 5), then the slow weights
    (the start) move halfway there and the fast weights follow: x - lr * g / 2."""
    optimizer = Ranger(learning_rate=0.5, sync_period=1, slow_step_size=0.5)
    x = keras.Variable([1.0, 2.0, 3.0, 4.0])
    optimizer.apply([keras.ops.array([1.0, 6.0, 7.0, 2.0])], [x])
    np.testing.assert_allclose(x.numpy(), [0.75, 0.5, 1.25, 3.5], rtol=1e-6, atol=1e-6)


def test_ranger_golden_trajectory(ref):
    """RAdam(beta_2=0.99) with a sync every 3 steps, on the gradients of the RAdam golden test."""
    golden = np.array([
        [0.9990000, 0.9990000, 0.9990000, 0.9990000, 0.9990000],
        [0.9933846, 0.9882564, 0.9831282, 0.9780000, 0.9728718],
        [0.9966217, 0.9941453, 0.9916688, 0.9891924, 0.9867159],
        [0.9938232, 0.9887792, 0.9837353, 0.9786914, 0.9736474],
        [0.9938534, 0.9890197, 0.9841861, 0.9793524, 0.9745187],
        [0.9944071, 0.9907839, 0.9871396, 0.9834900, 0.9798381],
        [0.9945224, 0.9909674, 0.9873458, 0.9837075, 0.9800625],
        [0.9926947, 0.9892066, 0.9856074, 0.9819803, 0.9783421],
    ])

    def gradient(t):
        return np.full(5, 0.01) if t == 1 else np.arange(0.1, 0.6, 0.1) * (-1) ** t

    optimizer = Ranger(0.1, beta_2=0.99, sync_period=3)
    x = keras.Variable(np.ones(5, "float32"))
    numpy_ranger = ref.numpy_lookahead(ref.NumpyRAdam(lr=ref.f32(0.1), beta_1=0.95, beta_2=0.99,
                                                      epsilon=1e-5).step, 3, 0.5)
    want = np.ones(5)
    for t, row in enumerate(golden, start=1):
        optimizer.apply([keras.ops.convert_to_tensor(gradient(t).astype("float32"))], [x])
        want = numpy_ranger(want, gradient(t))
        np.testing.assert_allclose(x.numpy(), row, rtol=1e-6, atol=1e-7, err_msg=f"step {t}")
        np.testing.assert_allclose(want, row, rtol=1e-6, atol=1e-7, err_msg=f"NumPy step {t}")


def test_ranger_matches_numpy_radam_with_lookahead(ref):
    steps = 150
    opt = Ranger(learning_rate=1e-2, beta_1=0.95, epsilon=1e-5, sync_period=6, slow_step_size=0.5)
    got = ref.keras_trajectory(opt, "logcosh_sin", "5d", steps)
    radam = ref.NumpyRAdam(lr=1e-2, beta_1=0.95, epsilon=1e-5)
    want = ref.numpy_trajectory(ref.numpy_lookahead(radam.step, 6, 0.5), "logcosh_sin", "5d", steps)
    assert np.abs(want[-1] - want[0]).max() > 0.1
    np.testing.assert_allclose(got, want, **ref.F32_TOL)
    assert isinstance(opt.inner_optimizer, RAdam) and opt.inner_optimizer.beta_1 == 0.95


def test_ranger_fit_save_reload_continue(save_reload):
    save_reload(lambda model: Ranger(1e-2, sync_period=3))


def test_ranger_mixed_float16_save_reload_continue(mixed_float16, save_reload):
    straight, reloaded, _ = save_reload(lambda model: Ranger(1e-2, sync_period=3))
    for model in (straight, reloaded):
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        assert isinstance(model.optimizer.inner_optimizer, Ranger)
        assert model.get_layer("hidden").compute_dtype == "float16"
    assert float(reloaded.optimizer.dynamic_scale) == float(straight.optimizer.dynamic_scale)
    assert float(reloaded.optimizer.learning_rate) == pytest.approx(1e-2)


def test_dtype_policy_scope_puts_the_policy_back(policy_scope):
    """The `mixed_float16` fixture's scope restores the policy it found, also on an error
    (checked here directly, whatever ran before)."""
    before = keras.config.dtype_policy().name
    with pytest.raises(RuntimeError, match="inside"):
        with policy_scope("mixed_float16"):
            assert keras.config.dtype_policy().name == "mixed_float16"
            assert keras.layers.Dense(2).compute_dtype == "float16"
            raise RuntimeError("inside")
    assert keras.config.dtype_policy().name == before


# --- configs --------------------------------------------------------------------------------

CONFIG_CASES = {
    "lookahead": lambda: Lookahead(keras.optimizers.SGD(0.1, momentum=0.9), sync_period=4, slow_step_size=0.3),
    "lookahead_radam": lambda: Lookahead(RAdam(TriangularCyclicalLearningRate(1e-4, 1e-2, 10))),
    "ranger": lambda: Ranger(2e-3, beta_1=0.9, weight_decay=1e-4, total_steps=50, sync_period=5,
                             slow_step_size=0.4, amsgrad=True, global_clipnorm=2.0),
    "ranger_schedule": lambda: Ranger(WarmupCosineDecay(0.0, 100, warmup_steps=10, warmup_target=1e-2)),
}


@pytest.mark.parametrize("name", sorted(CONFIG_CASES))
def test_config_round_trip(round_trip, name):
    round_trip(CONFIG_CASES[name]())


def test_every_ranger_argument_in_config():
    ranger = CONFIG_CASES["ranger"]().get_config()
    assert ranger["sync_period"] == 5 and ranger["slow_step_size"] == 0.4 and ranger["amsgrad"] is True
    assert ranger["name"] == "Ranger" and ranger["global_clipnorm"] == 2.0
