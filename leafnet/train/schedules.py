"""Learning-rate schedules with tensorflow-addons' argument names, as Keras 3 objects.

- :class:`TriangularCyclicalLearningRate`, :class:`Triangular2CyclicalLearningRate`,
  :class:`ExponentialCyclicalLearningRate`: Smith 2017 (https://arxiv.org/abs/1506.01186),
  computed exactly as ``tfa.optimizers.*CyclicalLearningRate``. tfa's generic
  ``CyclicalLearningRate(scale_fn=...)`` took a lambda, which cannot be saved; its three
  named policies cover what recipes used.
- :class:`WarmupCosineDecay`: linear warmup then cosine decay (Keras' ``CosineDecay`` with
  the warmup arguments first, and float32 whatever the type of ``initial_learning_rate``).
- :class:`OneCycle`: the cosine one-cycle policy of PyTorch's ``OneCycleLR``
  (``anneal_strategy="cos"``, ``three_phase=False``) and fastai.
- :class:`Constant`: a fixed learning rate, for a config slot that wants a schedule.

Every schedule returns a float32 scalar tensor for an integer step (the optimizer's
``iterations``: 0 at the first update), is registered with Keras' serializer (package
``leafnet``) and round-trips through ``get_config()`` / ``from_config()``. An optimizer built
on a schedule has a learning rate that cannot be set (``ReduceLROnPlateau`` refuses it).
"""

from __future__ import annotations

import math

import keras
from keras import ops

__all__ = [
    "TriangularCyclicalLearningRate",
    "Triangular2CyclicalLearningRate",
    "ExponentialCyclicalLearningRate",
    "WarmupCosineDecay",
    "OneCycle",
    "Constant",
]

_register = keras.saving.register_keras_serializable(package="leafnet")
_DTYPE = "float32"


def _f32(x):
    return ops.cast(x, _DTYPE)


class _CyclicalLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """tfa's ``CyclicalLearningRate`` with the scale function given by a method.

    ``cycle = floor(1 + step / (2 step_size))``, ``x = |step / step_size - 2 cycle + 1|``,
    ``lr = initial + (maximal - initial) * max(0, 1 - x) * scale_fn(cycle or step)``.
    """

    _default_scale_mode = "cycle"

    def __init__(self, initial_learning_rate, maximal_learning_rate, step_size, scale_mode=None, name=None):
        scale_mode = self._default_scale_mode if scale_mode is None else scale_mode
        if scale_mode not in ("cycle", "iterations"):
            raise ValueError("Argument `scale_mode` must be 'cycle' or 'iterations'. "
                             f"Received: scale_mode={scale_mode!r}")
        if step_size <= 0:
            raise ValueError(f"Argument `step_size` must be > 0. Received: step_size={step_size}")
        self.initial_learning_rate = initial_learning_rate
        self.maximal_learning_rate = maximal_learning_rate
        self.step_size = step_size
        self.scale_mode = scale_mode
        self.name = name or type(self).__name__

    def scale_fn(self, x):
        raise NotImplementedError

    def __call__(self, step):
        with keras.name_scope(self.name):
            initial = _f32(self.initial_learning_rate)
            maximal = _f32(self.maximal_learning_rate)
            step_size = _f32(self.step_size)
            step = _f32(step)
            cycle = ops.floor(1.0 + step / (2.0 * step_size))
            x = ops.abs(step / step_size - 2.0 * cycle + 1.0)
            mode_step = cycle if self.scale_mode == "cycle" else step
            return initial + (maximal - initial) * ops.maximum(_f32(0.0), 1.0 - x) * _f32(self.scale_fn(mode_step))

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "maximal_learning_rate": self.maximal_learning_rate,
            "step_size": self.step_size,
            "scale_mode": self.scale_mode,
            "name": self.name,
        }


@_register
class TriangularCyclicalLearningRate(_CyclicalLearningRate):
    """Triangular cycles between ``initial_learning_rate`` and ``maximal_learning_rate``.

    ``step_size`` steps up, ``step_size`` steps down (``scale_fn = 1``).
    """

    def __init__(self, initial_learning_rate, maximal_learning_rate, step_size, scale_mode="cycle",
                 name="TriangularCyclicalLearningRate"):
        super().__init__(initial_learning_rate, maximal_learning_rate, step_size, scale_mode, name)

    def scale_fn(self, x):
        return ops.ones_like(x)


@_register
class Triangular2CyclicalLearningRate(_CyclicalLearningRate):
    """Triangular cycles whose amplitude halves every cycle (``scale_fn(x) = 1 / 2**(x - 1)``)."""

    def __init__(self, initial_learning_rate, maximal_learning_rate, step_size, scale_mode="cycle",
                 name="Triangular2CyclicalLearningRate"):
        super().__init__(initial_learning_rate, maximal_learning_rate, step_size, scale_mode, name)

    def scale_fn(self, x):
        return 1.0 / ops.power(_f32(2.0), x - 1.0)


@_register
class ExponentialCyclicalLearningRate(_CyclicalLearningRate):
    """Triangular cycles scaled by ``gamma**step`` (default ``scale_mode="iterations"``)
    or ``gamma**cycle`` (``scale_mode="cycle"``)."""

    _default_scale_mode = "iterations"

    def __init__(self, initial_learning_rate, maximal_learning_rate, step_size, scale_mode="iterations",
                 gamma=1.0, name="ExponentialCyclicalLearningRate"):
        super().__init__(initial_learning_rate, maximal_learning_rate, step_size, scale_mode, name)
        self.gamma = gamma

    def scale_fn(self, x):
        return ops.power(_f32(self.gamma), x)

    def get_config(self):
        config = super().get_config()
        config["gamma"] = self.gamma
        return config


