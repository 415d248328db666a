"""RAdam, Lookahead and Ranger as Keras 3 optimizers, with tensorflow-addons' argument names.

tensorflow-addons (``tfa.optimizers.RectifiedAdam``, ``tfa.optimizers.Lookahead``) does not
work with Keras 3. These classes give a tfa-era recipe the same updates:

- :class:`RAdam`: rectified Adam (Liu et al. 2019, https://arxiv.org/abs/1908.03265) with
  tfa's optional linear warmup/decay (``total_steps``, ``warmup_proportion``, ``min_lr``)
  and tfa's rule for the early steps (the rectified, adaptive step when
  ``sma_t >= sma_threshold``, otherwise the bias-corrected momentum step).
- :class:`Lookahead`: wraps any Keras optimizer (Zhang et al. 2019,
  https://arxiv.org/abs/1907.08610); every ``sync_period`` steps the slow weights move
  ``slow_step_size`` of the way to the fast weights and the fast weights restart from there.
- :class:`Ranger`: Lookahead over RAdam, built from one flat set of arguments.
- :class:`LayerwiseLR`: wraps any Keras optimizer and scales each variable's update by a
  factor chosen by variable path (discriminative learning rates, layer decay).

All four are registered with Keras' serializer (package ``leafnet``), so a model compiled
with them saves to ``.keras`` and reloads with ``keras.saving.load_model`` (safe mode) with
its full optimizer state, after ``import leafnet.train.optimizers``.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import warnings

import keras
from keras import ops

__all__ = ["RAdam", "Lookahead", "Ranger", "LayerwiseLR"]

_register = keras.saving.register_keras_serializable(package="leafnet")


@_register
class RAdam(keras.optimizers.Optimizer):
    """Rectified Adam (Liu et al. 2019), with tfa's warmup and SMA-threshold semantics.

    For step ``t`` (1-based), gradient ``g`` and learning rate ``lr``::

        m = beta_1 * m + (1 - beta_1) * g;         m_hat = m / (1 - beta_1**t)
        v = beta_2 * v + (1 - beta_2) * g**2;      v_hat = sqrt(v / (1 - beta_2**t))
        sma_inf = 2 / (1 - beta_2) - 1
        sma_t = sma_inf - 2 t beta_2**t / (1 - beta_2**t)
        r_t = sqrt((sma_t - 4)(sma_t - 2) sma_inf / ((sma_inf - 4)(sma_inf - 2) sma_t))
        var -= lr * (r_t * m_hat / (v_hat + epsilon)   if sma_t >= sma_threshold
                     else m_hat)

    With ``amsgrad=True`` ``v_hat`` uses the running maximum of ``v``.

    When ``total_steps > 0`` the learning rate follows tfa's schedule on top of
    ``learning_rate`` (which may itself be a schedule): with
    ``warmup = total_steps * warmup_proportion`` and ``decay = max(total_steps - warmup, 1)``,
    ``lr_t = lr * t / warmup`` while ``t <= warmup``, then
    ``lr + (min_lr - lr) * min(t - warmup, decay) / decay``.

    The per-step scalars (``beta**t``, ``sma_t``, ``r_t``) are computed in float64 and cast
    to the variable's dtype: in float32, ``sma_inf - 2 t beta_2**t / (1 - beta_2**t)``
    (1999 - 1993 at step 6 for beta_2=0.999) loses most of its digits.

    ``weight_decay`` is Keras' decoupled weight decay (``var -= var * weight_decay * lr``
    before the update, ``lr`` being ``learning_rate``'s current value); it matches tfa's
    (and torch's ``decoupled_weight_decay=True``) when ``total_steps == 0``. With
    ``total_steps > 0`` tfa scaled the decay by the warmed-up ``lr_t``; here it uses the
    un-warmed ``lr`` like every Keras optimizer.

    Args:
        learning_rate: float, ``LearningRateSchedule`` or callable.
        beta_1, beta_2: decay rates of the first and second moment estimates.
        epsilon: added to ``v_hat`` (tfa's placement; torch adds it to ``sqrt(v)``).
        weight_decay: float or None (see above).
        sma_threshold: the rectified update is used once ``sma_t >= sma_threshold``.
        total_steps: > 0 turns on tfa's warmup / linear decay.
        warmup_proportion: fraction of ``total_steps`` spent warming up.
        min_lr: learning rate reached at ``total_steps``.
        amsgrad: use the running maximum of the second moment.
        name: name scope of the optimizer's variables.
        **kwargs: Keras' common optimizer arguments (``clipnorm``, ``global_clipnorm``,
            ``clipvalue``, ``use_ema``, ``ema_momentum``, ``ema_overwrite_frequency``,
            ``loss_scale_factor``, ``gradient_accumulation_steps``).
    """

    def __init__(
        self,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        weight_decay=None,
        sma_threshold=5.0,
        total_steps=0,
        warmup_proportion=0.1,
        min_lr=0.0,
        amsgrad=False,
        name="RAdam",
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        if not 0.0 <= beta_1 < 1.0:
            raise ValueError(f"Argument `beta_1` must be in [0, 1). Received: beta_1={beta_1}")
        if not 0.0 < beta_2 < 1.0:
            raise ValueError(f"Argument `beta_2` must be in (0, 1). Received: beta_2={beta_2}")
        if total_steps < 0:
            raise ValueError(f"Argument `total_steps` must be >= 0. Received: total_steps={total_steps}")
        if total_steps and not 0.0 < warmup_proportion <= 1.0:
            raise ValueError("Argument `warmup_proportion` must be in (0, 1] when `total_steps` > 0. "
                             f"Received: warmup_proportion={warmup_proportion}")
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.sma_threshold = sma_threshold
        self.total_steps = total_steps
        self.warmup_proportion = warmup_proportion
        self.min_lr = min_lr
        self.amsgrad = amsgrad

    def build(self, var_list):
        """Create the first and second moment slots (and ``velocity_hat`` for AMSGrad)."""
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(var_list, ["momentum", "velocity"])
        if self.amsgrad:
            self._velocity_hats = self.add_optimizer_variables(var_list, "velocity_hat")

    def _warmup_lr(self, lr, step):
        """tfa's linear warmup to ``lr`` then linear decay to ``min_lr`` (``total_steps > 0``)."""
        dtype = lr.dtype
        total_steps = ops.convert_to_tensor(self.total_steps, dtype=dtype)
        warmup_steps = total_steps * ops.convert_to_tensor(self.warmup_proportion, dtype=dtype)
        min_lr = ops.convert_to_tensor(self.min_lr, dtype=dtype)
        decay_steps = ops.maximum(total_steps - warmup_steps, ops.convert_to_tensor(1.0, dtype=dtype))
        decay_rate = (min_lr - lr) / decay_steps
        return ops.where(
            step <= warmup_steps,
            lr * (step / warmup_steps),
            lr + decay_rate * ops.minimum(step - warmup_steps, decay_steps),
        )

    def _rectification(self):
        """Per-step scalars, in float64: ``sma_t`` suffers cancellation (``sma_inf - ...``
        with ``sma_inf`` ~ 2000 for ``beta_2=0.999``) and float32 ``beta_2**t`` moves it by
        ~0.03 in the first steps. Returns (1 - beta_1**t, 1 - beta_2**t, r_t, rectify?)."""
        f64 = "float64"
        step = ops.cast(self.iterations + 1, f64)
        beta_1 = ops.convert_to_tensor(self.beta_1, dtype=f64)
        beta_2 = ops.convert_to_tensor(self.beta_2, dtype=f64)
        one_minus_b1p = 1.0 - ops.power(beta_1, step)
        beta_2_power = ops.power(beta_2, step)
        one_minus_b2p = 1.0 - beta_2_power
        sma_inf = 2.0 / (1.0 - self.beta_2) - 1.0
        sma_t = sma_inf - 2.0 * step * beta_2_power / one_minus_b2p
        # Clamped at 0: for 2 < sma_t < 4 the product is negative, but then sma_t is below
        # any sensible threshold and r_t is not used.
        r_t = ops.sqrt(
            ops.maximum(
                (sma_t - 4.0) / (sma_inf - 4.0) * (sma_t - 2.0) / (sma_inf - 2.0) * sma_inf / sma_t,
                ops.convert_to_tensor(0.0, dtype=f64),
            )
        )
        rectify = ops.greater_equal(sma_t, ops.convert_to_tensor(self.sma_threshold, dtype=f64))
        return one_minus_b1p, one_minus_b2p, r_t, rectify, step

    def update_step(self, gradient, variable, learning_rate):
        """One RAdam step for one variable (weight decay was applied by the base class)."""
        dtype = variable.dtype
        gradient = ops.cast(gradient, dtype)
        one_minus_b1p, one_minus_b2p, r_t, rectify, step = self._rectification()
        if self.total_steps > 0:
            lr = ops.cast(self._warmup_lr(ops.cast(learning_rate, "float64"), step), dtype)
        else:
            lr = ops.cast(learning_rate, dtype)
        one_minus_b1p = ops.cast(one_minus_b1p, dtype)
        one_minus_b2p = ops.cast(one_minus_b2p, dtype)
        r_t = ops.cast(r_t, dtype)
        beta_1 = ops.convert_to_tensor(self.beta_1, dtype=dtype)
        beta_2 = ops.convert_to_tensor(self.beta_2, dtype=dtype)
        one = ops.convert_to_tensor(1.0, dtype=dtype)

        index = self._get_variable_index(variable)
        m = self._momentums[index]
        v = self._velocities[index]
        self.assign(m, ops.add(ops.multiply(beta_1, m), ops.multiply(one - beta_1, gradient)))
        self.assign(v, ops.add(ops.multiply(beta_2, v), ops.multiply(one - beta_2, ops.square(gradient))))
        if self.amsgrad:
            v_hat = self._velocity_hats[index]
            self.assign(v_hat, ops.maximum(v_hat, v))
            v = v_hat
        m_corr = ops.divide(m, one_minus_b1p)
        v_corr = ops.sqrt(ops.divide(v, one_minus_b2p))
        epsilon = ops.convert_to_tensor(self.epsilon, dtype=dtype)
        rectified = ops.divide(ops.multiply(r_t, m_corr), ops.add(v_corr, epsilon))
        update = ops.where(rectify, rectified, m_corr)
        self.assign_sub(variable, ops.multiply(lr, update))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
                "sma_threshold": self.sma_threshold,
                "total_steps": self.total_steps,
                "warmup_proportion": self.warmup_proportion,
                "min_lr": self.min_lr,
                "amsgrad": self.amsgrad,
            }
        )
        return config


