"""Learning-rate schedules against NumPy formulas (Smith 2017 as tfa computes it, PyTorch's
OneCycleLR, Keras' CosineDecay), float32 output, config round trips."""

import copy
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from leafnet.train.schedules import (
    Constant,
    ExponentialCyclicalLearningRate,
    OneCycle,
    Triangular2CyclicalLearningRate,
    TriangularCyclicalLearningRate,
    WarmupCosineDecay,
)

LO, HI = 1e-4, 1e-2


def values(schedule, steps):
    """The schedule at each step, as Keras calls it: int64 step, inside a tf.function."""
    fn = tf.function(lambda s: schedule(s))
    out = [fn(tf.constant(s, dtype=tf.int64)) for s in steps]
    assert all(v.dtype == tf.float32 and v.shape == () for v in out)
    return np.array([float(v) for v in out])


def smith(step, lo, hi, step_size, scale_fn, scale_mode):
    """Smith 2017 / tfa: cycle, x, then lo + (hi - lo) max(0, 1 - x) scale_fn(cycle | step)."""
    step = np.asarray(step, dtype="float64")
    cycle = np.floor(1 + step / (2 * step_size))
    x = np.abs(step / step_size - 2 * cycle + 1)
    return lo + (hi - lo) * np.maximum(0, 1 - x) * scale_fn(cycle if scale_mode == "cycle" else step)


STEP_SIZE = 7
STEPS = np.arange(0, 2 * STEP_SIZE * 4 + 5)  # four full cycles and a bit


@pytest.mark.parametrize("scale_mode", ["cycle", "iterations"])
def test_triangular_matches_smith(scale_mode):
    got = values(TriangularCyclicalLearningRate(LO, HI, STEP_SIZE, scale_mode=scale_mode), STEPS)
    np.testing.assert_allclose(got, smith(STEPS, LO, HI, STEP_SIZE, np.ones_like, scale_mode), rtol=1e-5, atol=1e-8)
    # landmarks: lo at the start of every cycle, hi in the middle of every cycle
    np.testing.assert_allclose(got[[0, 14, 28, 42, 56]], LO, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(got[[7, 21, 35, 49]], HI, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(got[3], LO + (HI - LO) * 3 / 7, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("scale_mode", ["cycle", "iterations"])
def test_triangular2_matches_smith(scale_mode):
    got = values(Triangular2CyclicalLearningRate(LO, HI, STEP_SIZE, scale_mode=scale_mode), STEPS)
    want = smith(STEPS, LO, HI, STEP_SIZE, lambda x: 1 / 2.0 ** (x - 1), scale_mode)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-8)
    if scale_mode == "cycle":  # the amplitude halves every cycle
        np.testing.assert_allclose(got[[7, 21, 35, 49]] - LO, (HI - LO) / np.array([1, 2, 4, 8]), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("scale_mode,gamma", [("iterations", 0.97), ("cycle", 0.5), ("iterations", 1.0)])
def test_exponential_matches_smith(scale_mode, gamma):
    got = values(ExponentialCyclicalLearningRate(LO, HI, STEP_SIZE, scale_mode=scale_mode, gamma=gamma), STEPS)
    want = smith(STEPS, LO, HI, STEP_SIZE, lambda x: gamma ** x, scale_mode)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-8)
    peak = 21 if scale_mode == "iterations" else 2  # second peak: step 21, cycle 2
    np.testing.assert_allclose(got[21], LO + (HI - LO) * gamma ** peak, rtol=1e-5, atol=1e-8)


def test_cyclical_defaults_are_tfas():
    assert TriangularCyclicalLearningRate(LO, HI, 5).scale_mode == "cycle"
    assert Triangular2CyclicalLearningRate(LO, HI, 5).scale_mode == "cycle"
    exp = ExponentialCyclicalLearningRate(LO, HI, 5)
    assert exp.scale_mode == "iterations" and exp.gamma == 1.0
    with pytest.raises(ValueError, match="scale_mode"):
        TriangularCyclicalLearningRate(LO, HI, 5, scale_mode="epoch")


def np_cosine(step, initial_learning_rate, decay_steps, warmup_steps=0, warmup_target=None, alpha=0.0):
    initial = initial_learning_rate
    def cosine(progress, start):
        return start * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * progress / decay_steps)) + alpha)

    if warmup_target is None:
        return cosine(min(step, decay_steps), initial)
    step = min(step, decay_steps + warmup_steps)
    if step < warmup_steps:
        return initial + (warmup_target - initial) * step / warmup_steps
    return cosine(step - warmup_steps, warmup_target)


