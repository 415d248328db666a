"""RAdam: rectified Adam as a Keras 3 optimizer, with tensorflow-addons' argument names.

Liu et al. 2019 (https://arxiv.org/abs/1908.03265), with tfa's optional linear warmup/decay
(``total_steps``, ``warmup_proportion``, ``min_lr``) and tfa's rule for the early steps (the
rectified, adaptive step when ``sma_t >= sma_threshold``, otherwise the bias-corrected
momentum step). Registered as ``leafnet>RAdam``.
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["RAdam"]


@keras.saving.register_keras_serializable(package="leafnet")
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