# Keras' common optimizer arguments at their defaults: accepted by Lookahead (older configs
# and tfa recipes pass them) but refused with any other value, which belongs on the inner one.
_BASE_DEFAULTS = {
    "weight_decay": None,
    "clipnorm": None,
    "global_clipnorm": None,
    "clipvalue": None,
    "use_ema": False,
    "ema_momentum": 0.99,
    "ema_overwrite_frequency": None,
    "loss_scale_factor": None,
    "gradient_accumulation_steps": None,
}


class _ForwardsToInner:
    """What a wrapper optimizer (Lookahead, LayerwiseLR) shares with ``inner_optimizer``:
    its variables (own first, then the inner ones, so ``.keras`` files restore both), the learning rate (get and set, so plateau schedules and lr logging see the real
    value), loss scaling, EMA and weight-decay exclusions. Mixed in before
    ``keras.optimizers.Optimizer`` so these take precedence over the base class's."""

    @property
    def variables(self):
        return self._variables + self.inner_optimizer.variables

    def set_weights(self, weights):
        """Set the wrapper's and the inner optimizer's variables (in ``variables`` order)."""
        if not self.built:
            raise ValueError("Call `optimizer.build(trainable_variables)` before `set_weights()`.")
        variables = self.variables
        if len(weights) != len(variables):
            raise ValueError(f"Expected {len(variables)} arrays, received {len(weights)}.")
        for variable, weight in zip(variables, weights):
            variable.assign(weight)

    def stateless_apply(self, optimizer_variables, grads, trainable_variables):
        raise NotImplementedError(f"{type(self).__name__} supports stateful `apply()` (the TensorFlow backend) only.")

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner_optimizer.learning_rate = learning_rate

    @property
    def loss_scale_factor(self):
        inner = self.__dict__.get("inner_optimizer")
        return None if inner is None else inner.loss_scale_factor

    @loss_scale_factor.setter
    def loss_scale_factor(self, value):
        # Set by the base constructor (before the inner optimizer exists: ignored) and by
        # LossScaleOptimizer (None: the inner optimizer must not unscale a second time).
        inner = self.__dict__.get("inner_optimizer")
        if inner is not None:
            inner.loss_scale_factor = value

    def scale_loss(self, loss):
        return self.inner_optimizer.scale_loss(loss)

    @property
    def _model_variables_moving_average(self):
        # The inner optimizer's EMA (use_ema=True), for keras.callbacks.SwapEMAWeights when a
        # LossScaleOptimizer wraps this one (it looks one `inner_optimizer` deep).
        inner = self.__dict__.get("inner_optimizer")
        if inner is None or not hasattr(inner, "_model_variables_moving_average"):
            raise AttributeError("_model_variables_moving_average")
        return inner._model_variables_moving_average

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        self.inner_optimizer.exclude_from_weight_decay(var_list=var_list, var_names=var_names)


