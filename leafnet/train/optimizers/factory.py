"""A phase's optimizer and its learning rate (a float or a schedule), by name from its config.

This is where the config's ``optimizer`` and ``schedule`` strings become Keras objects;
nothing else switches on them.
"""

from __future__ import annotations

import keras

from leafnet.config import PhaseConfig
from leafnet.train.optimizers.lookahead import Lookahead, Ranger
from leafnet.train.optimizers.radam import RAdam

__all__ = ["adam_args", "make_optimizer", "make_schedule", "schedule_steps"]


def schedule_steps(cfg: PhaseConfig, value: float, steps_per_epoch: int) -> int:
    """A length from the config (``step_size``, ``warmup``) in optimizer steps."""
    steps = value * steps_per_epoch if cfg.step_unit == "epochs" else value
    return max(1, int(round(steps)))


def make_schedule(cfg: PhaseConfig, steps_per_epoch: int) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The phase's learning rate: a float (``constant``) or a schedule over its steps.

    The optimizer's step counter starts at 0 with each phase (each phase compiles a new
    optimizer), so a schedule spans one phase: ``cfg.epochs * steps_per_epoch`` steps.

    Args:
        cfg: the phase.
        steps_per_epoch: batches per epoch, to turn epochs into steps.
    """
    from leafnet.train import schedules

    total = max(2, cfg.epochs * steps_per_epoch)
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule in ("triangular", "triangular2", "exp_range"):
        step_size = schedule_steps(cfg, cfg.step_size, steps_per_epoch)
        if cfg.schedule == "triangular":
            return schedules.TriangularCyclicalLearningRate(cfg.lr, cfg.max_lr, step_size)
        if cfg.schedule == "triangular2":
            return schedules.Triangular2CyclicalLearningRate(cfg.lr, cfg.max_lr, step_size)
        return schedules.ExponentialCyclicalLearningRate(cfg.lr, cfg.max_lr, step_size, gamma=cfg.gamma)
    if cfg.schedule == "cosine":
        warmup = schedule_steps(cfg, cfg.warmup, steps_per_epoch) if cfg.warmup > 0 else 0
        alpha = cfg.min_lr / cfg.lr if cfg.lr > 0 else 0.0
        if warmup:
            return schedules.WarmupCosineDecay(0.0, max(1, total - warmup), warmup_steps=warmup,
                                               warmup_target=cfg.lr, alpha=alpha)
        return schedules.WarmupCosineDecay(cfg.lr, total, alpha=alpha)
    if cfg.schedule == "onecycle":
        return schedules.OneCycle(cfg.lr, max(total, 8))
    raise ValueError(f"Unknown `schedule`. Received: schedule={cfg.schedule!r}")


def adam_args(cfg: PhaseConfig) -> dict:
    """The phase's Adam-family arguments that are set (``beta_1``, ``beta_2``, ``epsilon``)."""
    return {k: getattr(cfg, k) for k in ("beta_1", "beta_2", "epsilon") if getattr(cfg, k) is not None}


def make_optimizer(cfg: PhaseConfig, learning_rate=None, ema: bool = False) -> keras.optimizers.Optimizer:
    """A fresh optimizer for one phase.

    Args:
        cfg: the phase: ``optimizer``, ``lr``, ``weight_decay``, ``momentum``, ``nesterov``,
            betas, ``lookahead`` and its settings.
        learning_rate: a float or schedule (default: ``cfg.lr``).
        ema: keep Keras' exponential moving average of the weights (``cfg.ema_momentum``);
            ``fit`` moves the weights to their average when it ends.
    """
    lr = cfg.lr if learning_rate is None else learning_rate
    wd = cfg.weight_decay or None
    common = {"weight_decay": wd, **({"use_ema": True, "ema_momentum": cfg.ema_momentum} if ema else {})}
    name = cfg.optimizer
    if name == "adam":
        opt = keras.optimizers.Adam(lr, **common, **adam_args(cfg))
    elif name == "adamw":
        opt = keras.optimizers.AdamW(lr, **{**common, "weight_decay": cfg.weight_decay}, **adam_args(cfg))
    elif name == "nadam":
        opt = keras.optimizers.Nadam(lr, **common, **adam_args(cfg))
    elif name == "lion":
        opt = keras.optimizers.Lion(lr, **common, **{k: v for k, v in adam_args(cfg).items() if k != "epsilon"})
    elif name == "sgd":
        opt = keras.optimizers.SGD(lr, momentum=cfg.momentum, nesterov=cfg.nesterov, **common)
    elif name == "rmsprop":
        opt = keras.optimizers.RMSprop(lr, momentum=cfg.momentum, **common)
    elif name == "radam":
        opt = RAdam(lr, sma_threshold=cfg.sma_threshold, **common, **adam_args(cfg))
    elif name == "ranger":
        return Ranger(lr, sma_threshold=cfg.sma_threshold, sync_period=cfg.sync_period,
                      slow_step_size=cfg.slow_step_size, **common, **adam_args(cfg))
    else:
        raise ValueError(f"Unknown `optimizer`. Received: optimizer={name!r}")
    if cfg.lookahead:
        return Lookahead(opt, sync_period=cfg.sync_period, slow_step_size=cfg.slow_step_size)
    return opt
