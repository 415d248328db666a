"""Learning-rate schedules inside optimizers: saved with them, reloaded, continued."""

import keras
import numpy as np
import pytest

from leafnet.train.optimizers import Lookahead, Ranger
from leafnet.train.schedules import (
    Constant,
    ExponentialCyclicalLearningRate,
    OneCycle,
    Triangular2CyclicalLearningRate,
    TriangularCyclicalLearningRate,
    WarmupCosineDecay,
)

SCHEDULES = {
    "triangular": lambda: TriangularCyclicalLearningRate(1e-3, 5e-2, step_size=3),
    "triangular2": lambda: Triangular2CyclicalLearningRate(1e-3, 5e-2, step_size=2),
    "exponential": lambda: ExponentialCyclicalLearningRate(1e-3, 5e-2, step_size=2, gamma=0.9),
    "warmup_cosine": lambda: WarmupCosineDecay(0, decay_steps=6, warmup_steps=3, warmup_target=5e-2, alpha=0.1),
    "one_cycle": lambda: OneCycle(5e-2, total_steps=10, pct_start=0.4),
    "constant": lambda: Constant(3e-2),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_fit_save_reload_continue(save_reload, name):
    # a schedule inside Ranger (flat config), inside Lookahead(SGD) (nested configs) or,
    # cheapest to trace, in plain SGD with momentum
    if name == "warmup_cosine":
        make = lambda model: Ranger(SCHEDULES[name](), sync_period=3)  # noqa: E731
    elif name == "one_cycle":
        make = lambda model: Lookahead(  # noqa: E731
            keras.optimizers.SGD(SCHEDULES[name](), momentum=0.5), sync_period=3)
    else:
        make = lambda model: keras.optimizers.SGD(SCHEDULES[name](), momentum=0.5)  # noqa: E731
    straight, reloaded, _ = save_reload(make)
    optimizer = getattr(reloaded.optimizer, "inner_optimizer", reloaded.optimizer)
    lr = optimizer._learning_rate
    assert type(lr) is type(SCHEDULES[name]())
    assert lr.get_config() == SCHEDULES[name]().get_config()
    np.testing.assert_allclose(float(reloaded.optimizer.learning_rate), float(SCHEDULES[name]()(10)), rtol=1e-6)
