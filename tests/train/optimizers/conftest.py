"""Shared by the optimizer tests: test functions with NumPy gradients, trajectories in Keras
and NumPy, NumPy references (RAdam, Lookahead), a config round trip and one
fit / save / reload / continue harness, each handed to the tests as a fixture."""

import contextlib
import copy
import json
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

CENTRES = np.array([0.5, -1.0, 1.5, -0.5, 2.0])  # as in tools/record_torch_radam.py
STARTS = {"2d": [-1.2, 1.0], "5d": [2.0, 1.0, -1.5, 0.3, -2.5]}


def start_point(start):
    """`start` itself, or the point of that name in ``STARTS``."""
    return STARTS[start] if isinstance(start, str) else start

# Tolerances. In float64 Keras reproduces the NumPy reference to rounding (the reference
# uses the learning rate rounded to float32: Keras keeps it in a float32 variable). In float32
# the trajectories agree to rtol 1e-4 except where a coordinate crosses 0, hence a small atol
# (accumulated float32 rounding after 300-400 steps is < 1e-5 at coordinates of size ~2).
F32_TOL = dict(rtol=1e-4, atol=2e-5)
F64_TOL = dict(rtol=1e-10, atol=1e-12)


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
    x = keras.Variable(np.array(start_point(start), dtype=dtype), name="x", dtype=dtype)

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
    x = np.array(start_point(start), dtype="float64")
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


def f32(lr):
    """`lr` rounded to float32, as Keras keeps a learning rate."""
    return float(np.float32(lr))


@pytest.fixture(scope="session")
def ref():
    """The test functions, the trajectories and the NumPy references, as one namespace."""
    return types.SimpleNamespace(
        STARTS=STARTS, F32_TOL=F32_TOL, F64_TOL=F64_TOL, f32=f32, keras_trajectory=keras_trajectory,
        numpy_trajectory=numpy_trajectory, NumpyRAdam=NumpyRAdam, numpy_lookahead=numpy_lookahead,
        tfa_warmup_lr=tfa_warmup_lr,
    )


# --- config round trip --------------------------------------------------------------------

def config_round_trip(optimizer):
    """``get_config`` is JSON, and ``from_config`` and Keras' registry (what ``load_model``
    uses) both rebuild an optimizer of the same type with the same config; returns the copy."""
    config = optimizer.get_config()
    json.dumps(config)
    again = type(optimizer).from_config(copy.deepcopy(config))
    assert type(again) is type(optimizer)
    assert again.get_config() == config
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(restored) is type(optimizer) and restored.get_config() == config
    return again


@pytest.fixture(scope="session")
def round_trip():
    """:func:`config_round_trip`."""
    return config_round_trip


# --- fit, save, reload, continue ------------------------------------------------------------

def fit_data():
    """20 samples, 4 features, 2 targets: 5 steps per epoch at batch 4."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 4)).astype("float32")
    y = np.stack([np.sin(x[:, 0]) + x[:, 1] * x[:, 2], np.cos(x[:, 3])], axis=1).astype("float32")
    return x, y


def fit_model():
    """Functional, like leafnet's classifier: variable paths are "layer/variable" and stay so
    after `load_model`. (A Sequential built with an Input has "sequential/dense/kernel"
    before saving and "dense/kernel" after reloading.)"""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="tanh", name="hidden")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="out")(hidden))


def fit_save_reload_continue(make_optimizer, tmp_path, check_fresh=True):
    """5 steps, save, then (a) 5 more steps in the same process -- never reloaded: the
    uninterrupted run -- and (b) reload the file and take the same 5 steps: the same weights
    and optimizer state. With ``check_fresh``, also (c) a fresh optimizer from the saved
    weights ends elsewhere, so the restored state is what made (a) and (b) agree. (Saving
    does not touch the model or the optimizer; fit twice with epochs=1 takes the same steps
    as once with epochs=2.)

    Args:
        make_optimizer: ``model -> optimizer``, called once per model compiled.
        tmp_path: folder for ``model.keras``.
    Returns:
        ``(straight, reloaded, path)``.
    """
    x, y = fit_data()

    straight = fit_model()
    straight.compile(make_optimizer(straight), "mse", jit_compile=False)
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

    if check_fresh:
        fresh = keras.saving.load_model(path, compile=False)
        fresh.compile(make_optimizer(fresh), "mse", jit_compile=False)
        fresh.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
        assert max(np.abs(a.numpy() - b.numpy()).max() for a, b in zip(straight.weights, fresh.weights)) > 1e-4
    return straight, reloaded, path


@pytest.fixture
def save_reload(tmp_path):
    """``save_reload(make_optimizer, check_fresh=True)``: :func:`fit_save_reload_continue`."""
    return lambda make_optimizer, check_fresh=True: fit_save_reload_continue(make_optimizer, tmp_path, check_fresh)


@pytest.fixture(scope="session")
def fit_setup():
    """``(fit_data, fit_model)``: the data and model :func:`fit_save_reload_continue` trains."""
    return fit_data, fit_model


# --- the global dtype policy ----------------------------------------------------------------

@contextlib.contextmanager
def dtype_policy(name):
    """Keras' global dtype policy set to `name` inside, and put back as it was on leaving
    (also when the body raises)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@pytest.fixture
def mixed_float16():
    """The test runs under Keras' ``mixed_float16`` policy; the previous policy is put back."""
    with dtype_policy("mixed_float16"):
        yield


@pytest.fixture(scope="session")
def policy_scope():
    """:func:`dtype_policy`."""
    return dtype_policy