@_register
class Lookahead(_ForwardsToInner, keras.optimizers.Optimizer):
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
        for arg, default in _BASE_DEFAULTS.items():
            if arg in kwargs:
                value = kwargs.pop(arg)
                if value != default:
                    raise ValueError(f"Lookahead does not take `{arg}`; set `{arg}` on the inner optimizer. "
                                     f"Received: {arg}={value!r}")
        if kwargs:
            raise ValueError(f"Lookahead does not take argument(s) {sorted(kwargs)}.")
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


@_register
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


_MISSING = object()


@_register
class LayerwiseLR(_ForwardsToInner, keras.optimizers.Optimizer):
    """Discriminative (per-variable) learning rates around any Keras optimizer.

    fastai's ``slice(lo, hi)`` and timm's layer decay for Keras 3: every step, the update
    the inner optimizer makes to a variable (weight decay included) is multiplied by that
    variable's factor, ``var = old + factor * (new - old)``. For the usual optimizers, whose
    step is linear in the learning rate (SGD, Adam, AdamW, :class:`RAdam`, ...), this is
    the variable trained with ``learning_rate * factor``; a factor of 0 freezes a variable
    (exactly: it is reset to its value before the step), and variables with factor 1 are
    neither copied nor touched.

    Where the scaling happens: right after the update step of the optimizer that computes
    the updates, i.e. through any :class:`Lookahead` (:class:`Ranger`),
    ``LossScaleOptimizer`` or ``LayerwiseLR`` between this wrapper and it. So
    ``LayerwiseLR(Lookahead(SGD(lr)), {p: f})`` is ``Lookahead`` over SGD with learning
    rate ``lr * f`` for ``p`` (the slow weights follow the scaled fast weights), and an
    inner optimizer's EMA (``use_ema``) and the variables' constraints see the scaled
    values. (An inner optimizer that does not update through Keras'
    ``_backend_update_step`` gets its whole step scaled after its ``apply``.)

    Built like :class:`Lookahead` and ``keras.optimizers.LossScaleOptimizer``:
    ``variables`` are the wrapper's own (step counter, an unused learning-rate slot)
    followed by the inner optimizer's, so saving to ``.keras`` and reloading restores the
    whole state; ``learning_rate`` is the inner optimizer's (get and set), and loss scaling,
    ``finalize_variable_values`` (EMA) and ``exclude_from_weight_decay`` are forwarded.
    ``iterations`` counts the wrapper's steps. A ``LossScaleOptimizer`` may wrap it
    (``mixed_float16``).

    Args:
        optimizer: the inner optimizer: an instance, a name (``"adam"``) or a config dict.
        multipliers: dict mapping a variable's ``path`` (``keras.Variable.path``, e.g.
            ``"block7a_expand_conv/kernel"``) to a factor (a finite float >= 0). Variables
            not in it have factor 1. A warning is given when none of the paths is among
            the variables the optimizer is built with.
        name: name scope of the wrapper's variables.
        **kwargs: Keras' common optimizer arguments are accepted only at their defaults:
            set clipping, weight decay, EMA, ... on the inner optimizer.
    """

    def __init__(self, optimizer, multipliers, name="LayerwiseLR", **kwargs):
        for arg, default in _BASE_DEFAULTS.items():
            if arg in kwargs:
                value = kwargs.pop(arg)
                if value != default:
                    raise ValueError(f"LayerwiseLR does not take `{arg}`; set `{arg}` on the inner optimizer. "
                                     f"Received: {arg}={value!r}")
        if kwargs:
            raise ValueError(f"LayerwiseLR does not take argument(s) {sorted(kwargs)}.")
        multipliers = self._validate_multipliers(multipliers)
        inner = keras.optimizers.get(optimizer)
        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = inner
        self._multipliers = multipliers

    @staticmethod
    def _validate_multipliers(multipliers):
        expected = ("Argument `multipliers` must be a dict mapping variable paths (str) to finite "
                    "numbers >= 0.")
        if not isinstance(multipliers, dict):
            raise ValueError(f"{expected} Received: multipliers={multipliers!r}")
        checked = {}
        for path, factor in multipliers.items():
            if not isinstance(path, str) or not path:
                raise ValueError(f"{expected} Received a key {path!r} (type {type(path).__name__}).")
            if (isinstance(factor, bool) or not isinstance(factor, numbers.Real)
                    or not math.isfinite(factor) or factor < 0):
                raise ValueError(f"{expected} Received: multipliers[{path!r}]={factor!r}")
            checked[path] = float(factor)
        return checked

    @property
    def multipliers(self):
        """The factors by variable path (a copy)."""
        return dict(self._multipliers)

    def factor(self, variable):
        """The factor of ``variable`` (1.0 when its path is not in ``multipliers``)."""
        return self._multipliers.get(_variable_path(variable), 1.0)

    def build(self, var_list):
        """Build the inner optimizer (the wrapper keeps no per-variable state)."""
        if self.built:
            return
        super().build(var_list)
        self.inner_optimizer.build(var_list)
        if self._multipliers and not any(_variable_path(v) in self._multipliers for v in var_list):
            paths = sorted(self._multipliers)
            warnings.warn(
                f"LayerwiseLR: none of the {len(paths)} path(s) in `multipliers` (e.g. {paths[0]!r}) is "
                f"among the {len(var_list)} variables being optimized (e.g. "
                f"{_variable_path(var_list[0]) if var_list else None!r}); every factor is 1. "
                "Paths are `keras.Variable.path` values.",
                stacklevel=2,
            )

    def _update_target(self):
        """The optimizer that computes the updates: below Lookahead / LossScaleOptimizer /
        LayerwiseLR wrappers, whose own changes to the weights are not learning-rate steps."""
        target = self.inner_optimizer
        while isinstance(target, (Lookahead, LayerwiseLR, keras.optimizers.LossScaleOptimizer)):
            target = target.inner_optimizer
        return target

    def apply(self, grads, trainable_variables=None):
        if len(grads) == 0:
            return
        if not self.built:
            if trainable_variables is None:
                raise ValueError("LayerwiseLR must be built, or given `trainable_variables`, before `apply()`.")
            with keras.name_scope(self.name, caller=self):
                self.build(list(trainable_variables))
            self.built = True
        variables = self._trainable_variables if trainable_variables is None else list(trainable_variables)
        self._check_variables_are_known(variables)

        # Values before the step, only for the variables that get a step and a factor != 1
        # (a read of each: in graph mode, ordered before the inner optimizer's writes).
        before = {}
        with keras.name_scope(self.name, caller=self):
            for grad, var in zip(grads, variables):
                factor = self.factor(var)
                if grad is None or factor == 1.0 or getattr(var, "overwrite_with_gradient", False):
                    continue
                before[self._var_key(var)] = (var, factor, ops.copy(var))

        if not before:
            self.inner_optimizer.apply(grads, trainable_variables)
        else:
            scaled = []

            def scale(updated_variables):
                with keras.name_scope(self.name, caller=self):
                    for var in updated_variables:
                        entry = before.get(self._var_key(var))
                        if entry is None:
                            continue
                        var, factor, old = entry
                        if factor == 0.0:
                            self.assign(var, old)
                        else:
                            factor = ops.convert_to_tensor(factor, dtype=var.dtype)
                            self.assign(var, ops.add(old, ops.multiply(factor, ops.subtract(var, old))))
                scaled.append(True)

            with _after_update_step(self._update_target(), scale):
                self.inner_optimizer.apply(grads, trainable_variables)
            if not scaled:
                # The update step was not traced (an optimizer with its own `apply`, or eager
                # mode on a step that a LossScaleOptimizer skipped): scale the whole change.
                scale([var for var, _, _ in before.values()])
        with keras.name_scope(self.name, caller=self):
            self._iterations.assign_add(1)

    def get_config(self):
        return {
            "name": self.name,
            "optimizer": keras.saving.serialize_keras_object(self.inner_optimizer),
            "multipliers": dict(self._multipliers),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        optimizer = keras.saving.deserialize_keras_object(config.pop("optimizer"), custom_objects=custom_objects)
        return cls(optimizer, **config)


def _variable_path(variable):
    return getattr(variable, "path", None) or getattr(variable, "name", None)


@contextlib.contextmanager
def _after_update_step(optimizer, callback):
    """While active, ``optimizer._backend_update_step(grads, variables, lr)`` (Keras'
    per-step update, after gradient clipping and weight decay, before the EMA update and
    the constraints) calls ``callback(variables)`` after it. Python-level, so it takes
    effect in what is traced; nested uses compose."""
    previous = optimizer.__dict__.get("_backend_update_step", _MISSING)
    update_step = optimizer._backend_update_step

    def update_step_then_callback(grads, trainable_variables, learning_rate):
        result = update_step(grads, trainable_variables, learning_rate)
        callback(list(trainable_variables))
        return result

    optimizer.__dict__["_backend_update_step"] = update_step_then_callback
    try:
        yield
    finally:
        if previous is _MISSING:
            del optimizer.__dict__["_backend_update_step"]
        else:
            optimizer.__dict__["_backend_update_step"] = previous
