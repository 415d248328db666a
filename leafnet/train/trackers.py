"""What the trainer decides after each validated epoch, as small objects that save their
state: the best value of the monitored metric, early stopping and the learning rate lowered
on a plateau (fastai's ``TrackerCallback`` family).

``get_state()`` returns the fields of ``backup/state.json`` the object owns (their names
are that file's), ``set_state()`` takes them back from it, so a resumed phase decides as
an uninterrupted one.
"""

from __future__ import annotations

from typing import Any, Mapping

from leafnet.history import improved

_DEFAULTS = {"value": None, "epoch": 0, "weights": None}


class Best:
    """The best value of ``monitor`` so far, the epoch that reached it and the backup that
    holds its weights.

    Args:
        monitor: the metric (lower is better for a loss, higher otherwise; a tie is no
            improvement, so the earliest of equal epochs stays the best).
        prefix: the prefix of its fields in state.json (``"phase_"``: ``phase_best``, ...).
        stored: which of ``value``, ``epoch``, ``weights``, ``monitor`` state.json keeps. When it
            keeps ``monitor``, a stored best of another metric is forgotten by :meth:`set_state`.
    """

    def __init__(self, monitor: str, prefix: str = "", stored: tuple[str, ...] = ("value", "epoch", "weights")):
        self.monitor, self.prefix, self.stored = monitor, prefix, tuple(stored)
        self.value: float | None = None
        self.epoch = 0
        self.weights: str | None = None

    def update(self, value: float | None, epoch: int, weights: str | None = None) -> bool:
        """Take ``value`` of ``epoch`` (its weights in backup ``weights``) if it beats the best;
        returns whether it did (never for None: no validation)."""
        if value is None or not improved(self.monitor, value, self.value):
            return False
        self.value, self.epoch, self.weights = value, epoch, weights
        return True

    def reset(self) -> None:
        """Forget the best (a new phase)."""
        self.value, self.epoch, self.weights = None, 0, None

    def _name(self, what: str) -> str:
        return f"{self.prefix}best" if what == "value" else f"{self.prefix}best_{what}"

    def get_state(self) -> dict[str, Any]:
        return {self._name(k): getattr(self, k) for k in self.stored}

    def set_state(self, state: Mapping[str, Any]) -> None:
        for k in self.stored:
            if k != "monitor":
                setattr(self, k, state.get(self._name(k), _DEFAULTS[k]))
        if "monitor" in self.stored and state.get(self._name("monitor")) != self.monitor:
            self.value = None


class EarlyStopping:
    """Stop after ``patience`` epochs in a row without improvement (0: never stop).

    The count runs whatever the patience, so state.json shows it.
    """

    def __init__(self, patience: int):
        self.patience = int(patience or 0)
        self.wait = 0

    def update(self, improved: bool) -> bool:
        """Count one epoch; returns whether to stop."""
        self.wait = 0 if improved else self.wait + 1
        return bool(self.patience) and self.wait >= self.patience

    def get_state(self) -> dict[str, Any]:
        return {"wait": self.wait}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.wait = int(state.get("wait", 0))


class ReduceLROnPlateau:
    """Multiply the learning rate by ``factor`` (not below ``min_lr``) after ``patience``
    epochs in a row without improvement (0: never), then count again from 0."""

    def __init__(self, patience: int, factor: float, min_lr: float):
        self.patience, self.factor, self.min_lr = int(patience or 0), factor, min_lr
        self.wait = 0
        self.waited = 0      # the count that fired the last reduction

    def update(self, improved: bool, lr: float) -> float | None:
        """Count one epoch run at ``lr``; returns the lower learning rate to use, or None."""
        self.wait = 0 if improved else self.wait + 1
        if not self.patience or self.wait < self.patience:
            return None
        self.waited, self.wait = self.wait, 0
        new_lr = max(lr * self.factor, self.min_lr)
        return new_lr if new_lr < lr else None

    def get_state(self) -> dict[str, Any]:
        return {"plateau_wait": self.wait}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.wait = int(state.get("plateau_wait", 0))
