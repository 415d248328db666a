"""RAdam: one step by hand, a golden trajectory, trajectories against NumPy and torch,
fit / save / reload / continue, configs and argument checks."""

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from leafnet.train.optimizers import RAdam
from leafnet.train.schedules import OneCycle

FIXTURE = Path(__file__).parent.parent / "fixtures" / "torch_radam.json"


def golden_gradient(t):
    """The gradient at step t (1-based) of the golden tests: 0.01 first, then +-(0.1 .. 0.5)."""
    return np.full(5, 0.01) if t == 1 else np.arange(0.1, 0.6, 0.1) * (-1) ** t


def test_single_step_by_hand():
    """Step 1: sma_1 = sma_inf - 2 beta_2 / (1 - beta_2) = 1 < 5, so the step is lr * m_hat = lr * g."""
    optimizer = RAdam(learning_rate=0.5)
    x = keras.Variable([1.0, 2.0, 3.0, 4.0])
    optimizer.apply([keras.ops.array([1.0, 6.0, 7.0, 2.0])], [x])
    # atol: 1 - beta_1 and 1 - beta_1**t round differently in float32
    np.testing.assert_allclose(x.numpy(), [0.5, -1.0, -0.5, 3.0], rtol=1e-6, atol=1e-6)


def test_golden_trajectory(ref):
    """beta_2 = 0.99: steps 1-5 are momentum steps (sma_5 = 4.94), steps 6-8 rectified (sma_6 = 5.94)."""
    golden = np.array([
        [0.9990000, 0.9990000, 0.9990000, 0.9990000, 0.9990000],
        [0.9932632, 0.9880000, 0.9827368, 0.9774737, 0.9722105],
        [0.9933333, 0.9884391, 0.9835449, 0.9786508, 0.9737567],
        [0.9904752, 0.9829350, 0.9753946, 0.9678544, 0.9603141],
        [0.9907569, 0.9836587, 0.9765604, 0.9694622, 0.9623638],
        [0.9890516, 0.9820083, 0.9749285, 0.9678396, 0.9607469],
        [0.9894656, 0.9824795, 0.9754186, 0.9683393, 0.9612522],
        [0.9875690, 0.9806368, 0.9735941, 0.9665238, 0.9594423],
    ])
    optimizer = RAdam(0.1, beta_2=0.99)
    x = keras.Variable(np.ones(5, "float32"))
    numpy_radam, want = ref.NumpyRAdam(lr=ref.f32(0.1), beta_2=0.99), np.ones(5)
    for t, row in enumerate(golden, start=1):
        optimizer.apply([keras.ops.convert_to_tensor(golden_gradient(t).astype("float32"))], [x])
        want = numpy_radam.step(want, golden_gradient(t))
        np.testing.assert_allclose(x.numpy(), row, rtol=1e-6, atol=1e-7, err_msg=f"step {t}")
        np.testing.assert_allclose(want, row, rtol=1e-6, atol=1e-7, err_msg=f"NumPy step {t}")


@pytest.mark.parametrize("function,start,kwargs", [
    ("rosenbrock", "2d", {"learning_rate": 2e-3}),
    ("logcosh_sin", "5d", {"learning_rate": 1e-2}),
    ("logcosh_sin", "5d", {"learning_rate": 1e-2, "amsgrad": True, "beta_1": 0.8, "beta_2": 0.99}),
    ("logcosh_sin", "5d", {"learning_rate": 1e-2, "sma_threshold": 4.0, "weight_decay": 0.05}),
])
def test_matches_numpy_paper_update(ref, function, start, kwargs):
    steps = 400
    lr = kwargs["learning_rate"]
    rest = {k: v for k, v in kwargs.items() if k != "learning_rate"}
    rest["weight_decay"] = ref.f32(rest.get("weight_decay", 0.0))  # Keras casts it through float32 too
    want = ref.numpy_trajectory(ref.NumpyRAdam(lr=ref.f32(lr), **rest).step, function, start, steps)
    assert np.abs(want[-1] - want[0]).max() > 0.1  # it travelled: the comparison is not trivial
    got64 = ref.keras_trajectory(RAdam(**kwargs), function, start, steps, dtype="float64")
    np.testing.assert_allclose(got64, want, **ref.F64_TOL)
    got32 = ref.keras_trajectory(RAdam(**kwargs), function, start, steps)
    np.testing.assert_allclose(got32, want, **ref.F32_TOL)


