"""LayerwiseLR: one step by hand, a golden trajectory, per-variable update factors against
NumPy references and plain Keras optimizers, freezing, Lookahead/Ranger/LossScaleOptimizer/EMA
interplay, fit, save/reload/continue, configs and argument checks."""

import math
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from leafnet.train.optimizers import LayerwiseLR, Lookahead, RAdam, Ranger
from leafnet.train.schedules import OneCycle

# --- a tiny 2-layer network and its gradients in NumPy -------------------------------------

RNG = np.random.default_rng(0)
X = RNG.normal(size=(8, 3)).astype("float32")
Y = RNG.normal(size=(8, 2)).astype("float32")


def _net(dtype="float32"):
    """Dense(4, tanh) -> Dense(2); variables: hidden kernel, hidden bias, out kernel, out bias."""
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((3,), dtype=dtype),
        keras.layers.Dense(4, activation="tanh", bias_initializer="ones", dtype=dtype),
        keras.layers.Dense(2, bias_initializer="ones", dtype=dtype),
    ])


def _numpy_grads(params):
    """Gradients of mean((tanh(X W1 + b1) W2 + b2 - Y)^2), in float64."""
    w1, b1, w2, b2 = params
    x, y = X.astype("float64"), Y.astype("float64")
    h = np.tanh(x @ w1 + b1)
    d = 2.0 * (h @ w2 + b2 - y) / y.size
    dpre = (d @ w2.T) * (1.0 - h ** 2)
    return [x.T @ dpre, dpre.sum(0), h.T @ d, d.sum(0)]


def _train(model, optimizer, steps, graph=True):
    """`steps` steps of `optimizer` on the fixed batch; returns the weights (NumPy)."""
    variables = model.trainable_variables

    dtype = variables[0].dtype
    x, y = X.astype(dtype), Y.astype(dtype)

    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x) - y))
        optimizer.apply(tape.gradient(loss, variables), variables)

    if graph:
        step = tf.function(step)
    for _ in range(steps):
        step()
    return [v.numpy() for v in variables]


def _paths(model):
    return [v.path for v in model.trainable_variables]


def test_single_step_by_hand():
    """SGD lr 0.5, factor 0.1 for `a`: `a` steps 0.05 * g, `b` 0.5 * g."""
    a, b = keras.Variable([1.0, 2.0], name="a"), keras.Variable([3.0, 4.0], name="b")
    LayerwiseLR(keras.optimizers.SGD(0.5), {"a": 0.1}).apply([keras.ops.array([1.0, 6.0])] * 2, [a, b])
    np.testing.assert_allclose(a.numpy(), [0.95, 1.7], rtol=1e-6)
    np.testing.assert_allclose(b.numpy(), [2.5, 1.0], rtol=1e-6)


def test_golden_trajectory():
    """SGD(0.1, momentum 0.9) with factor 0.5 for `a`, on the gradients of the RAdam golden
    test; `a` moves exactly half as far as `b` from 1."""
    golden = np.array([
        [0.9995000, 0.9995000, 0.9995000, 0.9995000, 0.9995000, 0.9990000, 0.9990000, 0.9990000, 0.9990000, 0.9990000],
        [0.9940500, 0.9890500, 0.9840500, 0.9790500, 0.9740500, 0.9881000, 0.9781000, 0.9681000, 0.9581000, 0.9481000],
        [0.9941450, 0.9896450, 0.9851450, 0.9806451, 0.9761450, 0.9882900, 0.9792900, 0.9702900, 0.9612900, 0.9522901],
        [0.9892305, 0.9801805, 0.9711305, 0.9620806, 0.9530305, 0.9784610, 0.9603610, 0.9422610, 0.9241610, 0.9060611],
        [0.9898075, 0.9816625, 0.9735174, 0.9653726, 0.9572275, 0.9796149, 0.9633249, 0.9470349, 0.9307449, 0.9144549],
        [0.9853268, 0.9729962, 0.9606657, 0.9483353, 0.9360048, 0.9706534, 0.9459924, 0.9213314, 0.8966704, 0.8720095],
        [0.9862941, 0.9751966, 0.9640992, 0.9530017, 0.9419043, 0.9725881, 0.9503932, 0.9281983, 0.9060034, 0.8838085],
        [0.9821647, 0.9671769, 0.9521893, 0.9372016, 0.9222139, 0.9643292, 0.9343539, 0.9043785, 0.8744030, 0.8444276],
    ])
    a, b = keras.Variable(np.ones(5, "float32"), name="a"), keras.Variable(np.ones(5, "float32"), name="b")
    opt = LayerwiseLR(keras.optimizers.SGD(0.1, momentum=0.9), {"a": 0.5})
    for t, row in enumerate(golden, start=1):
        g = np.full(5, 0.01) if t == 1 else np.arange(0.1, 0.6, 0.1) * (-1) ** t
        opt.apply([keras.ops.convert_to_tensor(g.astype("float32"))] * 2, [a, b])
        np.testing.assert_allclose(np.concatenate([a.numpy(), b.numpy()]), row, rtol=1e-6, atol=1e-7,
                                   err_msg=f"step {t}")
        np.testing.assert_allclose(1.0 - row[:5], 0.5 * (1.0 - row[5:]), rtol=1e-4, atol=1e-7)


