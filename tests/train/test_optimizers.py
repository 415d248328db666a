"""RAdam, Lookahead and Ranger: trajectories against NumPy and torch, fit/save/reload/continue,
mixed precision, config round trips."""

import copy
import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import leafnet.train.optimizers  # noqa: F401  (registers the classes for load_model)
import leafnet.train.schedules  # noqa: F401
from leafnet.train.optimizers import Lookahead, RAdam, Ranger
from leafnet.train.schedules import (
    Constant,
    ExponentialCyclicalLearningRate,
    OneCycle,
    Triangular2CyclicalLearningRate,
    TriangularCyclicalLearningRate,
    WarmupCosineDecay,
)

FIXTURE = Path(__file__).parent / "fixtures" / "torch_radam.json"
CENTRES = np.array([0.5, -1.0, 1.5, -0.5, 2.0])  # as in tools/record_torch_radam.py
START_5D = [2.0, 1.0, -1.5, 0.3, -2.5]
START_2D = [-1.2, 1.0]


# --- test functions, in TensorFlow (for Keras) and NumPy (for the references) ------------

def tf_rosenbrock(x):
    return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


def np_rosenbrock_grad(x):
    return np.array([-2.0 * (1.0 - x[0]) - 400.0 * x[0] * (x[1] - x[0] ** 2), 200.0 * (x[1] - x[0] ** 2)])


def tf_logcosh_sin(x):
    c = tf.constant(CENTRES, dtype=x.dtype)
    return tf.reduce_sum(tf.math.log(tf.math.cosh(x - c))) + 0.3 * tf.reduce_sum(tf.sin(x) * tf.cos(tf.roll(x, -1, 0)))


def np_logcosh_sin_grad(x):
    nxt, prev = np.roll(x, -1), np.roll(x, 1)
    return np.tanh(x - CENTRES) + 0.3 * (np.cos(x) * np.cos(nxt) - np.sin(prev) * np.sin(x))


FUNCTIONS = {"rosenbrock": (tf_rosenbrock, np_rosenbrock_grad), "logcosh_sin": (tf_logcosh_sin, np_logcosh_sin_grad)}


def keras_trajectory(optimizer, function, start, steps, dtype="float32"):
    """Minimise `function` from `start` with `optimizer` (graph mode); every point, step 0 first."""
    fn = FUNCTIONS[function][0]
    x = keras.Variable(np.array(start, dtype=dtype), name="x", dtype=dtype)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = fn(x.value)
        optimizer.apply([tape.gradient(loss, x.value)], [x])

    points = [np.array(x.numpy(), dtype="float64")]
    for _ in range(steps):
        step()
        points.append(np.array(x.numpy(), dtype="float64"))
    return np.stack(points)


# --- NumPy references ---------------------------------------------------------------------

def tfa_warmup_lr(lr, t, total_steps, warmup_proportion, min_lr):
    """tfa RectifiedAdam's learning rate at step t (1-based) when total_steps > 0."""
    warmup = total_steps * warmup_proportion
    decay = max(total_steps - warmup, 1.0)
    if t <= warmup:
        return lr * t / warmup
    return lr + (min_lr - lr) / decay * min(t - warmup, decay)


class NumpyRAdam:
    """Liu et al. 2019, Algorithm 2, with tfa's epsilon, threshold and warmup, in float64."""

    def __init__(self, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7, sma_threshold=5.0, total_steps=0,
                 warmup_proportion=0.1, min_lr=0.0, weight_decay=0.0, amsgrad=False):
        self.__dict__.update(locals())
        self.m = self.v = self.v_max = 0.0
        self.t = 0

    def step(self, x, g):
        self.t += 1
        t, b1, b2 = self.t, self.beta_1, self.beta_2
        lr = self.lr
        x = x * (1.0 - self.weight_decay * lr)  # Keras' decoupled decay, with the base lr
        if self.total_steps > 0:
            lr = tfa_warmup_lr(lr, t, self.total_steps, self.warmup_proportion, self.min_lr)
        self.m = b1 * self.m + (1 - b1) * g
        self.v = b2 * self.v + (1 - b2) * g * g
        self.v_max = np.maximum(self.v_max, self.v)
        v = self.v_max if self.amsgrad else self.v
        m_hat = self.m / (1 - b1 ** t)
        rho_inf = 2 / (1 - b2) - 1
        rho_t = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
        if rho_t >= self.sma_threshold:
            r_t = np.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            return x - lr * r_t * m_hat / (np.sqrt(v / (1 - b2 ** t)) + self.epsilon)
        return x - lr * m_hat


