"""LayerwiseLR: discriminative (per-variable) learning rates around any Keras optimizer.

Scales each variable's update by a factor chosen by variable path (fastai's ``slice(lo, hi)``,
timm's layer decay). Registered as ``leafnet>LayerwiseLR``.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import warnings

import keras
from keras import ops

from leafnet.train.optimizers.lookahead import Lookahead
from leafnet.train.optimizers.wrapper import ForwardsToInner, refuse_base_kwargs

__all__ = ["LayerwiseLR"]


_MISSING = object()


@keras.saving.register_keras_serializable(package="leafnet")
class LayerwiseLR(ForwardsToInner, keras.optimizers.Optimizer):
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
        refuse_base_kwargs("LayerwiseLR", kwargs)
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
