"""What a run's ``history.csv`` says beyond its rows: the epoch whose weights each phase kept.

The trainer ends every phase on the weights of the phase's best epoch by its monitored metric
(early stopping's ``restore_best_weights``); :func:`improved` is the comparison it uses, so the
curves mark the same epoch the trainer restored.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence


def improved(monitor: str, value: float, best: float | None) -> bool:
    """Whether ``value`` beats ``best`` for ``monitor`` (lower for a loss, higher otherwise);
    a tie is no improvement, so the earliest of equal epochs is the best."""
    if best is None:
        return True
    return value < best if monitor.endswith("loss") else value > best


def restored_epochs(history: Sequence[Mapping], monitors: Mapping[str, str],
                    last_phase_done: bool = True) -> dict[str, int]:
    """The epoch (run-wide number) whose weights each phase ended on.

    Args:
        history: rows of ``history.csv`` (or the trainer's), with ``phase``, ``epoch`` and the
            monitored columns; values may be strings.
        monitors: the monitored metric of each phase (``config.yaml``'s ``<phase>.monitor``);
            a phase without one is left out.
        last_phase_done: False while the last phase in ``history`` is still running (nothing
            restored yet); it is then left out.

    Example:
        >>> restored_epochs([{"phase": "transfer", "epoch": 1, "val_loss": 0.9},
        ...                  {"phase": "transfer", "epoch": 2, "val_loss": 1.1}], {"transfer": "val_loss"})
        {'transfer': 1}
    """
    best: dict[str, tuple[float, int]] = {}
    phases: list[str] = []
    for row in history:
        phase = row.get("phase", "")
        if phase not in phases:
            phases.append(phase)
        monitor = monitors.get(phase)
        try:
            value = float(row[monitor]) if monitor else math.nan
        except (KeyError, TypeError, ValueError):
            continue
        if math.isfinite(value) and improved(monitor, value, best.get(phase, (None,))[0]):
            best[phase] = (value, int(float(row["epoch"])))
    if phases and not last_phase_done:
        best.pop(phases[-1], None)
    return {phase: epoch for phase, (_, epoch) in best.items()}
