"""Optimizers, learning-rate schedules and losses by name, from one phase's config.

``make_optimizer``, ``make_schedule`` and ``schedule_steps`` live in
:mod:`leafnet.train.optimizers.factory` and are re-exported here; ``make_loss`` is the
phase's loss by name.
"""

from __future__ import annotations

import keras

from leafnet.config import PhaseConfig
from leafnet.train.optimizers.factory import make_optimizer, make_schedule, schedule_steps

__all__ = ["make_loss", "make_optimizer", "make_schedule", "schedule_steps"]


def make_loss(cfg: PhaseConfig) -> keras.losses.Loss:
    """The phase's loss on one-hot (or mixed, soft) labels and softmax outputs."""
    if cfg.loss == "crossentropy":
        return keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)
    if cfg.loss == "focal":
        return keras.losses.CategoricalFocalCrossentropy(alpha=1.0 if cfg.focal_alpha is None else cfg.focal_alpha,
                                                         gamma=cfg.focal_gamma, label_smoothing=cfg.label_smoothing)
    if cfg.loss == "sigmoid_focal":
        from leafnet.train.losses import SigmoidFocalCrossEntropy

        return SigmoidFocalCrossEntropy(alpha=cfg.focal_alpha, gamma=cfg.focal_gamma,
                                        label_smoothing=cfg.label_smoothing)
    raise ValueError(f"Unknown `loss`. Received: loss={cfg.loss!r}")