@_register
class WarmupCosineDecay(keras.optimizers.schedules.CosineDecay):
    """Linear warmup from ``initial_learning_rate`` to ``warmup_target`` over
    ``warmup_steps``, then cosine decay to ``alpha * warmup_target`` over ``decay_steps``.

    With ``warmup_target=None`` there is no warmup: cosine decay from
    ``initial_learning_rate`` to ``alpha * initial_learning_rate`` over ``decay_steps``.
    The learning rate stays at its final value after the decay. This is Keras'
    ``CosineDecay`` (same formula, same meaning of every argument) with the warmup
    arguments in the usual order and a float32 result even for ``initial_learning_rate=0``.
    """

    def __init__(self, initial_learning_rate, decay_steps, warmup_steps=0, warmup_target=None, alpha=0.0,
                 name="WarmupCosineDecay"):
        if warmup_steps < 0:
            raise ValueError(f"Argument `warmup_steps` must be >= 0. Received: warmup_steps={warmup_steps}")
        super().__init__(
            initial_learning_rate=initial_learning_rate,
            decay_steps=decay_steps,
            alpha=alpha,
            name=name,
            warmup_target=warmup_target,
            warmup_steps=warmup_steps,
        )

    def __call__(self, step):
        # Keras' CosineDecay takes its dtype from `initial_learning_rate` (an int 0 makes
        # it integer arithmetic); the same formula, always in float32.
        with keras.name_scope(self.name):
            initial = _f32(self.initial_learning_rate)
            decay_steps = _f32(self.decay_steps)
            step = _f32(step)

            def cosine(progress, start):
                decayed = 0.5 * (1.0 + ops.cos(math.pi * progress / decay_steps))
                return start * ((1.0 - self.alpha) * decayed + self.alpha)

            if self.warmup_target is None:
                return cosine(ops.minimum(step, decay_steps), initial)
            target = _f32(self.warmup_target)
            warmup_steps = _f32(self.warmup_steps)
            step = ops.minimum(step, decay_steps + warmup_steps)
            warm = initial + (target - initial) * step / ops.maximum(warmup_steps, _f32(1.0))
            return ops.where(step < warmup_steps, warm, cosine(step - warmup_steps, target))

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "warmup_steps": self.warmup_steps,
            "warmup_target": self.warmup_target,
            "alpha": self.alpha,
            "name": self.name,
        }


@_register
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """The one-cycle policy with cosine annealing (PyTorch ``OneCycleLR``, fastai).

    From ``maximal_learning_rate / div_factor`` up to ``maximal_learning_rate`` at step
    ``pct_start * total_steps - 1``, then down to
    ``maximal_learning_rate / div_factor / final_div_factor`` at step ``total_steps - 1``;
    each phase is a half cosine, ``end + (start - end) * (1 + cos(pi * pct)) / 2``. Steps
    past ``total_steps - 1`` keep the final value (PyTorch raises there).
    """

    def __init__(self, maximal_learning_rate, total_steps, pct_start=0.25, div_factor=25.0,
                 final_div_factor=1e4, name="OneCycle"):
        if total_steps < 2:
            raise ValueError(f"Argument `total_steps` must be >= 2. Received: total_steps={total_steps}")
        if not 0.0 < pct_start < 1.0:
            raise ValueError(f"Argument `pct_start` must be in (0, 1). Received: pct_start={pct_start}")
        if float(pct_start * total_steps) - 1.0 <= 0.0 or float(pct_start * total_steps) >= total_steps:
            raise ValueError("`pct_start * total_steps` must be in (1, total_steps): both phases need steps. "
                             f"Received: pct_start={pct_start}, total_steps={total_steps}")
        self.maximal_learning_rate = maximal_learning_rate
        self.total_steps = total_steps
        self.pct_start = pct_start
        self.div_factor = div_factor
        self.final_div_factor = final_div_factor
        self.name = name

    @staticmethod
    def _anneal(start, end, remaining):
        """Half-cosine from ``start`` to ``end``; ``remaining = 1 - pct`` of the phase.

        ``(1 + cos(pi pct)) / 2 == sin(pi remaining / 2)**2``: the same value, but with
        ``remaining`` computed directly it stays accurate in float32 near the end of the
        phase, where the learning rate approaches its tiny final value.
        """
        return end + (start - end) * ops.square(ops.sin(math.pi / 2.0 * remaining))

    def __call__(self, step):
        with keras.name_scope(self.name):
            maximal = _f32(self.maximal_learning_rate)
            initial = maximal / _f32(self.div_factor)
            final = initial / _f32(self.final_div_factor)
            peak_step = _f32(float(self.pct_start * self.total_steps) - 1.0)
            last_step = _f32(self.total_steps - 1)
            step = ops.minimum(_f32(step), last_step)
            up = self._anneal(initial, maximal, (peak_step - step) / peak_step)
            down = self._anneal(maximal, final, (last_step - step) / (last_step - peak_step))
            return ops.where(step <= peak_step, up, down)

    def get_config(self):
        return {
            "maximal_learning_rate": self.maximal_learning_rate,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
            "name": self.name,
        }


@_register
class Constant(keras.optimizers.schedules.LearningRateSchedule):
    """The same learning rate at every step."""

    def __init__(self, learning_rate, name="Constant"):
        self.learning_rate = learning_rate
        self.name = name

    def __call__(self, step):
        return ops.convert_to_tensor(self.learning_rate, dtype=_DTYPE)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "name": self.name}