def numpy_trajectory(make_step, function, start, steps):
    grad = FUNCTIONS[function][1]
    x = np.array(start, dtype="float64")
    points = [x]
    for _ in range(steps):
        x = make_step(x, grad(x))
        points.append(x)
    return np.stack(points)


def numpy_lookahead(inner_step, sync_period, alpha):
    """Wrap a NumPy step function (x, g) -> x with Lookahead."""
    state = {"t": 0, "slow": None}

    def step(x, g):
        if state["slow"] is None:
            state["slow"] = x.copy()
        x = inner_step(x, g)
        state["t"] += 1
        if state["t"] % sync_period == 0:
            state["slow"] = state["slow"] + alpha * (x - state["slow"])
            x = state["slow"].copy()
        return x

    return step


# --- RAdam ---------------------------------------------------------------------------------

# Tolerances. In float64 Keras reproduces the NumPy reference to rounding (the reference
# uses the learning rate rounded to float32: Keras keeps it in a float32 variable). In float32
# the trajectories agree to rtol 1e-4 except where a coordinate crosses 0, hence a small atol
# (accumulated float32 rounding after 300-400 steps is < 1e-5 at coordinates of size ~2).
F32_TOL = dict(rtol=1e-4, atol=2e-5)
F64_TOL = dict(rtol=1e-10, atol=1e-12)


def f32(lr):
    return float(np.float32(lr))


@pytest.mark.parametrize("function,start,kwargs", [
    ("rosenbrock", START_2D, {"learning_rate": 2e-3}),
    ("logcosh_sin", START_5D, {"learning_rate": 1e-2}),
    ("logcosh_sin", START_5D, {"learning_rate": 1e-2, "amsgrad": True, "beta_1": 0.8, "beta_2": 0.99}),
    ("logcosh_sin", START_5D, {"learning_rate": 1e-2, "sma_threshold": 4.0, "weight_decay": 0.05}),
])
def test_radam_matches_numpy_paper_update(function, start, kwargs):
    steps = 400
    lr = kwargs["learning_rate"]
    rest = {k: v for k, v in kwargs.items() if k != "learning_rate"}
    rest["weight_decay"] = f32(rest.get("weight_decay", 0.0))  # Keras casts it through float32 too
    want = numpy_trajectory(NumpyRAdam(lr=f32(lr), **rest).step, function, start, steps)
    assert np.abs(want[-1] - want[0]).max() > 0.1  # it travelled: the comparison is not trivial
    got64 = keras_trajectory(RAdam(**kwargs), function, start, steps, dtype="float64")
    np.testing.assert_allclose(got64, want, **F64_TOL)
    got32 = keras_trajectory(RAdam(**kwargs), function, start, steps)
    np.testing.assert_allclose(got32, want, **F32_TOL)


def test_radam_uses_momentum_step_below_sma_threshold():
    """The first steps (sma_t < 5 for beta_2=0.999: steps 1-5) are lr * m_hat: on a constant
    gradient g that is exactly lr * g per step; step 6 is rectified and much smaller."""
    x = keras.Variable(np.zeros(3, dtype="float32"))
    opt = RAdam(learning_rate=0.1)
    g = tf.constant([1.0, -2.0, 4.0])
    for _ in range(5):
        opt.apply([g], [x])
    np.testing.assert_allclose(x.numpy(), -5 * 0.1 * g.numpy(), rtol=1e-5)
    before = x.numpy()
    opt.apply([g], [x])
    step = np.abs(x.numpy() - before)
    assert np.all(step < 0.1 * 0.1 * np.abs(g.numpy()) + 1e-7)  # r_t ~ 0.02 at step 6


