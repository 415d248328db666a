"""What a wrapper optimizer (Lookahead, LayerwiseLR) shares: forwarding to its inner optimizer,
and the check of the Keras base arguments it accepts only at their defaults."""

from __future__ import annotations

__all__ = ["ForwardsToInner", "refuse_base_kwargs"]

# Keras' common optimizer arguments at their defaults: accepted by a wrapper (older configs
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


def refuse_base_kwargs(owner: str, kwargs: dict) -> None:
    """Refuse any argument in ``kwargs`` but Keras' common ones at their defaults.

    Args:
        owner: the wrapper's class name, for the message.
        kwargs: the wrapper's ``**kwargs``; emptied of the accepted defaults.
    """
    for arg, default in _BASE_DEFAULTS.items():
        if arg in kwargs:
            value = kwargs.pop(arg)
            if value != default:
                raise ValueError(f"{owner} does not take `{arg}`; set `{arg}` on the inner optimizer. "
                                 f"Received: {arg}={value!r}")
    if kwargs:
        raise ValueError(f"{owner} does not take argument(s) {sorted(kwargs)}.")


class ForwardsToInner:
    """What a wrapper optimizer (Lookahead, LayerwiseLR) shares with ``inner_optimizer``:
    its variables (own first, then the inner ones, so ``.keras`` files restore both), the
    learning rate (get and set, so plateau schedules and lr logging see the real value), loss
    scaling, EMA and weight-decay exclusions. Mixed in before
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