@pytest.mark.parametrize("kwargs", [
    dict(initial_learning_rate=0, decay_steps=40, warmup_steps=10, warmup_target=HI, alpha=0.1),
    dict(initial_learning_rate=1e-5, decay_steps=30, warmup_steps=5, warmup_target=HI),
    dict(initial_learning_rate=HI, decay_steps=30, alpha=0.05),
])
def test_warmup_cosine_matches_numpy_and_keras(kwargs):
    steps = np.arange(0, 60)
    got = values(WarmupCosineDecay(**kwargs), steps)
    want = np.array([np_cosine(s, **kwargs) for s in steps])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-9)
    keras_kwargs = dict(kwargs, initial_learning_rate=float(kwargs["initial_learning_rate"]))
    keras_values = values(keras.optimizers.schedules.CosineDecay(**keras_kwargs), steps)
    np.testing.assert_allclose(got, keras_values, rtol=1e-5, atol=1e-9)
    if kwargs.get("warmup_target"):
        assert got[kwargs["warmup_steps"]] == pytest.approx(kwargs["warmup_target"], rel=1e-6)
        assert got[0] == pytest.approx(kwargs["initial_learning_rate"])


def np_one_cycle(step, maximal, total, pct_start=0.25, div_factor=25.0, final_div_factor=1e4):
    """torch.optim.lr_scheduler.OneCycleLR(anneal_strategy='cos', three_phase=False)."""
    initial = maximal / div_factor
    final = initial / final_div_factor
    peak, last = float(pct_start * total) - 1, total - 1
    step = min(step, last)

    def cos(a, b, pct):
        return b + (a - b) / 2 * (math.cos(math.pi * pct) + 1)

    return cos(initial, maximal, step / peak) if step <= peak else cos(maximal, final, (step - peak) / (last - peak))


@pytest.mark.parametrize("kwargs", [
    dict(maximal_learning_rate=0.1, total_steps=100),
    dict(maximal_learning_rate=0.05, total_steps=37, pct_start=0.3, div_factor=10.0, final_div_factor=100.0),
])
def test_one_cycle_matches_numpy(kwargs):
    total = kwargs["total_steps"]
    steps = np.arange(0, total + 10)  # past the end: stays at the final value
    got = values(OneCycle(**kwargs), steps)
    rest = {k: v for k, v in kwargs.items() if k not in ("maximal_learning_rate", "total_steps")}
    want = np.array([np_one_cycle(s, kwargs["maximal_learning_rate"], total, **rest) for s in steps])
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert 0.99 * kwargs["maximal_learning_rate"] < got.max() <= kwargs["maximal_learning_rate"] * (1 + 1e-6)
    assert np.all(got[total - 1:] == got[total - 1])


def test_one_cycle_values_recorded_from_torch():
    """torch 2.13 OneCycleLR(max_lr=0.1, total_steps=100) (defaults pct_start=0.3 there: 0.25 here
    passed explicitly), lr at steps 0, 1, 2, 98, 99."""
    got = values(OneCycle(0.1, 100, pct_start=0.25), [0, 1, 2, 98, 99])
    want = [0.004, 0.004410646654057104, 0.005635560338124734, 4.425831962310061e-05, 4e-07]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-8)


def test_constant():
    got = values(Constant(3e-3), [0, 1, 1000])
    np.testing.assert_allclose(got, 3e-3, rtol=1e-7)


SCHEDULES = [
    TriangularCyclicalLearningRate(LO, HI, 10, scale_mode="iterations", name="tri"),
    Triangular2CyclicalLearningRate(LO, HI, 4),
    ExponentialCyclicalLearningRate(LO, HI, 6, scale_mode="cycle", gamma=0.9),
    WarmupCosineDecay(0.0, 100, warmup_steps=10, warmup_target=HI, alpha=0.1),
    WarmupCosineDecay(HI, 100),
    OneCycle(HI, 200, pct_start=0.3, div_factor=10.0, final_div_factor=1e3),
    Constant(2e-3),
]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: type(s).__name__)
def test_schedule_config_round_trip(schedule):
    config = schedule.get_config()
    again = type(schedule).from_config(copy.deepcopy(config))
    assert type(again) is type(schedule) and again.get_config() == config
    steps = [0, 3, 17, 150]
    np.testing.assert_array_equal(values(again, steps), values(schedule, steps))
    # through Keras' registry, as load_model does it
    restored = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert type(restored) is type(schedule) and restored.get_config() == config
    assert keras.saving.serialize_keras_object(schedule)["registered_name"] == f"leafnet>{type(schedule).__name__}"