@pytest.mark.parametrize("total_steps,warmup_proportion,min_lr", [(200, 0.1, 1e-4), (120, 0.25, 0.0)])
def test_radam_warmup_matches_tfa_formula(total_steps, warmup_proportion, min_lr):
    steps = 300  # past total_steps: the learning rate stays at min_lr
    kwargs = dict(total_steps=total_steps, warmup_proportion=warmup_proportion, min_lr=min_lr)
    want = numpy_trajectory(NumpyRAdam(lr=f32(2e-2), **kwargs).step, "logcosh_sin", START_5D, steps)
    plain = numpy_trajectory(NumpyRAdam(lr=f32(2e-2)).step, "logcosh_sin", START_5D, steps)
    assert np.abs(want[-1] - plain[-1]).max() > 1e-2  # the warmup changes the path
    got64 = keras_trajectory(RAdam(learning_rate=2e-2, **kwargs), "logcosh_sin", START_5D, steps, "float64")
    np.testing.assert_allclose(got64, want, **F64_TOL)
    got32 = keras_trajectory(RAdam(learning_rate=2e-2, **kwargs), "logcosh_sin", START_5D, steps)
    np.testing.assert_allclose(got32, want, **F32_TOL)
    # the formula itself: 0 -> lr over the warmup, lr -> min_lr after it
    warm = total_steps * warmup_proportion
    assert tfa_warmup_lr(2e-2, warm, total_steps, warmup_proportion, min_lr) == pytest.approx(2e-2)
    assert tfa_warmup_lr(2e-2, total_steps + 50, total_steps, warmup_proportion, min_lr) == pytest.approx(min_lr)


def test_radam_matches_recorded_torch_trajectories():
    """torch (float64) vs Keras in float64 (differences: float32 learning rate, torch's eps
    placement) and in float32."""
    data = json.loads(FIXTURE.read_text())
    assert data["optimizer"] == "torch.optim.RAdam" and len(data["runs"]) >= 3
    assert any(r["weight_decay"] > 0 and r["decoupled_weight_decay"] for r in data["runs"])
    for run in data["runs"]:
        steps = [p["step"] for p in run["points"]]
        want = np.array([p["x"] for p in run["points"]])
        assert steps[-1] == run["steps"] >= 300 and np.abs(want[-1] - want[0]).max() > 0.1
        for dtype, tol in (("float64", dict(rtol=1e-6, atol=1e-7)), ("float32", F32_TOL)):
            opt = RAdam(learning_rate=run["lr"], beta_1=run["beta_1"], beta_2=run["beta_2"],
                        epsilon=run["epsilon"], weight_decay=run["weight_decay"] or None, total_steps=0)
            got = keras_trajectory(opt, run["function"], run["start"], run["steps"], dtype)
            np.testing.assert_allclose(got[steps], want, **tol, err_msg=f"{run['function']} {dtype}")


# --- Lookahead and Ranger ------------------------------------------------------------------

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
def test_lookahead_sgd_momentum_matches_numpy(sync_period, alpha):
    steps = 4 * sync_period + 2
    lr, mu = 0.05, 0.9
    got = keras_trajectory(Lookahead(keras.optimizers.SGD(lr, momentum=mu), sync_period, alpha),
                           "logcosh_sin", START_5D, steps)
    vel = {"v": 0.0}

    def sgd(x, g):
        vel["v"] = mu * vel["v"] - lr * g  # momentum is kept across syncs
        return x + vel["v"]

    want = numpy_trajectory(numpy_lookahead(sgd, sync_period, alpha), "logcosh_sin", START_5D, steps)
    plain = keras_trajectory(keras.optimizers.SGD(lr, momentum=mu), "logcosh_sin", START_5D, steps)
    assert np.abs(plain[-1] - want[-1]).max() > 1e-2
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_ranger_matches_numpy_radam_with_lookahead():
    steps = 150
    opt = Ranger(learning_rate=1e-2, beta_1=0.95, epsilon=1e-5, sync_period=6, slow_step_size=0.5)
    got = keras_trajectory(opt, "logcosh_sin", START_5D, steps)
    ref = NumpyRAdam(lr=1e-2, beta_1=0.95, epsilon=1e-5)
    want = numpy_trajectory(numpy_lookahead(ref.step, 6, 0.5), "logcosh_sin", START_5D, steps)
    assert np.abs(want[-1] - want[0]).max() > 0.1
    np.testing.assert_allclose(got, want, **F32_TOL)
    assert isinstance(opt.inner_optimizer, RAdam) and opt.inner_optimizer.beta_1 == 0.95


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