def test_uses_momentum_step_below_sma_threshold():
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
def test_warmup_matches_tfa_formula(ref, total_steps, warmup_proportion, min_lr):
    steps = 300  # past total_steps: the learning rate stays at min_lr
    kwargs = dict(total_steps=total_steps, warmup_proportion=warmup_proportion, min_lr=min_lr)
    want = ref.numpy_trajectory(ref.NumpyRAdam(lr=ref.f32(2e-2), **kwargs).step, "logcosh_sin", "5d", steps)
    plain = ref.numpy_trajectory(ref.NumpyRAdam(lr=ref.f32(2e-2)).step, "logcosh_sin", "5d", steps)
    assert np.abs(want[-1] - plain[-1]).max() > 1e-2  # the warmup changes the path
    got64 = ref.keras_trajectory(RAdam(learning_rate=2e-2, **kwargs), "logcosh_sin", "5d", steps, "float64")
    np.testing.assert_allclose(got64, want, **ref.F64_TOL)
    got32 = ref.keras_trajectory(RAdam(learning_rate=2e-2, **kwargs), "logcosh_sin", "5d", steps)
    np.testing.assert_allclose(got32, want, **ref.F32_TOL)
    # the formula itself: 0 -> lr over the warmup, lr -> min_lr after it
    warm = total_steps * warmup_proportion
    assert ref.tfa_warmup_lr(2e-2, warm, total_steps, warmup_proportion, min_lr) == pytest.approx(2e-2)
    assert ref.tfa_warmup_lr(2e-2, total_steps + 50, total_steps, warmup_proportion, min_lr) == pytest.approx(min_lr)


def test_matches_recorded_torch_trajectories(ref):
    """torch (float64) vs Keras in float64 (differences: float32 learning rate, torch's eps
    placement) and in float32."""
    data = json.loads(FIXTURE.read_text())
    assert data["optimizer"] == "torch.optim.RAdam" and len(data["runs"]) >= 3
    assert any(r["weight_decay"] > 0 and r["decoupled_weight_decay"] for r in data["runs"])
    for run in data["runs"]:
        steps = [p["step"] for p in run["points"]]
        want = np.array([p["x"] for p in run["points"]])
        assert steps[-1] == run["steps"] >= 300 and np.abs(want[-1] - want[0]).max() > 0.1
        for dtype, tol in (("float64", dict(rtol=1e-6, atol=1e-7)), ("float32", ref.F32_TOL)):
            opt = RAdam(learning_rate=run["lr"], beta_1=run["beta_1"], beta_2=run["beta_2"],
                        epsilon=run["epsilon"], weight_decay=run["weight_decay"] or None, total_steps=0)
            got = ref.keras_trajectory(opt, run["function"], run["start"], run["steps"], dtype)
            np.testing.assert_allclose(got[steps], want, **tol, err_msg=f"{run['function']} {dtype}")


def test_fit_save_reload_continue(save_reload):
    save_reload(lambda model: RAdam(2e-2, total_steps=8, warmup_proportion=0.25, weight_decay=0.01, amsgrad=True))


CONFIG_CASES = {
    "radam": lambda: RAdam(3e-3, beta_1=0.8, beta_2=0.99, epsilon=1e-6, weight_decay=0.01, sma_threshold=4.0,
                           total_steps=100, warmup_proportion=0.2, min_lr=1e-5, amsgrad=True, clipnorm=1.0),
    "radam_schedule": lambda: RAdam(OneCycle(1e-2, 100)),
}


@pytest.mark.parametrize("name", sorted(CONFIG_CASES))
def test_config_round_trip(round_trip, name):
    round_trip(CONFIG_CASES[name]())


def test_every_argument_in_config():
    config = CONFIG_CASES["radam"]().get_config()
    for key, value in dict(learning_rate=3e-3, beta_1=0.8, beta_2=0.99, epsilon=1e-6, weight_decay=0.01,
                           sma_threshold=4.0, total_steps=100, warmup_proportion=0.2, min_lr=1e-5, amsgrad=True,
                           clipnorm=1.0, name="RAdam").items():
        assert config[key] == pytest.approx(value) if isinstance(value, float) else config[key] == value


@pytest.mark.parametrize("kwargs,match", [
    ({"beta_1": 1.0}, "Argument `beta_1` must be in"),
    ({"beta_2": 0.0}, "Argument `beta_2` must be in"),
    ({"total_steps": -1}, "Argument `total_steps` must be >= 0"),
    ({"total_steps": 10, "warmup_proportion": 0.0}, "Argument `warmup_proportion` must be in"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RAdam(**kwargs)