# --- the updates -----------------------------------------------------------------------------

@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
def test_sgd_scales_one_variable_like_its_own_learning_rate(graph):
    lr, factor, steps = 0.5, 0.1, 6
    model = _net()
    start = [v.numpy().astype("float64") for v in model.trainable_variables]
    got = _train(model, LayerwiseLR(keras.optimizers.SGD(lr), {_paths(model)[0]: factor}), steps, graph)

    # NumPy, the hidden kernel with lr * factor
    want = [p.copy() for p in start]
    lrs = [lr * factor, lr, lr, lr]
    for _ in range(steps):
        want = [p - r * g for p, r, g in zip(want, lrs, _numpy_grads(want))]
    # Keras: two plain SGDs, one per group of variables
    ref = _net()
    small, normal = keras.optimizers.SGD(lr * factor), keras.optimizers.SGD(lr)
    variables = ref.trainable_variables
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(ref(X) - Y))
        grads = tape.gradient(loss, variables)
        small.apply(grads[:1], variables[:1])
        normal.apply(grads[1:], variables[1:])

    plain = _train(_net(), keras.optimizers.SGD(lr), steps, graph)
    assert np.abs(plain[0] - want[0]).max() > 1e-2  # the factor matters
    assert np.abs(got[0] - start[0]).max() > 1e-3  # and the kernel moved
    for g, w, r in zip(got, want, variables):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(g, r.numpy(), rtol=1e-6, atol=1e-7)


class NumpyAdam:
    """Keras' Adam (epsilon outside the square root, bias correction folded into the step)
    with decoupled weight decay ``var -= var * wd * lr`` first; one learning rate per array.
    As in Keras, ``beta**t`` starts from ``beta`` rounded to float32 (``ops.cast`` of a
    Python float): with beta_2 = 0.999 that alone moves the first step by 6e-6 relative."""

    def __init__(self, lrs, weight_decay=None, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        self.lrs, self.wd = lrs, weight_decay
        self.b1, self.b2, self.eps = beta_1, beta_2, epsilon
        self.m = self.v = None
        self.t = 0

    def step(self, params, grads):
        if self.m is None:
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.zeros_like(p) for p in params]
        self.t += 1
        out = []
        for i, (p, g, lr) in enumerate(zip(params, grads, self.lrs)):
            if self.wd:
                p = p - p * self.wd * lr
            self.m[i] = self.m[i] + (g - self.m[i]) * (1 - self.b1)
            self.v[i] = self.v[i] + (g * g - self.v[i]) * (1 - self.b2)
            b1, b2 = float(np.float32(self.b1)), float(np.float32(self.b2))
            alpha = lr * math.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
            out.append(p - alpha * self.m[i] / (np.sqrt(self.v[i]) + self.eps))
        return out


# float32: Keras' float32 Adam itself ends up to ~4e-7 away from the float64 reference here
# (small gradients summed over the batch), whatever the factors; float64: ~1e-15.
ADAM_TOL = {"float32": dict(rtol=1e-5, atol=0), "float64": dict(rtol=1e-10, atol=0)}