def test_lookahead_forwards_inner_ema_to_fit():
    """An inner optimizer with use_ema: fit ends by moving the weights to the average."""
    x, y = _data()
    model = _model()
    model.compile(Lookahead(keras.optimizers.SGD(0.1, use_ema=True, ema_momentum=0.5), sync_period=2), "mse",
                  jit_compile=False)
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    averages = model.optimizer.inner_optimizer._model_variables_moving_average
    assert model.optimizer._model_variables_moving_average is averages
    for w, a in zip(model.trainable_weights, averages):
        np.testing.assert_array_equal(w.numpy(), a.numpy())
    assert float(np.abs(averages[0].numpy() - _model().trainable_weights[0].numpy()).max()) > 1e-3


def test_lookahead_reduce_lr_on_plateau_in_fit():
    x, y = _data()
    model = _model()
    model.compile(Lookahead(keras.optimizers.SGD(0.1)), "mse", jit_compile=False)
    cb = keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=1e9, verbose=0)
    model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0, callbacks=[cb])
    # epoch 1 sets the best loss; epochs 2 and 3 do not improve by 1e9: halved twice
    assert float(model.optimizer.inner_optimizer.learning_rate) == pytest.approx(0.025)


# --- fit, save, reload, continue -----------------------------------------------------------

def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 4)).astype("float32")
    y = np.stack([np.sin(x[:, 0]) + x[:, 1] * x[:, 2], np.cos(x[:, 3])], axis=1).astype("float32")
    return x, y


def _model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(2)])


def _fit_save_reload_continue(make_optimizer, tmp_path):
    """5 steps, save, then (a) 5 more steps in the same process -- never reloaded: the
    uninterrupted run -- and (b) reload the file and take the same 5 steps. (Saving does
    not touch the model or the optimizer; fit twice with epochs=1 takes the same steps as
    once with epochs=2. One model for both halves saves a graph trace per case.)"""
    x, y = _data()  # 20 samples, batch 4: 5 steps per epoch

    straight = _model()
    straight.compile(make_optimizer(), "mse", jit_compile=False)
    straight.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    halfway = [w.numpy() for w in straight.weights]
    path = tmp_path / "model.keras"
    straight.save(path)
    straight.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)

    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert type(reloaded.optimizer) is type(straight.optimizer)
    for a, b in zip(halfway, reloaded.weights):
        np.testing.assert_array_equal(a, b.numpy())
    assert int(reloaded.optimizer.iterations) == 5
    reloaded.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)

    assert max(np.abs(a - b.numpy()).max() for a, b in zip(halfway, reloaded.weights)) > 1e-4
    for a, b in zip(straight.weights, reloaded.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, rtol=0)
    assert len(reloaded.optimizer.variables) == len(straight.optimizer.variables)
    for a, b in zip(straight.optimizer.variables, reloaded.optimizer.variables):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6, rtol=0)
    assert int(reloaded.optimizer.iterations) == int(straight.optimizer.iterations) == 10
    return straight, reloaded


def test_restored_state_matters(tmp_path):
    """The check above can fail: continuing with a fresh optimizer (weights only) differs."""
    x, y = _data()
    model = _model()
    model.compile(Lookahead(keras.optimizers.SGD(0.1), sync_period=3), "mse", jit_compile=False)
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    model.save(tmp_path / "m.keras")
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    fresh = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    fresh.compile(Lookahead(keras.optimizers.SGD(0.1), sync_period=3), "mse", jit_compile=False)
    fresh.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    assert max(np.abs(a.numpy() - b.numpy()).max() for a, b in zip(model.weights, fresh.weights)) > 1e-4


OPTIMIZERS = {
    "radam": lambda: RAdam(2e-2, total_steps=8, warmup_proportion=0.25, weight_decay=0.01, amsgrad=True),
    "lookahead_sgd": lambda: Lookahead(keras.optimizers.SGD(0.05, momentum=0.9), sync_period=4, slow_step_size=0.6),
    "ranger": lambda: Ranger(1e-2, sync_period=3),
}

