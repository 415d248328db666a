"""Swish's gradient in one fused loop, with Keras' numbers and Keras' files.

TensorFlow differentiates swish (``x * sigmoid(x)``, the activation of every EfficientNet)
with six element-wise ops, each a full pass over the activation in memory; on a CPU those
passes are bound by memory bandwidth (docs/performance.md). :func:`use_fused_swish` gives
a model's swish activations a gradient that XLA compiles into one loop: a small
``jit_compile`` function for each activation shape, inside a train step that stays
un-compiled (XLA on the whole model is much slower on CPUs, its convolutions not being
oneDNN's). The forward pass stays ``x * sigmoid(x)``, which TensorFlow's remapper fuses.

Only the layers' ``activation`` attribute changes, to :func:`silu`, which Keras serialises
under its own name "silu" (the name Keras gives "swish" too): configs, ``.keras`` files and
exports are plain Keras. Applied where TensorFlow sees no GPU (GPU kernels differ, and XLA
on a GPU needs CUDA's libdevice) and where XLA compiles at all.
"""

from __future__ import annotations

import functools


@functools.cache
def _swish():
    import tensorflow as tf

    @tf.function(jit_compile=True, reduce_retracing=True)
    def grad(x, dy):
        s = tf.sigmoid(x)
        return dy * (s * (1.0 + x * (1.0 - s)))        # d/dx x*sigmoid(x), as TensorFlow's own

    @tf.custom_gradient
    def swish(x):
        return x * tf.sigmoid(x), lambda dy: grad(x, dy)

    return swish


def silu(x):
    """``x * sigmoid(x)`` with the fused gradient; serialised by Keras as ``"silu"``."""
    import tensorflow as tf

    return _swish()(tf.convert_to_tensor(x))


@functools.cache
def available() -> bool:
    """True where the fused gradient is used: TensorFlow sees no GPU and XLA compiles here."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return False
    try:
        x = tf.constant([-1.0, 0.5])
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = silu(x)
        tape.gradient(y, x).numpy()
    except Exception:      # noqa: BLE001 - no XLA JIT in this TensorFlow build: keep TensorFlow's own gradient
        return False
    return True


def use_fused_swish(model) -> int:
    """Give ``model``'s swish activations (nested models included) the fused gradient;
    returns how many. A no-op (0) where :func:`available` is false."""
    import keras

    if not available():
        return 0
    n = 0
    for layer in model._flatten_layers():
        if getattr(layer, "activation", None) is keras.activations.silu:
            layer.activation = silu
            n += 1
    return n