@pytest.mark.parametrize("dtype", sorted(ADAM_TOL))
@pytest.mark.parametrize("weight_decay", [None, 0.25])
def test_adam_matches_numpy_adam_with_scaled_learning_rates(weight_decay, dtype):
    lr, steps = 0.0625, 5  # lr and weight decay exact in float32, as Keras keeps them
    factors = [0.3, 1.0, 1.0, 2.5]  # a slower hidden kernel, a faster output bias
    model = _net(dtype)
    paths = _paths(model)
    start = [v.numpy().astype("float64") for v in model.trainable_variables]
    opt = LayerwiseLR(keras.optimizers.Adam(lr, weight_decay=weight_decay), {paths[0]: 0.3, paths[3]: 2.5})
    got = _train(model, opt, steps)

    ref = NumpyAdam([lr * f for f in factors], weight_decay=weight_decay)
    want = [p.copy() for p in start]
    for _ in range(steps):
        want = ref.step(want, _numpy_grads(want))
    plain = NumpyAdam([lr] * 4, weight_decay=weight_decay)
    unscaled = [p.copy() for p in start]
    for _ in range(steps):
        unscaled = plain.step(unscaled, _numpy_grads(unscaled))
    assert np.abs(unscaled[0] - want[0]).max() > 1e-2 and np.abs(unscaled[3] - want[3]).max() > 1e-2
    for g, w in zip(got, want):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, w, **ADAM_TOL[dtype])
    assert int(opt.iterations) == steps and int(opt.inner_optimizer.iterations) == steps


