"""Guided backpropagation (Springenberg et al. 2015): a clone of the model whose ReLUs let only
positive gradients through, and only where their input was positive.

The ReLU gradient ``dy * (x > 0)`` becomes ``dy * (dy > 0) * (x > 0)``, set with
``tf.custom_gradient``. The same rule is applied to ReLU-like activations that are not piecewise
linear (swish / SiLU in EfficientNet, GELU, Mish, ELU, ReLU6): their local derivative ``f'(x)`` is
kept and multiplied by ``(dy > 0) * (x > 0)``, which is exactly the guided ReLU for ``f = relu``.
Saturating activations (sigmoid, tanh, softmax) keep their ordinary gradients.

tf-keras-vis has a ``GuidedBackpropagation`` model modifier, but on Keras 3 it only reaches
layers with an ``activation`` attribute equal to ``relu``: it misses ``keras.layers.ReLU`` layers
(simple-cnn, AlexNet, MobileNet) and swish; hence this module.
"""

from __future__ import annotations

from typing import Callable

GUIDED = ("relu", "relu6", "swish", "silu", "gelu", "mish", "elu", "selu", "leaky_relu")


def guided(fn: Callable) -> Callable:
    """``fn`` in the forward pass, the guided rule in the backward pass."""
    import tensorflow as tf

    @tf.custom_gradient
    def guided_activation(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)

        def grad(dy):
            local = tape.gradient(y, x)  # f'(x): fn is elementwise, so d sum(f(x)) / dx
            return local * tf.cast(dy > 0, dy.dtype) * tf.cast(x > 0, dy.dtype) * dy

        return y, grad

    return guided_activation


def _relu_layer_fn(layer) -> Callable:
    import keras

    cfg = layer.get_config()
    return lambda x: keras.activations.relu(x, negative_slope=cfg.get("negative_slope", 0.0),
                                            max_value=cfg.get("max_value"), threshold=cfg.get("threshold", 0.0))


def _activation_name(fn) -> str | None:
    import keras

    try:
        name = keras.activations.serialize(fn)
    except (ValueError, TypeError):
        return None
    if isinstance(name, dict):
        name = name.get("config", {}).get("name") or name.get("class_name")
    return name if isinstance(name, str) else None


def guided_model(model):
    """A clone of ``model`` (weights copied) with guided ReLU-like activations.

    ``keras.layers.ReLU`` layers become ``Activation`` layers of the same name running the
    guided function; layers whose ``activation`` is ReLU-like (``Activation``, ``Conv2D``,
    ``Dense`` with ``activation="relu"`` or ``"swish"``) get the guided version of it.

    Returns:
        ``(clone, replaced)``: the new model and the names of the layers changed.
    """
    import keras

    from leafnet.explain.clone import clone_model

    replaced: list[str] = []

    def clone(layer):
        if isinstance(layer, keras.layers.ReLU):
            replaced.append(layer.name)
            return keras.layers.Activation(guided(_relu_layer_fn(layer)), name=layer.name)
        new = layer.__class__.from_config(layer.get_config())
        return new

    out = clone_model(model, clone_function=clone)
    for layer in out.layers:
        fn = getattr(layer, "activation", None)
        if fn is None or layer.name in replaced:
            continue
        if _activation_name(fn) in GUIDED:
            layer.activation = guided(fn)
            replaced.append(layer.name)
    return out, replaced
