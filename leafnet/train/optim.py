"""Optimizers and losses by name, from a phase's config."""

from __future__ import annotations

import keras

from leafnet.config import PhaseConfig


def make_optimizer(cfg: PhaseConfig) -> keras.optimizers.Optimizer:
    """A fresh optimizer for one phase.

    Args:
        cfg: the phase; uses ``optimizer``, ``lr``, ``weight_decay`` and ``momentum``.
    """
    wd = cfg.weight_decay or None
    if cfg.optimizer == "adam":
        return keras.optimizers.Adam(cfg.lr)
    if cfg.optimizer == "adamw":
        return keras.optimizers.AdamW(cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "nadam":
        return keras.optimizers.Nadam(cfg.lr)
    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(cfg.lr, momentum=cfg.momentum, weight_decay=wd)
    if cfg.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(cfg.lr, momentum=cfg.momentum)
    raise ValueError(f"Unknown `optimizer`. Received: optimizer={cfg.optimizer!r}")


def make_loss(cfg: PhaseConfig) -> keras.losses.Loss:
    """The phase's loss on one-hot labels and softmax outputs."""
    if cfg.loss == "crossentropy":
        return keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)
    raise ValueError(f"Unknown `loss`. Received: loss={cfg.loss!r}")
