"""Alias kept for one version: optimizers and schedules by name live in
:mod:`leafnet.train.optimizers.factory`, the loss by name in :mod:`leafnet.train.losses`."""

from __future__ import annotations

from leafnet.train.losses import make_loss
from leafnet.train.optimizers.factory import make_optimizer, make_schedule, schedule_steps

__all__ = ["make_loss", "make_optimizer", "make_schedule", "schedule_steps"]
