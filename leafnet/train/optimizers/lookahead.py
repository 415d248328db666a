"""Lookahead around any Keras optimizer, and Ranger (Lookahead over RAdam).

Zhang et al. 2019 (https://arxiv.org/abs/1907.08610): every ``sync_period`` steps the slow
weights move ``slow_step_size`` of the way to the fast weights and the fast weights restart
from there. Registered as ``leafnet>Lookahead`` and ``leafnet>Ranger``.
"""

from __future__ import annotations

import numbers

import keras
from keras import ops

from leafnet.train.optimizers.radam import RAdam
from leafnet.train.optimizers.wrapper import ForwardsToInner, refuse_base_kwargs

__all__ = ["Lookahead", "Ranger"]


@keras.saving.register_keras_serializable(package="leafnet")
class Lookahead(ForwardsToInner, keras.optimizers.Optimizer):
    """Lookahead (Zhang et al. 2019) around any Keras optimizer.

    The inner ("fast") optimizer updates the weights every step. The wrapper keeps one
    slow copy of each weight, set to the weights at the first step; after every
    ``sync_period``-th step ``slow += slow_step_size * (fast - slow)`` and ``fast = slow``.

    Built like ``keras.optimizers.LossScaleOptimizer``: ``variables`` are the wrapper's own
    (step counter, slow weights) followed by the inner optimizer's, so saving to ``.keras``
    and reloading restores the whole state. ``learning_rate`` is the inner optimizer's (get
    and set), so ``ReduceLROnPlateau`` and learning-rate logging see the real value; loss
    scaling, ``finalize_variable_values`` (EMA) and ``exclude_from_weight_decay`` are
    forwarded too. ``iterations`` counts the wrapper's steps. A ``LossScaleOptimizer`` may
    wrap a Lookahead (``mixed_float16``).

    Args:
        optimizer: the inner optimizer: an instance, a name (``"sgd"``) or a config dict.
        sync_period: synchronise every this many steps (int >= 1).
        slow_step_size: the slow weights' step toward the fast ones, in [0, 1].
        name: name scope of the wrapper's variables.
        **kwargs: Keras' common optimizer arguments are accepted only at their defaults:
            set clipping, weight decay, EMA, ... on the inner optimizer.
    """

    def __init__(self, optimizer, sync_period=6, slow_step_size=0.5, name="Lookahead", **kwargs):
        refuse_base_kwargs("Lookahead", kwargs)
        if isinstance(sync_period, bool) or not isinstance(sync_period, numbers.Integral) or sync_period < 1:
            raise ValueError(f"Argument `sync_period` must be an int >= 1. Received: sync_period={sync_period!r}")
        if not isinstance(slow_step_size, numbers.Real) or not 0.0 <= slow_step_size <= 1.0:
            raise ValueError("Argument `slow_step_size` must be a number in [0, 1]. "
                             f"Received: slow_step_size={slow_step_size!r}")
        inner = keras.optimizers.get(optimizer)
        if inner.gradient_accumulation_steps:
            raise ValueError("Lookahead does not support an inner optimizer with `gradient_accumulation_steps`.")

        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = inner
        self.sync_period = int(sync_period)
        self.slow_step_size = float(slow_step_size)

    def build(self, var_list):
        """Build the inner optimizer, then one slow copy per trainable variable."""
        if self.built:
            return
        super().build(var_list)
        self.inner_optimizer.build(var_list)
        self._slow_weights = self.add_optimizer_variables(var_list, "slow")

    def apply(self, grads, trainable_variables=None):
        if len(grads) == 0:
            return
        if not self.built:
            if trainable_variables is None:
                raise ValueError("Lookahead must be built, or given `trainable_variables`, before `apply()`.")
            with keras.name_scope(self.name, caller=self):
                self.build(list(trainable_variables))
            self.built = True
        variables = self._trainable_variables if trainable_variables is None else list(trainable_variables)
        self._check_variables_are_known(variables)
        pairs = [(v, self._slow_weights[self._get_variable_index(v)]) for v in variables]
        pairs = [(v, s) for v, s in pairs if s is not None]

        def start_slow():
            for var, slow in pairs:
                self.assign(slow, var)

        def sync():
            alpha = self.slow_step_size
            for var, slow in pairs:
                new = ops.add(slow, ops.multiply(ops.cast(alpha, slow.dtype), ops.subtract(var, slow)))
                self.assign(slow, new)
                self.assign(var, new)

        with keras.name_scope(self.name, caller=self):
            # The slow weights start as the weights seen at the first step (as in tfa).
            ops.cond(ops.equal(self._iterations, 0), start_slow, lambda: None)
        self.inner_optimizer.apply(grads, trainable_variables)
        with keras.name_scope(self.name, caller=self):
            step = self._iterations + 1
            ops.cond(ops.equal(ops.mod(step, self.sync_period), 0), sync, lambda: None)
            self._iterations.assign_add(1)

    def get_config(self):
        return {
            "name": self.name,
            "optimizer": keras.saving.serialize_keras_object(self.inner_optimizer),
            "sync_period": self.sync_period,
            "slow_step_size": self.slow_step_size,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        optimizer = keras.saving.deserialize_keras_object(config.pop("optimizer"), custom_objects=custom_objects)
        return cls(optimizer, **config)


@keras.saving.register_keras_serializable(package="leafnet")
class Ranger(Lookahead):
    """Lookahead over :class:`RAdam` (the "Ranger" recipe), from one flat set of arguments.

    Equivalent to ``Lookahead(RAdam(learning_rate, beta_1, ..., min_lr, **kwargs),
    sync_period, slow_step_size)``. ``**kwargs`` go to the inner RAdam (``amsgrad``,
    ``clipnorm``, ``use_ema``, ...). Its config is flat, so it saves and reloads as one object.
    """

    def __init__(
        self,
        learning_rate=1e-3,
        beta_1=0.95,
        beta_2=0.999,
        epsilon=1e-5,
        weight_decay=None,
        sma_threshold=5.0,
        total_steps=0,
        warmup_proportion=0.1,
        min_lr=0.0,
        sync_period=6,
        slow_step_size=0.5,
        name="Ranger",
        **kwargs,
    ):
        inner = RAdam(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            weight_decay=weight_decay,
            sma_threshold=sma_threshold,
            total_steps=total_steps,
            warmup_proportion=warmup_proportion,
            min_lr=min_lr,
            name=f"{name}_radam",
            **kwargs,
        )
        super().__init__(inner, sync_period=sync_period, slow_step_size=slow_step_size, name=name)

    def get_config(self):
        config = self.inner_optimizer.get_config()
        config.update({"name": self.name, "sync_period": self.sync_period, "slow_step_size": self.slow_step_size})
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = keras.saving.deserialize_keras_object(
                config["learning_rate"], custom_objects=custom_objects
            )
        return cls(**config)