SCHEDULES = {
    "triangular": lambda: TriangularCyclicalLearningRate(1e-3, 5e-2, step_size=3),
    "triangular2": lambda: Triangular2CyclicalLearningRate(1e-3, 5e-2, step_size=2),
    "exponential": lambda: ExponentialCyclicalLearningRate(1e-3, 5e-2, step_size=2, gamma=0.9),
    "warmup_cosine": lambda: WarmupCosineDecay(0, decay_steps=6, warmup_steps=3, warmup_target=5e-2, alpha=0.1),
    "one_cycle": lambda: OneCycle(5e-2, total_steps=10, pct_start=0.4),
    "constant": lambda: Constant(3e-2),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_fit_save_reload_continue(name, tmp_path):
    _fit_save_reload_continue(OPTIMIZERS[name], tmp_path)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_fit_save_reload_continue(name, tmp_path):
    # a schedule inside Ranger (flat config), inside Lookahead(SGD) (nested configs) or,
    # cheapest to trace, in plain SGD with momentum
    if name == "warmup_cosine":
        make = lambda: Ranger(SCHEDULES[name](), sync_period=3)  # noqa: E731
    elif name == "one_cycle":
        make = lambda: Lookahead(keras.optimizers.SGD(SCHEDULES[name](), momentum=0.5), sync_period=3)  # noqa: E731
    else:
        make = lambda: keras.optimizers.SGD(SCHEDULES[name](), momentum=0.5)  # noqa: E731
    straight, reloaded = _fit_save_reload_continue(make, tmp_path)
    optimizer = getattr(reloaded.optimizer, "inner_optimizer", reloaded.optimizer)
    lr = optimizer._learning_rate
    assert type(lr) is type(SCHEDULES[name]())
    assert lr.get_config() == SCHEDULES[name]().get_config()
    np.testing.assert_allclose(float(reloaded.optimizer.learning_rate), float(SCHEDULES[name]()(10)), rtol=1e-6)


@pytest.fixture
def mixed_float16():
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def test_ranger_mixed_float16_save_reload_continue(mixed_float16, tmp_path):
    straight, reloaded = _fit_save_reload_continue(lambda: Ranger(1e-2, sync_period=3), tmp_path)
    for model in (straight, reloaded):
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        assert isinstance(model.optimizer.inner_optimizer, Ranger)
        assert model.layers[0].compute_dtype == "float16"
    assert float(reloaded.optimizer.dynamic_scale) == float(straight.optimizer.dynamic_scale)
    assert float(reloaded.optimizer.learning_rate) == pytest.approx(1e-2)


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


def test_policy_restored_after_mixed_precision_test():
    assert keras.mixed_precision.dtype_policy().name == "float32"


# --- configs --------------------------------------------------------------------------------

CONFIG_CASES = {
    "radam": lambda: RAdam(3e-3, beta_1=0.8, beta_2=0.99, epsilon=1e-6, weight_decay=0.01, sma_threshold=4.0,
                           total_steps=100, warmup_proportion=0.2, min_lr=1e-5, amsgrad=True, clipnorm=1.0),
    "radam_schedule": lambda: RAdam(OneCycle(1e-2, 100)),
    "lookahead": lambda: Lookahead(keras.optimizers.SGD(0.1, momentum=0.9), sync_period=4, slow_step_size=0.3),
    "lookahead_radam": lambda: Lookahead(RAdam(TriangularCyclicalLearningRate(1e-4, 1e-2, 10))),
    "ranger": lambda: Ranger(2e-3, beta_1=0.9, weight_decay=1e-4, total_steps=50, sync_period=5,
                             slow_step_size=0.4, amsgrad=True, global_clipnorm=2.0),
    "ranger_schedule": lambda: Ranger(WarmupCosineDecay(0.0, 100, warmup_steps=10, warmup_target=1e-2)),
}


@pytest.mark.parametrize("name", sorted(CONFIG_CASES))
def test_config_round_trip(name):
    opt = CONFIG_CASES[name]()
    config = opt.get_config()
    again = type(opt).from_config(copy.deepcopy(config))
    assert type(again) is type(opt)
    assert again.get_config() == config
    # and through Keras' registry (what load_model does)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert type(restored) is type(opt) and restored.get_config() == config


def test_every_radam_argument_in_config():
    config = CONFIG_CASES["radam"]().get_config()
    for key, value in dict(learning_rate=3e-3, beta_1=0.8, beta_2=0.99, epsilon=1e-6, weight_decay=0.01,
                           sma_threshold=4.0, total_steps=100, warmup_proportion=0.2, min_lr=1e-5, amsgrad=True,
                           clipnorm=1.0, name="RAdam").items():
        assert config[key] == pytest.approx(value) if isinstance(value, float) else config[key] == value
    ranger = CONFIG_CASES["ranger"]().get_config()
    assert ranger["sync_period"] == 5 and ranger["slow_step_size"] == 0.4 and ranger["amsgrad"] is True
    assert ranger["name"] == "Ranger" and ranger["global_clipnorm"] == 2.0
