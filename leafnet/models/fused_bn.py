"""BatchNormalization through TensorFlow's fused kernel, with Keras' numbers.

Keras 3's ``BatchNormalization`` computes its moments and normalises with separate ops;
TensorFlow's fused kernel (``FusedBatchNormV3``) is one op forward and one backward, which
matters for EfficientNet, with a BatchNormalization after every convolution
(docs/performance.md).

:func:`use_fused_batchnorm` routes the eligible layers of a model (4-D inputs normalised
over the channels-last axis, scale and offset on, no renorm, not synchronised) through
the fused kernel. Only the layer instances' ``call`` changes: the class, the config and
the weights stay Keras' own, so saved ``.keras`` files load anywhere as plain
BatchNormalization and compute the same. The numbers are Keras': the moving variance
gets the biased batch variance (the fused kernel returns the unbiased one, which is
undone), inputs in float16/bfloat16 are normalised in float32 as Keras does, and
anything not eligible falls back to Keras' own ``call``.

With non-finite inputs the two can differ: Keras' layer gives a NaN loss at once, while
the fused kernel may keep the loss finite and only turn the moving statistics NaN. The
trainer catches both (the NaN loss at its batch, non-finite weights at the epoch's end).
"""

from __future__ import annotations

import types


def _fused_call(self, inputs, training=None, mask=None):
    import keras
    import tensorflow as tf

    rank = len(inputs.shape)
    axis = self.axis[0] if isinstance(self.axis, (list, tuple)) else self.axis
    if (mask is not None or rank != 4 or axis not in (-1, 3) or self.renorm or self.synchronized
            or not (self.scale and self.center)):
        return keras.layers.BatchNormalization.call(self, inputs, training=training, mask=mask)
    x = tf.cast(inputs, tf.float32)
    if training and self.trainable:
        y, mean, variance, *_ = tf.compat.v1.nn.fused_batch_norm(
            x, self.gamma, self.beta, epsilon=self.epsilon, data_format="NHWC", is_training=True)
        n = tf.cast(tf.reduce_prod(tf.shape(x)[:3]), tf.float32)
        variance = variance * tf.maximum(n - 1.0, 0.0) / n      # unbiased -> biased, as Keras keeps it
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
    else:
        y = tf.compat.v1.nn.fused_batch_norm(x, self.gamma, self.beta, mean=self.moving_mean,
                                             variance=self.moving_variance, epsilon=self.epsilon,
                                             data_format="NHWC", is_training=False)[0]
    return tf.cast(y, self.compute_dtype)


def use_fused_batchnorm(model) -> int:
    """Route ``model``'s BatchNormalization layers (nested models included) through the
    fused kernel; returns how many. A no-op on backends other than TensorFlow."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return 0
    n = 0
    for layer in model._flatten_layers():
        if type(layer) is keras.layers.BatchNormalization:
            layer.call = types.MethodType(_fused_call, layer)
            n += 1
    return n
