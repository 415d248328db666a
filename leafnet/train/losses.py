"""tensorflow-addons' sigmoid focal loss as a Keras 3 loss."""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["SigmoidFocalCrossEntropy"]


@keras.saving.register_keras_serializable(package="leafnet")
class SigmoidFocalCrossEntropy(keras.losses.Loss):
    """Focal loss on independent sigmoid outputs (Lin et al. 2017), as tfa computed it.

    Per sample, over the classes ``c`` (last axis), with ``p`` the predicted probability
    (``sigmoid(y_pred)`` when ``from_logits``) and ``y`` the 0/1 target::

        p_t     = y p + (1 - y)(1 - p)
        alpha_t = y alpha + (1 - y)(1 - alpha)          (1 when alpha is None or 0)
        loss    = sum_c alpha_t (1 - p_t)**gamma BCE(y, p)

    then ``reduction`` over the batch. The class axis is summed, not averaged (tfa's
    choice; Keras' ``BinaryFocalCrossentropy`` averages it). With ``gamma=0`` and no
    ``alpha`` it is binary cross-entropy summed over classes. tfa's default reduction was
    ``NONE``; here it is Keras' default ``"sum_over_batch_size"``.

    ``label_smoothing`` (not in tfa; 0 gives tfa's loss) smooths the targets first, as
    Keras' binary losses do: ``y = y (1 - label_smoothing) + label_smoothing / 2``.

    Args:
        from_logits: whether ``y_pred`` are logits.
        alpha: balancing weight of the positive targets, or None.
        gamma: focusing exponent, >= 0.
        label_smoothing: in [0, 1].
        reduction: Keras reduction over the batch.
        name: loss name.
        dtype: computation dtype (Keras' ``Loss`` argument).
    """

    def __init__(
        self,
        from_logits=False,
        alpha=0.25,
        gamma=2.0,
        reduction="sum_over_batch_size",
        name="sigmoid_focal_crossentropy",
        label_smoothing=0.0,
        dtype=None,
    ):
        if gamma is not None and gamma < 0:
            raise ValueError(f"Argument `gamma` must be >= 0. Received: gamma={gamma}")
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"Argument `label_smoothing` must be in [0, 1]. Received: {label_smoothing}")
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = from_logits
        self.alpha = alpha
        self.gamma = gamma
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.cast(y_true, y_pred.dtype)
        if self.label_smoothing:
            y_true = y_true * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        ce = ops.binary_crossentropy(y_true, y_pred, from_logits=self.from_logits)
        prob = ops.sigmoid(y_pred) if self.from_logits else y_pred
        p_t = y_true * prob + (1.0 - y_true) * (1.0 - prob)
        loss = ce
        if self.alpha:
            alpha = ops.cast(self.alpha, y_pred.dtype)
            loss = (y_true * alpha + (1.0 - y_true) * (1.0 - alpha)) * loss
        if self.gamma:
            loss = ops.power(1.0 - p_t, ops.cast(self.gamma, y_pred.dtype)) * loss
        return ops.sum(loss, axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update({"from_logits": self.from_logits, "alpha": self.alpha, "gamma": self.gamma,
                       "label_smoothing": self.label_smoothing})
        return config


def make_loss(cfg) -> keras.losses.Loss:
    """The phase's loss (a :class:`~leafnet.config.PhaseConfig`) on one-hot (or mixed, soft)
    labels and softmax outputs."""
    if cfg.loss == "crossentropy":
        return keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)
    if cfg.loss == "focal":
        return keras.losses.CategoricalFocalCrossentropy(alpha=1.0 if cfg.focal_alpha is None else cfg.focal_alpha,
                                                         gamma=cfg.focal_gamma, label_smoothing=cfg.label_smoothing)
    if cfg.loss == "sigmoid_focal":
        return SigmoidFocalCrossEntropy(alpha=cfg.focal_alpha, gamma=cfg.focal_gamma,
                                        label_smoothing=cfg.label_smoothing)
    raise ValueError(f"Unknown `loss`. Received: loss={cfg.loss!r}")