def test_factor_zero_freezes_exactly_with_weight_decay_and_ema():
    model = _net()
    paths = _paths(model)
    start = [v.numpy() for v in model.trainable_variables]
    inner = keras.optimizers.Adam(0.05, weight_decay=0.1, use_ema=True, ema_momentum=0.5)
    opt = LayerwiseLR(inner, {paths[0]: 0.0, paths[2]: 0.0})
    got = _train(model, opt, 4)
    for i in (0, 2):
        np.testing.assert_array_equal(got[i], start[i])
    assert np.abs(got[1] - start[1]).min() > 1e-3 and np.abs(got[3] - start[3]).min() > 1e-3
    # the inner optimizer's moving average saw the frozen values: finalizing keeps them
    opt.finalize_variable_values(model.trainable_variables)
    for i in (0, 2):
        np.testing.assert_array_equal(model.trainable_variables[i].numpy(), start[i])
    assert np.abs(model.trainable_variables[1].numpy() - got[1]).max() > 1e-4  # the EMA did replace the others


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
def test_factor_one_everywhere_is_the_inner_optimizer_bit_for_bit(graph):
    def adam():
        return keras.optimizers.Adam(0.05, weight_decay=0.1, clipnorm=0.5)

    model = _net()
    opt = LayerwiseLR(adam(), {p: 1.0 for p in _paths(model)})
    got = _train(model, opt, 5, graph)
    plain = adam()
    want = _train(_net(), plain, 5, graph)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    for a, b in zip(opt.inner_optimizer.variables, plain.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert np.abs(got[0] - _net().trainable_variables[0].numpy()).max() > 1e-3


# --- wrappers around and inside --------------------------------------------------------------

def _separable_quadratic(optimizer, steps, graph=True, start=(1.0, -2.0)):
    """x and y minimise (x^2 + y^2) / 2 apart (gradient = value); returns both trajectories."""
    x = keras.Variable(np.array([start[0]], "float32"), name="x")
    y = keras.Variable(np.array([start[1]], "float32"), name="y")

    def step():
        optimizer.apply([x.value * 1.0, y.value * 1.0], [x, y])

    if graph:
        step = tf.function(step)
    xs, ys = [], []
    for _ in range(steps):
        step()
        xs.append(float(x.numpy()[0]))
        ys.append(float(y.numpy()[0]))
    return np.array(xs), np.array(ys)


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
def test_lookahead_inside_syncs_the_scaled_fast_weights(graph):
    """LayerwiseLR(Lookahead(SGD(lr))) = Lookahead over SGD with lr * factor for x."""
    lr, factor, steps = 0.2, 0.25, 10
    xs, ys = _separable_quadratic(
        LayerwiseLR(Lookahead(keras.optimizers.SGD(lr), sync_period=3, slow_step_size=0.5), {"x": factor}),
        steps, graph)
    want_x, _ = _separable_quadratic(Lookahead(keras.optimizers.SGD(lr * factor), 3, 0.5), steps, graph)
    _, want_y = _separable_quadratic(Lookahead(keras.optimizers.SGD(lr), 3, 0.5), steps, graph)
    # by hand: within a cycle x *= (1 - lr * factor) per step; sync: slow += 0.5 (fast - slow)
    slow = 1.0
    for _ in range(3):
        slow = slow + 0.5 * (slow * (1 - lr * factor) ** 3 - slow)
    np.testing.assert_allclose(xs[8], slow, rtol=1e-6)
    np.testing.assert_allclose(xs, want_x, rtol=1e-6)
    np.testing.assert_allclose(ys, want_y, rtol=1e-6)


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
def test_gradient_accumulation_inside(graph):
    def sgd(lr):
        return keras.optimizers.SGD(lr, momentum=0.5, gradient_accumulation_steps=2)

    xs, ys = _separable_quadratic(LayerwiseLR(sgd(0.2), {"x": 0.5}), 6, graph)
    want_x, _ = _separable_quadratic(sgd(0.1), 6, graph)
    _, want_y = _separable_quadratic(sgd(0.2), 6, graph)
    assert xs[0] == 1.0 and xs[1] < 1.0  # updates on every second step only
    np.testing.assert_allclose(xs, want_x, rtol=1e-6)
    np.testing.assert_allclose(ys, want_y, rtol=1e-6)


def test_nested_layerwise_lr_multiplies_factors():
    opt = LayerwiseLR(LayerwiseLR(keras.optimizers.SGD(0.2), {"x": 0.5, "y": 0.0}), {"x": 0.4})
    xs, ys = _separable_quadratic(opt, 3)
    np.testing.assert_allclose(xs, (1 - 0.2 * 0.2) ** np.arange(1, 4), rtol=1e-6)
    np.testing.assert_array_equal(ys, [-2.0] * 3)


def test_loss_scale_optimizer_around_skips_nonfinite_steps():
    v = keras.Variable(np.ones(2, dtype="float32"), name="v")
    lso = keras.optimizers.LossScaleOptimizer(LayerwiseLR(keras.optimizers.SGD(0.1), {"v": 0.5}))
    assert float(lso.learning_rate) == pytest.approx(0.1)

    @tf.function
    def step(g):
        lso.apply([g], [v])

    scale = 2.0 ** 15
    step(tf.constant([1.0, 1.0]) * scale)  # unscaled gradient 1: v = 1 - 0.1 * 0.5
    np.testing.assert_allclose(v.numpy(), 0.95, rtol=1e-6)
    step(tf.constant([np.inf, 1.0]))  # skipped, scale halved
    np.testing.assert_allclose(v.numpy(), 0.95, rtol=1e-6)
    assert int(lso.iterations) == 1 and float(lso.dynamic_scale) == scale / 2
    step(tf.constant([2.0, 2.0]) * scale / 2)
    np.testing.assert_allclose(v.numpy(), 0.85, rtol=1e-6)
    assert int(lso.iterations) == 2


# --- fit, save, reload, continue ---------------------------------------------------------------

@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
def test_fit_with_ranger_inside(fit_setup, jit_compile):
    fit_data, fit_model = fit_setup
    x, y = fit_data()  # 20 samples, batch 4: 5 steps, then Lookahead syncs (sync_period=5)
    moved = {}
    for factor in (1.0, 0.1):
        model = fit_model()
        start = model.trainable_variables[0].numpy()
        opt = LayerwiseLR(Ranger(2e-2, sync_period=5), {model.trainable_variables[0].path: factor})
        model.compile(opt, "mse", jit_compile=jit_compile)
        model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
        moved[factor] = np.abs(model.trainable_variables[0].numpy() - start).max()
        assert int(opt.iterations) == 5
        # just synced: the weights are Lookahead's slow weights, scaled kernel included
        for var, slow in zip(model.trainable_variables, opt.inner_optimizer._slow_weights):
            np.testing.assert_array_equal(var.numpy(), slow.numpy())
    assert 0.0 < moved[0.1] < 0.2 * moved[1.0]


def test_fit_save_reload_continue(save_reload, fit_setup):
    """5 steps, save; then 5 more steps both in the same process (never reloaded) and after
    reloading the file: the same weights and optimizer state (the shared harness), and here:
    the factors, the frozen bias and the variables' order."""

    def make(model):
        assert _paths(model) == ["hidden/kernel", "hidden/bias", "out/kernel", "out/bias"]
        return LayerwiseLR(Ranger(1e-2, sync_period=3, weight_decay=0.01), {"hidden/kernel": 0.2, "out/bias": 0.0})

    straight, reloaded, _ = save_reload(make)
    assert type(reloaded.optimizer) is LayerwiseLR and type(reloaded.optimizer.inner_optimizer) is Ranger
    assert reloaded.optimizer.multipliers == straight.optimizer.multipliers
    np.testing.assert_array_equal(reloaded.weights[3].numpy(), fit_setup[1]().weights[3].numpy())  # frozen bias
    inner_variables = straight.optimizer.inner_optimizer.variables
    assert [v.path for v in straight.optimizer.variables[-len(inner_variables):]] == [v.path for v in inner_variables]
    assert len(reloaded.optimizer.variables) == len(straight.optimizer.variables) == 2 + len(inner_variables)


def test_mixed_float16_fit_with_ranger_and_ema_keeps_frozen_kernel(mixed_float16, fit_setup):
    """compile wraps it in a LossScaleOptimizer; fit ends by moving the weights to the inner
    RAdam's moving average, which saw the frozen kernel unchanged."""
    fit_data, fit_model = fit_setup
    x, y = fit_data()
    model = fit_model()
    start = [v.numpy() for v in model.trainable_variables]
    model.compile(LayerwiseLR(Ranger(1e-2, sync_period=3, use_ema=True), {"hidden/kernel": 0.0}), "mse",
                  jit_compile=False)
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(model.optimizer.inner_optimizer, LayerwiseLR) and int(model.optimizer.iterations) == 5
    assert model.layers[1].compute_dtype == "float16"
    averages = model.optimizer.inner_optimizer._model_variables_moving_average
    assert averages is model.optimizer.inner_optimizer.inner_optimizer.inner_optimizer._model_variables_moving_average
    np.testing.assert_array_equal(model.trainable_variables[0].numpy(), start[0])
    for i in (1, 2, 3):
        np.testing.assert_array_equal(model.trainable_variables[i].numpy(), averages[i].numpy())
        assert np.abs(model.trainable_variables[i].numpy() - start[i]).max() > 1e-4


# --- learning rate, configs, arguments -------------------------------------------------------

def test_learning_rate_and_loss_scale_are_the_inner_optimizers():
    opt = LayerwiseLR(keras.optimizers.SGD(0.1, loss_scale_factor=64.0), {"a/kernel": 0.5})
    assert float(opt.learning_rate) == pytest.approx(0.1)
    opt.learning_rate = 0.02
    assert float(opt.inner_optimizer.learning_rate) == pytest.approx(0.02)
    opt.learning_rate.assign(0.03)
    assert float(opt.inner_optimizer.learning_rate) == pytest.approx(0.03)
    assert opt.loss_scale_factor == 64.0 and float(opt.scale_loss(keras.ops.ones(()))) == 64.0
    assert isinstance(LayerwiseLR("adam", {}).inner_optimizer, keras.optimizers.Adam)


CONFIG_CASES = {
    "sgd": lambda: LayerwiseLR("sgd", {}),
    "adam_schedule": lambda: LayerwiseLR(keras.optimizers.Adam(OneCycle(1e-2, 100), weight_decay=1e-4),
                                         {"block7a_expand_conv/kernel": 0.1, "dense/bias": 2.0}),
    "ranger": lambda: LayerwiseLR(Ranger(2e-3, sync_period=5, amsgrad=True), {"a/kernel": 0.0}, name="lw"),
    "lookahead_radam": lambda: LayerwiseLR(Lookahead(RAdam(1e-3, total_steps=50)), {"b/kernel": np.float32(0.5)}),
}


@pytest.mark.parametrize("name", sorted(CONFIG_CASES))
def test_config_round_trip(round_trip, name):
    opt = CONFIG_CASES[name]()
    again = round_trip(opt)
    assert type(again) is LayerwiseLR and type(again.inner_optimizer) is type(opt.inner_optimizer)
    assert again.multipliers == opt.multipliers


@pytest.mark.parametrize("multipliers", [
    None, [("a", 0.5)], {1: 0.5}, {"": 0.5}, {"a": -0.1}, {"a": float("nan")}, {"a": float("inf")},
    {"a": True}, {"a": "0.5"}, {"a": None},
])
def test_bad_multipliers(multipliers):
    with pytest.raises(ValueError, match="Argument `multipliers` must be a dict"):
        LayerwiseLR("sgd", multipliers)


def test_other_arguments():
    with pytest.raises(ValueError, match="clipnorm"):
        LayerwiseLR("sgd", {}, clipnorm=1.0)
    with pytest.raises(ValueError, match="does not take"):
        LayerwiseLR("sgd", {}, sync_period=3)
    LayerwiseLR("sgd", {"a": 0}, use_ema=False)  # defaults are accepted (as in Lookahead)


def test_warns_when_no_path_matches():
    model = _net()
    with pytest.warns(UserWarning, match="none of the 1 path"):
        LayerwiseLR("sgd", {"dense/kernel": 0.5}).build(model.trainable_variables)  # not the full path
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one path matches: no warning
        LayerwiseLR("sgd", {_paths(model)[0]: 0.5, "gone/kernel": 0.5}).build(model.trainable_variables)
